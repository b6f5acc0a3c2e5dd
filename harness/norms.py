"""Normalization layers behind one factory.

``make_norm("batch")`` returns a :class:`NormFactory`; models call ``factory(num_features, dims)``
wherever a normalization layer goes (``dims`` = 2 after a conv, 1 after a linear layer), so every
architecture runs with every variant and no model is copied to change its normalization.
Variants join this table with the claims that need them (noisy, alternating, parts of BN, ℓp,
group, layer).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
from torch import nn


class LpNorm(nn.Module):
    """ℓp normalization (santurkar2018 §3.3): centre each unit over the batch (as BN does), then
    divide by the p-power mean of the centred values, (mean |a − μ|^p)^(1/p) (max for p = ∞),
    then the affine γ, β. For p = 2 this is BN without ε. Statistics are taken over the batch
    (and H, W after a conv); running estimates serve eval mode, like BN's."""

    def __init__(self, num_features: int, p: float, dims: int = 2, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        if not (p >= 1):
            raise ValueError(f"p must be ≥ 1 (or inf), got {p}")
        self.p, self.dims, self.momentum, self.eps = p, dims, momentum, eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_scale", torch.ones(num_features))

    def _shape(self, x: torch.Tensor) -> tuple[int, ...]:
        return (1, -1) + (1,) * (x.dim() - 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reduce = [0] + list(range(2, x.dim()))
        shape = self._shape(x)
        if self.training:
            mean = x.mean(dim=reduce)
            centred = x - mean.view(shape)
            if math.isinf(self.p):
                scale = centred.abs().amax(dim=reduce)
            else:
                scale = centred.abs().pow(self.p).mean(dim=reduce).pow(1.0 / self.p)
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_scale.lerp_(scale, self.momentum)
        else:
            mean, scale = self.running_mean, self.running_scale
            centred = x - mean.view(shape)
        return centred / (scale.view(shape) + self.eps) * self.weight.view(shape) + self.bias.view(shape)

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, p={self.p}"


def _none(num_features: int, dims: int) -> nn.Module:
    return nn.Identity()


def _batch(num_features: int, dims: int) -> nn.Module:
    return (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(num_features)


NORMS: dict[str, Callable[[int, int], nn.Module]] = {
    "none": _none,
    "batch": _batch,
    "l1": lambda n, dims: LpNorm(n, 1.0, dims),
    "l2": lambda n, dims: LpNorm(n, 2.0, dims),
    "linf": lambda n, dims: LpNorm(n, math.inf, dims),
}


@dataclasses.dataclass(frozen=True)
class NormFactory:
    """Builds the normalization layer for ``num_features`` channels after a conv (2) or linear (1) layer."""

    kind: str

    def __call__(self, num_features: int, dims: int = 2) -> nn.Module:
        if dims not in (1, 2):
            raise ValueError(f"dims must be 1 (after a linear layer) or 2 (after a conv), got {dims}")
        if num_features < 1:
            raise ValueError(f"num_features must be positive, got {num_features}")
        return NORMS[self.kind](num_features, dims)

    @property
    def normalizes(self) -> bool:
        return self.kind != "none"


def make_norm(kind: str) -> NormFactory:
    if kind not in NORMS:
        raise ValueError(f"unknown norm '{kind}' (known: {', '.join(sorted(NORMS))})")
    return NormFactory(kind)


def resolve_norm(norm: NormFactory | str) -> NormFactory:
    """Builders accept a factory or its name."""
    return make_norm(norm) if isinstance(norm, str) else norm
