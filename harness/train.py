"""SGD training loop (bjorck2018 App. B protocol by default).

SGD with momentum 0.9 and weight decay 5e-4, batch 128, LR divided by 10 at 50% and 75% of the
steps, flip + pad-crop augmentation. Divergence (§3.4: a mini-batch loss above 1e3, or not
finite) stops the run and is recorded as ``diverged_at`` — a measured outcome, never an exception.
Batches are drawn from a device-side permutation; nothing per sample runs in Python.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from harness.accel import Accel, TrainingStep, backend_flags
from harness.data import ImageData, augment, normalize

DIVERGENCE_LOSS = 1e3  # bjorck2018 §3.4


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    lr: float
    steps: int
    batch_size: int = 128
    momentum: float = 0.9
    weight_decay: float = 5e-4
    milestones: tuple[float, ...] = (0.5, 0.75)  # fractions of the steps where the LR is divided
    lr_decay: float = 0.1
    augment: bool = True
    pad: int = 4  # pixels of zero padding for the random crop (App. B: 4 on 32×32 images)
    eval_every: int = 0  # steps between evaluations; 0 = only at the end
    seed: int = 0
    warm_start_steps: int = 0  # bjorck2018 App. J: steps at warm_start_lr before the LR under test
    warm_start_lr: float = 1e-4

    def __post_init__(self):
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive finite number, got {self.lr}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"steps and batch_size must be positive, got {self.steps} and {self.batch_size}")
        if any(not 0 < m < 1 for m in self.milestones):
            raise ValueError(f"milestones are fractions of training in (0, 1), got {self.milestones}")
        if self.pad < 0:
            raise ValueError(f"pad must be ≥ 0 pixels, got {self.pad}")
        if self.warm_start_steps < 0 or not self.warm_start_lr > 0:
            raise ValueError(f"warm start needs steps ≥ 0 and a positive LR, got {self.warm_start_steps} at {self.warm_start_lr}")

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
    steps_done: int
    diverged_at: int | None  # 1-based step whose batch loss diverged
    losses: list[float]  # mini-batch loss per step
    evals: list[dict]  # {"step", "train_acc", "train_loss", "test_acc", "test_loss"}

    @property
    def diverged(self) -> bool:
        return self.diverged_at is not None

    @property
    def final(self) -> dict:
        return self.evals[-1] if self.evals else {}

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


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


def train(model: nn.Module, data: ImageData, config: TrainConfig, device: torch.device | str = "cpu",
          eval_train_samples: int = 2000, on_batch: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
          accel: Accel | None = None) -> TrainResult:
    """Train ``model`` in place. ``on_batch(step, inputs, targets)``, when given, sees every batch
    (normalized and augmented, 1-based step) before its loss is computed, with the model still at
    the parameters that batch will be evaluated at; probes use it to capture diverging updates.

    ``accel`` (training-only runs; harness/accel.py): speed levers. ``None`` (the default) leaves
    the process's backend flags alone; an ``Accel`` sets TF32 and cudnn.benchmark to its values
    for the run. Levers are refused together with ``on_batch``: probes see float32 batches only."""
    if accel is None:
        return _train(model, data, config, device, eval_train_samples, on_batch, Accel())
    if accel.any and on_batch is not None:
        raise ValueError(f"speed levers ({accel.describe()}) are for training-only runs; "
                         "a run that hands batches to a probe (on_batch) must use none")
    with backend_flags(tf32=accel.tf32, cudnn_benchmark=accel.cudnn_benchmark):
        try:
            return _train(model, data, config, device, eval_train_samples, on_batch, accel)
        finally:
            if accel.channels_last:  # give the model back in the default memory layout
                model.to(memory_format=torch.contiguous_format)


def _train(model: nn.Module, data: ImageData, config: TrainConfig, device: torch.device | str, eval_train_samples: int,
           on_batch: Callable[[int, torch.Tensor, torch.Tensor], None] | None, accel: Accel) -> TrainResult:
    device = torch.device(device)
    model.to(device).train()
    data = data.to(device)
    gen = torch.Generator(device=device).manual_seed(config.seed)
    runner = TrainingStep(model, accel, device)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    n = len(data.train_y)
    perm, cursor = torch.randperm(n, generator=gen, device=device), 0
    losses, evals, diverged_at = [], [], None
    train_eval = (data.train_x[:eval_train_samples], data.train_y[:eval_train_samples])

    def record(step: int) -> None:
        tr, te = evaluate(model, *train_eval, data), evaluate(model, data.test_x, data.test_y, data)
        evals.append({"step": step, "train_acc": tr["acc"], "train_loss": tr["loss"], "test_acc": te["acc"], "test_loss": te["loss"]})

    for step in range(1, config.total_steps + 1):
        if cursor + config.batch_size > n:  # new epoch
            perm, cursor = torch.randperm(n, generator=gen, device=device), 0
        idx = perm[cursor : cursor + config.batch_size]
        cursor += config.batch_size
        x = data.train_x[idx]
        if config.augment:
            x = augment(x, gen, config.pad, data.hflip)
        for group in opt.param_groups:
            group["lr"] = config.lr_at(step - 1)
        x = runner.prepare(normalize(x, data.mean, data.std))
        if on_batch is not None:
            on_batch(step, x, data.train_y[idx])
        with runner.autocast():
            loss = F.cross_entropy(runner.forward(x), data.train_y[idx])
        value = loss.item()
        losses.append(value)
        if not math.isfinite(value) or value > DIVERGENCE_LOSS:
            diverged_at = step
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if config.eval_every and step % config.eval_every == 0 and step < config.total_steps:
            record(step)
    if diverged_at is None and not (evals and evals[-1]["step"] == len(losses)):
        record(len(losses))
    return TrainResult(steps_done=len(losses), diverged_at=diverged_at, losses=losses, evals=evals)
