"""The one training loop: every trained network of the suite goes through :func:`train`.

Defaults follow bjorck2018's App. B protocol: SGD with momentum 0.9 and weight decay 5e-4,
batch 128, LR divided by 10 at 50% and 75% of the steps, flip + pad-crop augmentation. The other
runs are settings of the same loop: santurkar2018's VGG (plain SGD at a fixed LR, no augmentation)
and its deep linear network (full-batch gradient descent on a regression, :class:`FullBatch`).

Divergence (bjorck2018 §3.4: a mini-batch loss above 1e3, or not finite) stops the run and is
recorded as ``diverged_at`` — a measured outcome, never an exception. Batches are drawn from a
device-side permutation; nothing per sample runs in Python.

What a run measures besides its loss — evaluations, distributions of units, ICS, landscape lines,
the batches that led to a divergence — is carried by :class:`Probe` objects handed to ``train``.
Probes never change training: the trajectory is bit-for-bit the same with or without them (tested).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import ContextManager

import torch
import torch.nn.functional as F
from torch import nn

from harness.accel import Accel, TrainingStep, backend_flags
from harness.data import ImageData, augment, normalize

DIVERGENCE_LOSS = 1e3  # bjorck2018 §3.4


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    lr: float
    steps: int  # updates after the warm start
    batch_size: int = 128
    momentum: float = 0.9
    weight_decay: float = 5e-4
    milestones: tuple[float, ...] = (0.5, 0.75)  # fractions of the steps where the LR is divided
    lr_decay: float = 0.1
    augment: bool = True
    pad: int = 4  # pixels of zero padding for the random crop (App. B: 4 on 32×32 images)
    eval_every: int = 0  # updates between evaluations; 0 = only at the end
    eval_at_start: bool = False  # also evaluate the initial parameters
    eval_diverged: bool = False  # also evaluate a run that diverged, at the parameters it diverged at
    seed: int = 0  # batch order and augmentation
    warm_start_steps: int = 0  # bjorck2018 App. J: steps at warm_start_lr before the LR under test
    warm_start_lr: float = 1e-4
    divergence_loss: float = DIVERGENCE_LOSS  # a batch loss above this (or not finite) ends the run
    divergence_relative: bool = False  # read divergence_loss as a multiple of the first loss
    loss_at_end: bool = False  # also measure the loss (and the due probes) after the last update

    def __post_init__(self):
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive finite number, got {self.lr}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"steps and batch_size must be positive, got {self.steps} and {self.batch_size}")
        if any(not 0 < m < 1 for m in self.milestones):
            raise ValueError(f"milestones are fractions of training in (0, 1), got {self.milestones}")
        if self.pad < 0:
            raise ValueError(f"pad must be ≥ 0 pixels, got {self.pad}")
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be ≥ 0 updates (0: only at the end), got {self.eval_every}")
        if self.warm_start_steps < 0 or not self.warm_start_lr > 0:
            raise ValueError(f"warm start needs steps ≥ 0 and a positive LR, got {self.warm_start_steps} at {self.warm_start_lr}")
        if not self.divergence_loss > 0:
            raise ValueError(f"divergence_loss must be positive, got {self.divergence_loss}")

    @property
    def total_steps(self) -> int:
        return self.warm_start_steps + self.steps

    def lr_at(self, step: int) -> float:
        """LR for the 0-based ``step``, warm start included; the schedule counts from its end."""
        if step < self.warm_start_steps:
            return self.warm_start_lr
        passed = sum(step - self.warm_start_steps >= round(m * self.steps) for m in self.milestones)
        return self.lr * self.lr_decay**passed


@dataclasses.dataclass
class TrainResult:
    steps_done: int  # batch losses measured
    diverged_at: int | None  # 1-based number of the batch whose loss diverged (= steps_done)
    losses: list[float]  # loss of each batch, at the parameters before its update
    evals: list[dict]  # {"step", "train_acc", "train_loss", "test_acc", "test_loss"}; step = updates done

    @property
    def diverged(self) -> bool:
        return self.diverged_at is not None

    @property
    def final(self) -> dict:
        return self.evals[-1] if self.evals else {}

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class Probe:
    """What a run measures while it trains. Subclasses override the hooks they need.

    ``step`` counts the updates done (0: the initial parameters). For every batch the loop calls
    ``measure`` when ``due(step)`` — at the parameters the batch will be evaluated at, before its
    training forward —, runs that forward inside ``watch(step)`` and hands its output to ``seen``;
    ``close`` runs once at the end, however the run ends. A probe keeps its own record and must
    not change training: no update of parameters or buffers, no draw from the global RNG.
    """

    def due(self, step: int) -> bool:
        return False

    def measure(self, step: int, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        """At a due step, on this step's batch (as the model sees it)."""

    def watch(self, step: int) -> ContextManager:
        """A context around every training forward (e.g. to let forward hooks record)."""
        return contextlib.nullcontext()

    def seen(self, step: int, output: torch.Tensor, y: torch.Tensor, loss: float) -> None:
        """After every training forward, with its output and batch loss."""

    def close(self) -> None:
        """Once, at the end of the run (also when it fails): remove hooks."""


class EachBatch(Probe):
    """Calls ``fn(batch, model, x, y)`` for every batch (``batch`` 1-based) before its forward."""

    def __init__(self, fn: Callable[[int, nn.Module, torch.Tensor, torch.Tensor], None]):
        self.fn = fn

    def due(self, step: int) -> bool:
        return True

    def measure(self, step, model, x, y) -> None:
        self.fn(step + 1, model, x, y)


class BatchAccuracy(Probe):
    """Accuracy of every training batch, from the training forward itself."""

    def __init__(self):
        self.record: list[float] = []

    def seen(self, step, output, y, loss) -> None:
        self.record.append(float((output.argmax(1) == y).float().mean()))


@dataclasses.dataclass(frozen=True)
class FullBatch:
    """The whole training set as every step's batch (gradient descent), with its own loss."""

    x: torch.Tensor
    y: torch.Tensor
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

    def __post_init__(self):
        if len(self.x) != len(self.y) or len(self.x) == 0:
            raise ValueError(f"a full batch needs as many targets as inputs (and some), got {len(self.x)} and {len(self.y)}")


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, data: ImageData, batch_size: int = 1000) -> dict:
    """Accuracy and mean loss in eval mode (BN running statistics); restores the training mode."""
    was_training = model.training
    model.eval()
    correct, loss = 0, 0.0
    for i in range(0, len(x), batch_size):
        logits = model(normalize(x[i : i + batch_size], data.mean, data.std))
        loss += F.cross_entropy(logits, y[i : i + batch_size], reduction="sum").item()
        correct += (logits.argmax(1) == y[i : i + batch_size]).sum().item()
    model.train(was_training)
    return {"acc": correct / len(x), "loss": loss / len(x)}


def train(model: nn.Module, data: ImageData | FullBatch, config: TrainConfig, device: torch.device | str = "cpu",
          eval_train_samples: int = 2000, probes: Sequence[Probe] = (), accel: Accel | None = None) -> TrainResult:
    """Train ``model`` in place on ``data``: mini-batches of images (cross-entropy, evaluated at
    ``config.eval_every`` and at the end) or a :class:`FullBatch` (its loss; no evaluation).

    ``accel`` (training-only runs; harness/accel.py): speed levers. ``None`` (the default) leaves
    the process's backend flags alone; an ``Accel`` sets TF32 and cudnn.benchmark to its values
    for the run. Levers are refused together with probes: probes see float32 batches only."""
    if accel is None:
        return _train(model, data, config, torch.device(device), eval_train_samples, probes, Accel())
    if accel.any and probes:
        raise ValueError(f"speed levers ({accel.describe()}) are for training-only runs; "
                         "a run that carries probes must use none")
    with backend_flags(tf32=accel.tf32, cudnn_benchmark=accel.cudnn_benchmark):
        try:
            return _train(model, data, config, torch.device(device), eval_train_samples, probes, accel)
        finally:
            if accel.channels_last:  # give the model back in the default memory layout
                model.to(memory_format=torch.contiguous_format)


def _minibatches(data: ImageData, config: TrainConfig, gen: torch.Generator, device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Normalized (and augmented) batches, each epoch in a fresh permutation; incomplete batches are skipped."""
    n = len(data.train_y)
    perm, cursor = torch.randperm(n, generator=gen, device=device), 0
    while True:
        if cursor + config.batch_size > n:  # new epoch
            perm, cursor = torch.randperm(n, generator=gen, device=device), 0
        idx = perm[cursor : cursor + config.batch_size]
        cursor += config.batch_size
        x = data.train_x[idx]
        if config.augment:
            x = augment(x, gen, config.pad, data.hflip)
        yield normalize(x, data.mean, data.std), data.train_y[idx]


def _train(model: nn.Module, data: ImageData | FullBatch, config: TrainConfig, device: torch.device, eval_train_samples: int,
           probes: Sequence[Probe], accel: Accel) -> TrainResult:
    model.to(device).train()
    if isinstance(data, FullBatch):
        batches = itertools.repeat((data.x.to(device), data.y.to(device)))
        loss_fn, evaluated = data.loss, False
    elif isinstance(data, ImageData):
        data = data.to(device)
        batches = _minibatches(data, config, torch.Generator(device=device).manual_seed(config.seed), device)
        loss_fn, evaluated = F.cross_entropy, True
    else:
        raise TypeError(f"train needs ImageData or a FullBatch, got {type(data).__name__}")
    runner = TrainingStep(model, accel, device)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    losses, evals, diverged_at, updates = [], [], None, 0

    def record(step: int) -> None:
        train_eval = (data.train_x[:eval_train_samples], data.train_y[:eval_train_samples])
        tr, te = evaluate(model, *train_eval, data), evaluate(model, data.test_x, data.test_y, data)
        evals.append({"step": step, "train_acc": tr["acc"], "train_loss": tr["loss"], "test_acc": te["acc"], "test_loss": te["loss"]})

    try:
        for step in range(config.total_steps + config.loss_at_end):  # step = updates done
            x, y = next(batches)
            x = runner.prepare(x)
            for probe in probes:
                if probe.due(step):
                    probe.measure(step, model, x, y)
            if evaluated and (config.eval_at_start if step == 0 else config.eval_every and step % config.eval_every == 0):
                record(step)
            with contextlib.ExitStack() as watching:
                for probe in probes:
                    watching.enter_context(probe.watch(step))
                with runner.autocast():
                    output = runner.forward(x)
                    loss = loss_fn(output, y)
            value = loss.item()
            losses.append(value)
            for probe in probes:
                probe.seen(step, output, y, value)
            limit = config.divergence_loss * (max(losses[0], 1e-12) if config.divergence_relative else 1.0)
            if not math.isfinite(value) or value > limit:
                diverged_at = len(losses)
                break
            if step == config.total_steps:  # loss_at_end: measured, no update
                break
            for group in opt.param_groups:
                group["lr"] = config.lr_at(step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            updates += 1
    finally:
        for probe in probes:
            probe.close()
    if evaluated and (diverged_at is None or config.eval_diverged) and not (evals and evals[-1]["step"] == updates):
        record(updates)
    return TrainResult(steps_done=len(losses), diverged_at=diverged_at, losses=losses, evals=evals)
