"""The noise of an SGD step, bjorck2018 §2.1 Eq. 2: E‖α∇f(x) − α∇_SGD(x)‖² = α²·M/|B|.

f = (1/n)Σ f_i is the training loss, ∇_SGD the mean gradient of a batch B of |B| examples drawn
uniformly *with replacement*, and M = E_i‖∇f_i − ∇f‖² the per-example gradient variance. Review 1
says the denominator should be |B|²; fitting the exponent of |B| decides between the two.

The per-example gradients g_i are computed once (torch.func: vmap of grad over the examples), so
the model must not couple examples (no BN in train mode). A batch gradient is then a row of
C·G/|B|, where C holds each draw's multinomial counts: thousands of batches cost one matmul.

:func:`exact_noise` gives the expectation itself, from the first two moments of the multinomial
counts and the Gram matrix of the g_i (float64); :func:`bootstrap_intervals` estimates it by Monte
Carlo, as a cross-check, with bootstrap (BCa) intervals, whose skew-aware bounds suit the
heavy-tailed squared norms. (A log-space fit of Monte-Carlo means, used before, was biased low at
small |B| by that skew.)
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


def per_example_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(n, P) matrix of ∇f_i, f_i the cross-entropy of example i, at the model's parameters."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def loss(p, xi, yi):
        return F.cross_entropy(functional_call(model, {**p, **buffers}, (xi.unsqueeze(0),)), yi.unsqueeze(0))

    with float32_probe():
        grads = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)
    return torch.cat([g.reshape(len(x), -1) for g in grads.values()], dim=1)


def exact_noise(grads: torch.Tensor, batch_sizes: Sequence[int], lrs: Sequence[float]) -> dict:
    """E‖α∇f − α∇_SGD‖² exactly, for every (|B|, α), over batches of |B| draws with replacement.

    With c the batch's count vector (multinomial, |B| draws, p = 1/n each), ∇_SGD = cᵀG/|B| and
    E[c c ᵀ] = |B|(|B| − 1)p²·11ᵀ + |B|p·I, so with K = GGᵀ:
    E‖cᵀG/|B| − ḡ‖² = ((|B| − 1)/|B|)·1ᵀK1/n² + tr K/(|B| n) − 1ᵀK1/n².
    Returns ``{"batch_sizes", "lrs", "noise": [[...] per α] per |B|}`` in float64.
    """
    if grads.dim() != 2 or len(grads) < 2:
        raise ValueError(f"need an (n ≥ 2, P) matrix of per-example gradients, got shape {tuple(grads.shape)}")
    if not batch_sizes or any(b < 1 for b in batch_sizes) or not lrs or any(not a > 0 for a in lrs):
        raise ValueError(f"need batch sizes ≥ 1 and positive LRs, got {list(batch_sizes)}, {list(lrs)}")
    g = grads.double()
    n = len(g)
    gram = g @ g.T
    total, trace = float(gram.sum()) / n**2, float(torch.trace(gram)) / n
    noise = [[a**2 * ((b - 1) / b * total + trace / b - total) for a in lrs] for b in batch_sizes]
    return {"batch_sizes": list(batch_sizes), "lrs": list(lrs), "noise": noise}


def bootstrap_intervals(grads: torch.Tensor, batch_sizes: Sequence[int], draws: int, generator: torch.Generator,
                        confidence: float = 0.99) -> list[tuple[float, float, float]]:
    """Monte-Carlo mean of ‖∇_SGD − ∇f‖² per |B| (α = 1) with its BCa bootstrap interval: the
    squared norms are heavy-tailed, so a symmetric normal interval would misplace the bounds."""
    g = grads.double()
    n, full = len(g), g.mean(dim=0)
    uniform = torch.full((n,), 1.0 / n, dtype=torch.double)
    out = []
    for b in batch_sizes:
        counts = torch.stack([torch.bincount(torch.multinomial(uniform, b, replacement=True, generator=generator), minlength=n)
                              for _ in range(draws)]).double()
        sq = ((counts @ g / b - full) ** 2).sum(dim=1).numpy()
        ci = scipy.stats.bootstrap((sq,), np.mean, confidence_level=confidence, method="BCa", n_resamples=2000,
                                   random_state=np.random.default_rng(int(generator.initial_seed()) + b)).confidence_interval
        out.append((float(sq.mean()), float(ci.low), float(ci.high)))
    return out


def exact_exponents(table: dict) -> dict:
    """Log–log slopes of the exact noise: in |B| at each α, and in α at each |B|."""
    noise = np.asarray(table["noise"])
    log_b, log_a = np.log(table["batch_sizes"]), np.log(table["lrs"])
    return {"batch": [float(np.polyfit(log_b, np.log(noise[:, j]), 1)[0]) for j in range(noise.shape[1])],
            "lr": [float(np.polyfit(log_a, np.log(noise[i, :]), 1)[0]) for i in range(noise.shape[0])]}
