"""The phase of training santurkar2018's landscape and ICS figures show, per seed, for the DLN and
the VGG claims alike.

A window is the checkpoints at which every net compared is training (``harness.stats.
training_window``: it has left its start and is not yet near its end). The claim tests compute it
per seed from the runs' checkpoint losses and final losses, and record it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

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


def early(window: range) -> range:
    """The first half of a window (at least one checkpoint of a non-empty one)."""
    return window[: math.ceil(len(window) / 2)]


def note_windows(verdict, steps: Sequence[int], windows: Sequence[range]) -> None:
    """Record each seed's window as training steps, in the measurements and as a note."""
    verdict.measure(window_steps=[[steps[k] for k in w] for w in windows])
    verdict.note("Window (checkpoints where every net compared is training: left its start, not within the YAML's "
                 "converged_within of its end), per seed: steps " + "; ".join(f"{steps[w[0]]}–{steps[w[-1]]}" for w in windows)
                 + f" of 0–{steps[-1]}.")
