"""Small statistics shared by claim tests: orderings and fits (scipy)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.stats


def strictly_increasing(values: Sequence[float]) -> bool:
    return all(b > a for a, b in zip(values, values[1:]))


def strictly_decreasing(values: Sequence[float]) -> bool:
    return all(b < a for a, b in zip(values, values[1:]))


def fitted_slope(x: Sequence[float], y: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """Least-squares slope of y on x with its standard error and a t-based confidence interval."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or len(x) < 3:
        raise ValueError(f"need at least 3 paired points to fit a slope with an interval, got {x.shape} and {y.shape}")
    fit = scipy.stats.linregress(x, y)
    half = scipy.stats.t.ppf(0.5 + confidence / 2, len(x) - 2) * fit.stderr
    return {"slope": float(fit.slope), "stderr": float(fit.stderr), "low": float(fit.slope - half), "high": float(fit.slope + half)}


def geometric_mean_ratio(numerator: Sequence[float], denominator: Sequence[float], weights: Sequence[float] | None = None) -> float:
    """exp(mean(log a_i − log b_i)): the typical factor between paired positive measurements;
    with ``weights``, the weighted mean of the log ratios (e.g. each checkpoint's training time)."""
    a, b = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"need paired, non-empty measurements, got shapes {a.shape} and {b.shape}")
    if np.any(a <= 0) or np.any(b <= 0):
        raise ValueError("a geometric-mean ratio needs positive values")
    if weights is None:
        return float(np.exp(np.mean(np.log(a) - np.log(b))))
    w = np.asarray(weights, dtype=float)
    if w.shape != a.shape or np.any(w <= 0):
        raise ValueError(f"need one positive weight per pair, got {w.shape} for {a.shape}")
    return float(np.exp(np.sum(w * (np.log(a) - np.log(b))) / w.sum()))


def training_window(checkpoint_losses: Sequence[Sequence[float]], final_losses: Sequence[float], within: float) -> tuple[int, int]:
    """The checkpoints ``[start, end)`` at which *every* run compared is training: it has left its
    start (its loss is below ``1 − within`` times its loss at the first checkpoint) and has not yet
    converged (its loss is above ``1 + within`` times its final loss). ``start`` is the first
    checkpoint at which every run has left its start, ``end`` the first at which some run is
    within ``within`` (a fraction, 0.1 = 10%) of its final loss. ``start >= end``: no such
    checkpoint.

    santurkar2018 reads its landscape and ICS figures while training goes on, and calls what
    follows convergence "an artifact of parameter convergence". A net that sits on the plateau of
    its initialization (a narrow net with Glorot init) is not training yet either. Comparing two
    nets over one window keeps both phases out of either side of a ratio."""
    if not checkpoint_losses or len(checkpoint_losses) != len(final_losses):
        raise ValueError(f"need one final loss per run, got {len(checkpoint_losses)} runs and {len(final_losses)} finals")
    if not 0 < within < 1:
        raise ValueError(f"within must be a fraction in (0, 1), got {within}")
    starts, ends = [], []
    for losses, final in zip(checkpoint_losses, final_losses):
        if not losses or not np.isfinite(final) or final < 0:
            raise ValueError(f"a run needs checkpoint losses and a finite final loss ≥ 0, got {list(losses)} and {final}")
        starts.append(next((i for i, loss in enumerate(losses) if loss < (1 - within) * losses[0]), len(losses)))
        ends.append(next((i for i, loss in enumerate(losses) if loss <= (1 + within) * final), len(losses)))
    return max(starts), min(ends)
