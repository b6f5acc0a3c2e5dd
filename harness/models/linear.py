"""Deep linear network: a chain of bias-free linear layers, optionally normalized after each.

santurkar2018 App. A uses 25 square layers on 10-dimensional data with BN after each layer;
bjorck2018 §4 studies the product A_t ⋯ A_1 of such a network's weights at initialization.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.models.init import init_weights
from harness.models.numbered import NumberedLayers
from harness.norms import NormFactory, resolve_norm


class DeepLinear(NumberedLayers, nn.Module):
    def __init__(self, dims: list[int], norm: NormFactory, norm_last: bool = False):
        super().__init__()
        if len(dims) < 2 or any(d < 1 for d in dims):
            raise ValueError(f"dims must list at least an input and an output size, all positive; got {dims}")
        layers: list[nn.Module] = []
        for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(fan_in, fan_out, bias=False))
            if i < len(dims) - 2 or norm_last:
                layers.append(norm(fan_out, dims=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def end_to_end(self) -> torch.Tensor:
        """The product W_L ⋯ W_1 (only meaningful without normalization)."""
        product = None
        for layer in self.numbered_layers():
            product = layer.weight if product is None else layer.weight @ product
        return product


def deep_linear(
    depth: int = 25,
    width: int = 10,
    in_features: int | None = None,
    out_features: int | None = None,
    norm: NormFactory | str = "none",
    init: str = "xavier_uniform",
    norm_last: bool = False,
) -> DeepLinear:
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    dims = [in_features or width] + [width] * (depth - 1) + [out_features or width]
    norm = resolve_norm(norm)
    return init_weights(DeepLinear(dims, norm, norm_last), init)
