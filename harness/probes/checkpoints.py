"""Checkpoints of a training run: ICS (Definition 2.1) and landscape lines (§3.2) on the step's batch.

:class:`LandscapeProbe` is a :class:`harness.train.Probe`: every ``every`` updates it evaluates, at
the current parameters and on the batch the run is about to train on, one loss and gradient that
serves ICS for the probed layers and the loss landscape along the gradient and along a random
direction of the gradient's norm (steps ``multipliers`` × LR). It evaluates through
:class:`ParamLoss` (cloned buffers, float32) and draws random directions from its own generator,
so training does not change with it. The VGG and the deep linear network carry it alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Sequence

import torch
from torch import nn

from harness.probes.functional import ParamLoss, flat
from harness.probes.ics import internal_covariate_shift
from harness.probes.landscape import landscape_line
from harness.train import Probe


def layer_groups(model: nn.Module) -> tuple[list[list[str]], list[str]]:
    """Parameter names per numbered (conv / linear) layer, with the normalization after it, and its weight."""
    groups: list[list[str]] = []
    weights: list[str] = []
    for name, module in model.named_modules():
        own = [f"{name}.{p}" for p, _ in module.named_parameters(recurse=False)]
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            groups.append(own)
            weights.append(f"{name}.weight")
        elif own and groups:
            groups[-1].extend(own)
    return groups, weights


@dataclasses.dataclass
class Checkpoint:
    step: int  # updates done before the probe
    loss: float  # loss of this step's batch at θ
    grad_norm: float  # ‖∇L(θ)‖₂ over all parameters
    ics: list[dict]  # per probed layer: layer, l2, cos, grad_norm (empty when not probed)
    gradient_line: dict  # LandscapeLine fields along the gradient
    random_line: dict  # along a random direction of the gradient's norm


class CheckpointSchedule:
    """When a probe measures: every ``every`` updates (an int), or at the given updates (a
    collection of step numbers, e.g. denser early in training: :func:`checkpoint_steps`)."""

    def __init__(self, every: int | Collection[int]):
        if isinstance(every, int):
            if every < 1:
                raise ValueError(f"a checkpoint every {every} updates: must be ≥ 1")
            self.every, self.at = every, None
        else:
            self.every, self.at = None, frozenset(int(s) for s in every)
            if not self.at or min(self.at) < 0:
                raise ValueError(f"checkpoint steps must be a non-empty set of updates ≥ 0, got {sorted(self.at)}")

    def due(self, step: int) -> bool:
        return step in self.at if self.at is not None else step % self.every == 0


def checkpoint_steps(steps: int, count: int, spacing: str = "linear") -> list[int]:
    """``count`` + 1 checkpoints from update 0 to ``steps``: evenly spaced (``linear``), or at
    steps · (k / count)² (``quadratic``: dense early, where a fast-converging net still trains).
    Distinct steps; ``quadratic`` may merge the first few when ``steps`` is small."""
    if steps < 1 or count < 1:
        raise ValueError(f"need steps ≥ 1 and count ≥ 1, got {steps} and {count}")
    if spacing == "linear":
        every = max(1, steps // count)
        return list(range(0, steps + 1, every))
    if spacing == "quadratic":
        return sorted({round(steps * (k / count) ** 2) for k in range(count + 1)})
    raise ValueError(f"checkpoint spacing must be 'linear' or 'quadratic', got {spacing!r}")


class LandscapeProbe(Probe):
    """ICS of ``ics_layers`` (1-based; ``None``: all, ``[]``: none) and the two landscape lines,
    every ``every`` updates or at the updates ``every`` lists (:class:`CheckpointSchedule`)."""

    def __init__(self, model: nn.Module, every: int | Collection[int], lr: float, multipliers: Sequence[float],
                 ics_layers: Sequence[int] | None, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 directions: torch.Generator):
        self.schedule, self.lr, self.loss_fn, self.directions = CheckpointSchedule(every), lr, loss_fn, directions
        self.steps = [m * lr for m in multipliers]
        self.ics_layers = None if ics_layers is None else list(ics_layers)
        self.groups, self.weights = layer_groups(model)
        self.record: list[Checkpoint] = []

    def due(self, step: int) -> bool:
        return self.schedule.due(step)

    def measure(self, step, model, x, y) -> None:
        objective = ParamLoss(model, x, y, self.loss_fn)
        current = objective.params()
        base = objective.loss_and_grad(current)  # serves every measurement of this checkpoint
        ics = [] if self.ics_layers == [] else internal_covariate_shift(
            objective, self.groups, self.weights, self.lr, probe=self.ics_layers, params=current, base=base)
        self.record.append(Checkpoint(
            step=step, loss=base[0], grad_norm=float(flat(base[1]).norm()), ics=[dataclasses.asdict(r) for r in ics],
            gradient_line=dataclasses.asdict(landscape_line(objective, self.steps, "gradient", params=current, base=base)),
            random_line=dataclasses.asdict(landscape_line(objective, self.steps, "random", self.directions, params=current, base=base)),
        ))
