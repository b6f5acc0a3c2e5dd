"""The phase of training santurkar2018's landscape and ICS figures show, per seed, for the DLN and
the VGG claims alike.

A window is the checkpoints at which every net compared is training (``harness.stats.
training_window``: it has left its start and is not yet near its end). The claim tests compute it
per seed from the runs' checkpoint losses and final losses, and record it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from harness.stats import training_window


def checkpoint_losses(run) -> list[float]:
    """The loss each checkpoint measured on its step's batch (a full batch for the DLN)."""
    return [c.loss for c in run.checkpoints]


def seed_windows(runs: Mapping[str, Sequence], norms: Sequence[str], seeds: Sequence[int], final_loss: Callable[[object], float],
                 within: float, verdict=None, labels: Mapping[str, str] | None = None,
                 losses: Callable[[object], list[float]] = checkpoint_losses) -> list[range]:
    """Per seed (``runs[norm][i]`` is seed ``seeds[i]``'s run), the checkpoints at which every net of
    ``norms`` is training. ``final_loss(run)`` is where a run ends, ``losses(run)`` its loss at each
    checkpoint. A seed whose run diverged (a non-finite loss) has an empty window. With
    ``verdict``, a seed with an empty window makes the claim inconclusive (``conclude`` raises)."""
    out = []
    for i, seed in enumerate(seeds):
        compared = [runs[n][i] for n in norms]
        losses_, finals = [losses(r) for r in compared], [final_loss(r) for r in compared]
        names = ", ".join((labels or {}).get(n, n) for n in norms)
        if not all(math.isfinite(v) for v in finals + [x for run in losses_ for x in run]):  # a run diverged: no end to measure from
            if verdict is not None:
                verdict.conclude("inconclusive", f"seed {seed}: a run of {names} diverged, so it has no training window")
            out.append(range(0))
            continue
        start, end = training_window(losses_, finals, within)
        if verdict is not None and start >= end:
            verdict.conclude("inconclusive", f"seed {seed}: no checkpoint at which {names} are all training (window {start}..{end})")
        out.append(range(start, end))
    return out


def checkpoint_weights(steps: Sequence[int]) -> list[float]:
    """The training time each checkpoint stands for, in steps: until the next checkpoint (the last:
    as long as the one before). Evenly spaced checkpoints weigh the same, so statistics over a
    window mean the same whether its checkpoints are evenly spaced or dense early."""
    steps = list(steps)
    if len(steps) < 2:
        return [1.0] * len(steps)
    gaps = [float(b - a) for a, b in zip(steps, steps[1:])]
    if min(gaps) <= 0:
        raise ValueError(f"checkpoint steps must increase, got {steps}")
    return gaps + [gaps[-1]]


def early(window: Sequence, weights: Sequence[float] | None = None) -> Sequence:
    """The first half of a window in training time (at least one checkpoint of a non-empty one):
    the checkpoints with less than half the window's time before them. ``weights``: each
    checkpoint's time (:func:`checkpoint_weights`, aligned with ``window``); without them (or with
    even ones) the first ⌈n/2⌉ checkpoints."""
    if weights is None:
        return window[: math.ceil(len(window) / 2)]
    if len(weights) != len(window):
        raise ValueError(f"need one weight per checkpoint of the window, got {len(weights)} for {len(window)}")
    half, before, n = sum(weights) / 2, 0.0, 0
    for w in weights:
        if before >= half:
            break
        before, n = before + w, n + 1
    return window[:n]


def weighted_median(values: Sequence[float], weights: Sequence[float]) -> float:
    """The median of ``values`` in which each counts for its weight: the first value (in order)
    past half the total weight, or the mean of the two around it when the half falls exactly
    between them. With integer weights, the median of each value repeated that often; with even
    weights, numpy's median."""
    v, w = _by_value(values, weights)
    cum = np.cumsum(w)
    half, tol = cum[-1] / 2, 1e-12 * cum[-1]
    k = int(np.argmax(cum >= half - tol))
    return float((v[k] + v[k + 1]) / 2) if abs(cum[k] - half) <= tol and k + 1 < v.size else float(v[k])


def share_quantile(values: Sequence[float], weights: Sequence[float], share: float) -> float:
    """The value that a ``share`` of the window's time exceeds or meets: the smallest value whose
    cumulative weight (its own included) is more than 1 − ``share`` of the total. A condition
    "value > t at a share ≥ ``share`` of the time" holds exactly when this is above t."""
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    v, w = _by_value(values, weights)
    below = np.cumsum(w) / w.sum()
    return float(v[np.argmax(below > (1 - share) + 1e-12)])


def _by_value(values: Sequence[float], weights: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """``values`` in increasing order (stable) with their weights, after checking both."""
    v, w = np.asarray(values, dtype=float), np.asarray(weights, dtype=float)
    if v.shape != w.shape or v.size == 0 or np.any(w <= 0):
        raise ValueError(f"need as many positive weights as values (some), got {w.shape} for {v.shape}")
    order = np.argsort(v, kind="stable")
    return v[order], w[order]


def note_windows(verdict, steps: Sequence[int], windows: Sequence[range]) -> None:
    """Record each seed's window as training steps, in the measurements and as a note."""
    verdict.measure(window_steps=[[steps[k] for k in w] for w in windows])
    verdict.note("Window (checkpoints where every net compared is training: left its start, not within the YAML's "
                 "converged_within of its end), per seed: steps " + "; ".join(f"{steps[w[0]]}–{steps[w[-1]]}" for w in windows)
                 + f" of 0–{steps[-1]}.")
