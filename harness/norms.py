"""Normalization layers behind one factory.

``make_norm("batch")`` returns a :class:`NormFactory`; models call ``factory(num_features, dims)``
wherever a normalization layer goes (``dims`` = 2 after a conv, 1 after a linear layer), so every
architecture runs with every variant and no model is copied to change its normalization.
Variants join this table with the claims that need them (noisy, alternating, parts of BN, ℓp,
group, layer).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from torch import nn


def _none(num_features: int, dims: int) -> nn.Module:
    return nn.Identity()


def _batch(num_features: int, dims: int) -> nn.Module:
    return (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(num_features)


NORMS: dict[str, Callable[[int, int], nn.Module]] = {"none": _none, "batch": _batch}


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
