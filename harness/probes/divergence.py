"""The update that makes a network diverge, and the loss landscape along single updates.

bjorck2018 §3.4 (Figs. 5, 6): train an unnormalized ResNet until a mini-batch loss diverges
(> 1e3 or not finite); the update responsible is the last one applied before that batch. Along
that update, θ + t·Δ for t ∈ [0, 1], we evaluate the loss on the batch the update was computed on
(Fig. 5) and the channel means and variances of every conv layer's output, the quantities BN
measures or would measure (Fig. 6). Δ is the update SGD actually applied (gradient, momentum and
weight decay together), so t = 1 lands exactly on the parameters that diverged.

App. N (Fig. 24): the loss of one mini-batch along its own negative gradient, θ − η·g, for a
range of step sizes η; the largest η that still decreases the loss tells how far the gradient can
be followed.

All evaluations go through ``functional_call`` in train mode with cloned buffers, so the model and
its BN running statistics are left as they were; nothing draws random numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from harness.data import ImageData
from harness.probes.functional import ParamLoss, Params
from harness.train import EachBatch, TrainConfig, train


class DivergedBeforeBatch(RuntimeError):
    """``batch_lines``: the training run diverged before a batch it was to probe."""


@dataclasses.dataclass
class DivergingUpdate:
    lr: float
    step: int  # 1-based training step whose update made the next batch diverge
    diverged_at: int  # the step whose batch loss diverged (step + 1)
    params: Params  # θ before the update
    update: Params  # Δ = θ_after − θ_before
    inputs: torch.Tensor  # the batch the update was computed on
    targets: torch.Tensor


def find_diverging_update(model: nn.Module, data: ImageData, config: TrainConfig,
                          device: torch.device | str = "cpu") -> DivergingUpdate | None:
    """Train ``model`` with ``config``; return the update responsible for the divergence, or None
    when the run does not diverge within ``config.steps`` (or diverges on its very first batch,
    before any update)."""
    history: list[tuple[Params, torch.Tensor, torch.Tensor]] = []  # the last two (θ, batch) pairs

    def keep(batch: int, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        history.append(({k: v.detach().clone() for k, v in model.named_parameters()}, x, y))
        del history[:-2]

    result = train(model, data, config, device, probes=[EachBatch(keep)])
    if not result.diverged or len(history) < 2:
        return None
    (before, x, y), (after, _, _) = history
    return DivergingUpdate(config.lr, result.diverged_at - 1, result.diverged_at, before,
                           {k: after[k] - before[k] for k in before}, x, y)


def _moments(model: nn.Module, layers: dict[int, nn.Module], params: Params, x: torch.Tensor) -> dict[int, tuple[float, float]]:
    """Mean |channel mean| and mean channel variance of each numbered layer's output."""
    captured: dict[int, tuple[float, float]] = {}

    def hook(number):
        def fn(_module, _inputs, out):
            dims = [0] + list(range(2, out.dim()))
            captured[number] = (float(out.mean(dim=dims).abs().mean()), float(out.var(dim=dims, unbiased=False).mean()))
        return fn

    handles = [layer.register_forward_hook(hook(n)) for n, layer in layers.items()]
    try:
        buffers = {k: v.clone() for k, v in model.named_buffers()}
        with torch.no_grad():
            functional_call(model, {**params, **buffers}, (x,))
    finally:
        for h in handles:
            h.remove()
    return captured


def along_update(model: nn.Module, update: DivergingUpdate, ts: Sequence[float], layers: Sequence[int]) -> dict:
    """Loss on the update's batch and per-layer channel moments at θ + t·Δ for each t.

    ``layers`` are the paper's layer numbers (``model.layer(k)``). Returns plain data:
    ``{"t": [...], "loss": [...], "mean": {layer: [...]}, "var": {layer: [...]}}``.
    """
    model.train()
    objective = ParamLoss(model, update.inputs, update.targets, F.cross_entropy)
    modules = {k: model.layer(k) for k in layers}
    out = {"t": [float(t) for t in ts], "loss": [], "mean": {k: [] for k in layers}, "var": {k: [] for k in layers}}
    for t in ts:
        params = {k: update.params[k] + t * update.update[k] for k in update.params}
        with torch.no_grad():
            out["loss"].append(objective.loss(params))
        for k, (m, v) in _moments(model, modules, params, update.inputs).items():
            out["mean"][k].append(m)
            out["var"][k].append(v)
    return out


def gradient_line(objective: ParamLoss, etas: Sequence[float]) -> dict:
    """Loss of the objective's batch at θ − η·g for each η (g the gradient at θ), App. N.

    Returns ``{"eta": [...], "loss0": L(θ), "loss": [...], "grad_norm": ‖g‖,
    "largest_decreasing_eta": the largest η whose loss is below L(θ) (None if none is),
    "decreasing_until": the largest η such that every η′ ≤ η of the grid has a loss below L(θ)
    (None if the smallest does not)}``. ``decreasing_until`` is how far one can follow the
    gradient while still decreasing the loss: a far step that lands below a huge L(θ) after the
    loss has risen (dead units, a collapsed net) does not extend it. ``etas`` must be ascending.
    """
    if any(not eta > 0 for eta in etas) or any(b <= a for a, b in zip(etas, etas[1:])):
        raise ValueError(f"step sizes must be positive and ascending, got {list(etas)}")
    params = objective.params()
    loss0, grad = objective.loss_and_grad(params)
    losses = [objective.loss({k: params[k] - eta * grad[k] for k in params}) for eta in etas]
    below = [bool(np.isfinite(loss) and loss < loss0) for loss in losses]
    decreasing = [eta for eta, ok in zip(etas, below) if ok]
    run = len(below) if all(below) else below.index(False)  # grid steps decreasing from the smallest on
    norm = float(torch.sqrt(sum((g.double() ** 2).sum() for g in grad.values())))
    return {"eta": [float(e) for e in etas], "loss0": loss0, "loss": losses, "grad_norm": norm,
            "largest_decreasing_eta": max(decreasing) if decreasing else None,
            "decreasing_until": float(etas[run - 1]) if run else None}


def batch_lines(model: nn.Module, data: ImageData, config: TrainConfig, batches: Sequence[int],
                etas: Sequence[float], device: torch.device | str = "cpu") -> dict[int, dict]:
    """``gradient_line`` on the given (1-based) batches of a training run with ``config``, each at
    the parameters the run has when it meets that batch (Fig. 24 uses batches 1 and 5)."""
    lines: dict[int, dict] = {}
    wanted = set(batches)

    def probe(batch: int, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        if batch in wanted:
            lines[batch] = gradient_line(ParamLoss(model, x, y, F.cross_entropy), etas)

    train(model, data, dataclasses.replace(config, steps=max(batches), eval_every=0), device, probes=[EachBatch(probe)])
    missing = wanted - set(lines)
    if missing:
        raise DivergedBeforeBatch(f"the run diverged before batch(es) {sorted(missing)}; no landscape there")
    return lines
