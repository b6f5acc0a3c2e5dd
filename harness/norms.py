"""Normalization layers behind one factory.

``make_norm("batch")`` returns a :class:`NormFactory`; models call ``factory(num_features, dims)``
wherever a normalization layer goes (``dims`` = 2 after a conv, 1 after a linear layer), so every
architecture runs with every variant and no model is copied to change its normalization.
Variants join this table with the claims that need them. Parts of BN are named by the parts
they keep: ``"bn_parts:gamma+mu+sigma2"`` (bjorck2018 Table 2).
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



def _reduce_dims(x: torch.Tensor) -> list[int]:
    return [0] + list(range(2, x.dim()))


def _channel_shape(x: torch.Tensor) -> tuple[int, ...]:
    return (1, -1) + (1,) * (x.dim() - 2)


PARTS = ("gamma", "beta", "mu", "sigma2")  # the four transformations of bjorck2018 Eq. 1


class BatchNormParts(nn.Module):
    """BN with each of its four transformations switched on or off (bjorck2018 App. H, Table 2).

    ``mu``: subtract the batch mean; ``sigma2``: divide by the batch standard deviation (taken
    around the batch mean, as BN measures it, even when the mean is not subtracted); ``gamma`` /
    ``beta``: the learned per-channel scale / shift. All four on is BatchNorm (same running
    statistics and ε); eval mode uses the running estimates, as BN does.
    """

    def __init__(self, num_features: int, parts: frozenset[str] | set[str], momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        unknown = set(parts) - set(PARTS)
        if unknown:
            raise ValueError(f"unknown BN parts {sorted(unknown)} (known: {', '.join(PARTS)})")
        self.parts, self.momentum, self.eps = frozenset(parts), momentum, eps
        self.weight = nn.Parameter(torch.ones(num_features)) if "gamma" in parts else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if "beta" in parts else None
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = _channel_shape(x)
        if self.training:
            reduce = _reduce_dims(x)
            mean, var = x.mean(dim=reduce), x.var(dim=reduce, unbiased=False)
            with torch.no_grad():
                n = x.numel() / x.shape[1]
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * n / max(n - 1, 1), self.momentum)  # unbiased, like BN
        else:
            mean, var = self.running_mean, self.running_var
        if "mu" in self.parts:
            x = x - mean.view(shape)
        if "sigma2" in self.parts:
            x = x / torch.sqrt(var.view(shape) + self.eps)
        if self.weight is not None:
            x = x * self.weight.view(shape)
        if self.bias is not None:
            x = x + self.bias.view(shape)
        return x

    def extra_repr(self) -> str:
        return f"{self.running_mean.numel()}, parts={'+'.join(p for p in PARTS if p in self.parts) or 'none'}"


class AlternatingBatchNorm(nn.Module):
    """BN that measures the batch mean and variance only every other training batch and reuses the
    latest measured statistics (as constants) on the batches in between (bjorck2018 §3.4, App. J).

    On a measuring batch it is exactly BN; on the others nothing guarantees that the output is
    normalized, which is the point of the experiment ("no safe landing"). Eval mode uses the
    running estimates, updated on measuring batches only.
    """

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("latest_mean", torch.zeros(num_features))
        self.register_buffer("latest_var", torch.ones(num_features))
        self.register_buffer("batches_seen", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = _channel_shape(x)
        if not self.training:
            mean, var = self.running_mean, self.running_var
        elif int(self.batches_seen) % 2 == 0:  # measuring batch: BN, gradients through the statistics
            reduce = _reduce_dims(x)
            mean, var = x.mean(dim=reduce), x.var(dim=reduce, unbiased=False)
            with torch.no_grad():
                n = x.numel() / x.shape[1]
                self.latest_mean.copy_(mean)
                self.latest_var.copy_(var)
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * n / max(n - 1, 1), self.momentum)
        else:  # reusing batch: the latest statistics, constants
            mean, var = self.latest_mean, self.latest_var
        if self.training:
            self.batches_seen += 1
        return (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps) * self.weight.view(shape) + self.bias.view(shape)

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}"


GROUP_CHANNELS = 4  # channels per group for GroupNorm: the paper widths 16/32/64 give 4/8/16 groups


def _group(num_features: int, dims: int) -> nn.Module:
    """GroupNorm (Wu & He 2018) with 4 channels per group (at most 32 groups, the GN default);
    the CIFAR ResNet's 16-channel stage is too narrow for GN's 32 groups."""
    return nn.GroupNorm(min(32, max(1, num_features // GROUP_CHANNELS)), num_features)


def _layer(num_features: int, dims: int) -> nn.Module:
    """LayerNorm as used in CNNs: statistics over (C, H, W) per sample, per-channel γ, β."""
    return nn.GroupNorm(1, num_features)


class NoiseInjection(nn.Module):
    """The noise of santurkar2018 Algorithm 1 (App. A.2.1), in training mode only.

    At every forward (one per training step), for each unit j: μ_j ~ U(−n_μ, n_μ) and
    σ_j ~ U(1, n_σ); then for each activation a_ij: m_ij ~ U(μ_j − r_μ, μ_j + r_μ),
    s_ij ~ N(σ_j, r_σ) (r_σ a standard deviation) and a_ij ← s_ij·a_ij + m_ij. After a conv the
    height and width count as batch: every (i, h, w) of channel j draws its own m and s. The
    noise comes from the layer's own generator (``reseed``), never from the global RNG, so it
    does not move the training stream; in eval mode the layer is the identity (like dropout).
    """

    def __init__(self, n_mu: float = 0.5, n_sigma: float = 1.25, r_mu: float = 0.1, r_sigma: float = 0.1, seed: int = 0):
        super().__init__()
        if not (n_mu >= 0 and n_sigma >= 1 and r_mu >= 0 and r_sigma >= 0):
            raise ValueError(f"need n_mu, r_mu, r_sigma ≥ 0 and n_sigma ≥ 1, got {n_mu}, {n_sigma}, {r_mu}, {r_sigma}")
        self.n_mu, self.n_sigma, self.r_mu, self.r_sigma = n_mu, n_sigma, r_mu, r_sigma
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self.seed = seed
        self._generator: torch.Generator | None = None  # made on the activations' device at first use

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return a
        if self._generator is None or self._generator.device != a.device:
            self._generator = torch.Generator(device=a.device).manual_seed(self.seed)
        draw = {"generator": self._generator, "device": a.device, "dtype": a.dtype}
        shape = (1, -1) + (1,) * (a.dim() - 2)
        mu = ((2 * torch.rand(a.shape[1], **draw) - 1) * self.n_mu).view(shape)
        sigma = (1 + torch.rand(a.shape[1], **draw) * (self.n_sigma - 1)).view(shape)
        m = mu + (2 * torch.rand(a.shape, **draw) - 1) * self.r_mu
        s = sigma + torch.randn(a.shape, **draw) * self.r_sigma
        return s * a + m

    def extra_repr(self) -> str:
        return f"n_mu={self.n_mu}, n_sigma={self.n_sigma}, r_mu={self.r_mu}, r_sigma={self.r_sigma}, seed={self.seed}"


def seed_noise(model: nn.Module, seed: int) -> int:
    """Give every noise layer of ``model`` its own stream (seed, seed + 1, … in module order); returns how many."""
    layers = [m for m in model.modules() if isinstance(m, NoiseInjection)]
    for i, layer in enumerate(layers):
        layer.reseed(seed + i)
    return len(layers)


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
    "alternating": lambda n, dims: AlternatingBatchNorm(n),
    "group": _group,
    "layer": _layer,
    # santurkar2018 §2.1: BN then Algorithm 1's noise ("noisy BN"), and the noise alone (standard + noise)
    "noisy_batch": lambda n, dims: nn.Sequential(_batch(n, dims), NoiseInjection()),
    "noise": lambda n, dims: NoiseInjection(),
}
UNNORMALIZED = ("none", "noise")  # kinds that leave the layer unnormalized: its conv keeps a bias
PARTS_PREFIX = "bn_parts:"  # "bn_parts:mu+sigma2" etc.; the parts are any subset of PARTS


@dataclasses.dataclass(frozen=True)
class NormFactory:
    """Builds the normalization layer for ``num_features`` channels after a conv (2) or linear (1) layer."""

    kind: str

    def __call__(self, num_features: int, dims: int = 2) -> nn.Module:
        if dims not in (1, 2):
            raise ValueError(f"dims must be 1 (after a linear layer) or 2 (after a conv), got {dims}")
        if num_features < 1:
            raise ValueError(f"num_features must be positive, got {num_features}")
        if self.kind.startswith(PARTS_PREFIX):
            return BatchNormParts(num_features, _parse_parts(self.kind))
        return NORMS[self.kind](num_features, dims)

    @property
    def normalizes(self) -> bool:
        """Whether the layer subtracts a mean (a bias before it would then be redundant)."""
        if self.kind.startswith(PARTS_PREFIX):
            return "mu" in _parse_parts(self.kind)
        return self.kind not in UNNORMALIZED


def _parse_parts(kind: str) -> frozenset[str]:
    names = kind[len(PARTS_PREFIX):].split("+") if kind != PARTS_PREFIX else []
    unknown = [n for n in names if n not in PARTS]
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"bad BN parts in '{kind}': write {PARTS_PREFIX} followed by distinct parts from "
                         f"{', '.join(PARTS)} joined by '+', e.g. '{PARTS_PREFIX}mu+sigma2'")
    return frozenset(names)


def make_norm(kind: str) -> NormFactory:
    if kind.startswith(PARTS_PREFIX):
        _parse_parts(kind)
    elif kind not in NORMS:
        raise ValueError(f"unknown norm '{kind}' (known: {', '.join(sorted(NORMS))}, {PARTS_PREFIX}<parts>)")
    return NormFactory(kind)


def resolve_norm(norm: NormFactory | str) -> NormFactory:
    """Builders accept a factory or its name."""
    return make_norm(norm) if isinstance(norm, str) else norm
