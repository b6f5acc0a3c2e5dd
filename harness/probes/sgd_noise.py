"""The noise of an SGD step, bjorck2018 §2.1 Eq. 2: E‖α∇f(x) − α∇_SGD(x)‖² = α²·M/|B|.

f = (1/n)Σ f_i is the training loss, ∇_SGD the mean gradient of a batch B of |B| examples drawn
uniformly *with replacement*, and M = E_i‖∇f_i − ∇f‖² the per-example gradient variance. Review 1
says the denominator should be |B|²; fitting the exponent of |B| decides between the two.

The per-example gradients g_i are computed once (torch.func: vmap of grad over the examples), so
the model must not couple examples (no BN in train mode). A batch gradient is then a row of
C·G/|B|, where C holds each draw's multinomial counts: thousands of batches cost one matmul.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.stats
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from harness.accel import float32_probe
from harness.stats import fitted_slope


def per_example_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(n, P) matrix of ∇f_i, f_i the cross-entropy of example i, at the model's parameters."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def loss(p, xi, yi):
        return F.cross_entropy(functional_call(model, {**p, **buffers}, (xi.unsqueeze(0),)), yi.unsqueeze(0))

    with float32_probe():
        grads = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)
    return torch.cat([g.reshape(len(x), -1) for g in grads.values()], dim=1)


def sgd_noise(grads: torch.Tensor, batch_sizes: Sequence[int], lrs: Sequence[float], draws: int,
              generator: torch.Generator) -> dict:
    """Monte-Carlo estimate of E‖α∇f − α∇_SGD‖² for every (|B|, α), with Eq. 2's prediction.

    Returns ``{"M": M, "batch_sizes", "lrs", "noise": [[...] per α] per |B|, "predicted": same
    shape, α²M/|B|, "stderr": standard error of each estimate}``.
    """
    if grads.dim() != 2 or len(grads) < 2:
        raise ValueError(f"need an (n ≥ 2, P) matrix of per-example gradients, got shape {tuple(grads.shape)}")
    if not batch_sizes or any(b < 1 for b in batch_sizes) or not lrs or any(not a > 0 for a in lrs) or draws < 2:
        raise ValueError(f"need batch sizes ≥ 1, positive LRs and ≥ 2 draws, got {list(batch_sizes)}, {list(lrs)}, {draws}")
    g = grads.double()
    n, full = len(g), g.mean(dim=0)
    m = float(((g - full) ** 2).sum(dim=1).mean())
    uniform = torch.full((n,), 1.0 / n, dtype=torch.double)
    noise, predicted, stderr = [], [], []
    for b in batch_sizes:
        counts = torch.stack([torch.bincount(torch.multinomial(uniform, b, replacement=True, generator=generator), minlength=n)
                              for _ in range(draws)]).double()
        sq = ((counts @ g / b - full) ** 2).sum(dim=1)  # ‖∇_SGD − ∇f‖² per draw
        noise.append([float(a**2 * sq.mean()) for a in lrs])
        stderr.append([float(a**2 * sq.std() / np.sqrt(draws)) for a in lrs])
        predicted.append([a**2 * m / b for a in lrs])
    return {"M": m, "batch_sizes": list(batch_sizes), "lrs": list(lrs), "noise": noise, "predicted": predicted,
            "stderr": stderr, "draws": draws}


def weighted_slope(x: Sequence[float], y: Sequence[float], sigma: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """Weighted least-squares slope of y on x when each y_i carries a known standard error σ_i
    (here the Monte-Carlo error of a log noise estimate); the interval is normal-theory."""
    x, y, w = np.asarray(x, float), np.asarray(y, float), 1.0 / np.asarray(sigma, float) ** 2
    xm, ym = np.sum(w * x) / np.sum(w), np.sum(w * y) / np.sum(w)
    sxx = np.sum(w * (x - xm) ** 2)
    slope, stderr = float(np.sum(w * (x - xm) * (y - ym)) / sxx), float(np.sqrt(1.0 / sxx))
    half = scipy.stats.norm.ppf(0.5 + confidence / 2) * stderr
    return {"slope": slope, "stderr": stderr, "low": slope - half, "high": slope + half}


def fitted_exponents(table: dict) -> dict:
    """Exponents of |B| and α in the measured noise, with 95% confidence intervals.

    Exponent of |B|: weighted slope of log noise on log |B| at each α, each point weighted by its
    Monte-Carlo error (stderr / noise), so the interval reflects the finite number of draws.
    Exponent of α: ordinary slope of log noise on log α at each |B| (α is an exact prefactor)."""
    noise, stderr = np.asarray(table["noise"]), np.asarray(table["stderr"])
    log_b, log_a = np.log(table["batch_sizes"]), np.log(table["lrs"])
    return {
        "batch": [weighted_slope(log_b, np.log(noise[:, j]), stderr[:, j] / noise[:, j]) for j in range(noise.shape[1])],
        "lr": [fitted_slope(log_a, np.log(noise[i, :])) for i in range(noise.shape[0])],
    }
