"""Gradient norm against depth in fully connected nets without skips (X-NOSKIP-EXPLODE).

Yang et al. (ICLR 2019) show that at initialization a deep BN-ReLU net without skip connections
has gradients that explode going down, by √(π/(π−1)) ≈ 1.21 per layer in the wide, large-batch
limit. We build MLPs of several depths, take the gradient of the first layer's weight for one
batch (training mode), and fit log10 ‖∂L/∂W₁‖ against depth: 10^slope is the growth per layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from harness.accel import float32_probe
from harness.models.mlp import mlp
from harness.stats import fitted_slope

YANG_RATE = math.sqrt(math.pi / (math.pi - 1))  # ≈ 1.2113, gradient-norm growth per layer (BN + ReLU)


def first_layer_grad_norm(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.train()
    model.zero_grad(set_to_none=True)
    with float32_probe():
        F.cross_entropy(model(x), y).backward()
    return float(model.layer(1).weight.grad.double().norm())


def gradient_growth(norm: str, depths: Sequence[int], width: int, x: torch.Tensor, y: torch.Tensor,
                    seeds: Sequence[int]) -> dict:
    """‖∂L/∂W₁‖ per (depth, seed) and the fitted growth factor per added layer with its 95% interval."""
    if len(depths) < 2 or not seeds or len(depths) * len(seeds) < 3:
        raise ValueError(f"need at least two depths and three (depth, seed) points to fit a rate with an interval, "
                         f"got depths {list(depths)} and seeds {list(seeds)}")
    norms = np.zeros((len(depths), len(seeds)))
    for i, depth in enumerate(depths):
        for j, seed in enumerate(seeds):
            torch.manual_seed(seed)
            norms[i, j] = first_layer_grad_norm(mlp(depth, width, x[0].numel(), int(y.max()) + 1, norm), x, y)
    xs = np.repeat(np.asarray(depths, dtype=float), len(seeds))
    fit = fitted_slope(xs, np.log10(norms.ravel()))
    return {"depths": list(depths), "grad_norm": norms, "per_layer": 10 ** fit["slope"],
            "per_layer_low": 10 ** fit["low"], "per_layer_high": 10 ** fit["high"]}
