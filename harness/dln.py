"""The 25-layer deep linear network of santurkar2018 (App. A) and its measured training runs.

Regression: x ∈ R^{n×10} Gaussian, targets Ax with A a 10×10 Gaussian matrix, ℓ2 loss
‖f(x) − Ax‖² (summed), full-batch gradient descent (no momentum, no weight decay) with LR 1e-6,
Glorot initialization. With normalization, a norm layer follows each of the first 24 linear
layers; the output layer is left free to match the targets' scale (our choice; the paper does not
say). At evenly spaced checkpoints the run records the probes every DLN claim reads.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch
from torch import nn

from harness.cache import ModelCache, cached_record
from harness.concurrent import cached_side_by_side
from harness.models import deep_linear
from harness.probes.functional import ParamLoss
from harness.probes.ics import internal_covariate_shift
from harness.probes.landscape import landscape_line


def squared_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).pow(2).sum()


def regression_problem(samples: int, width: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, width, generator=g)
    A = torch.randn(width, width, generator=g)
    return x, x @ A.T


def layer_groups(model: nn.Module) -> tuple[list[list[str]], list[str]]:
    """Parameter names per numbered layer (its weight plus the norm after it) and the weight names."""
    groups: list[list[str]] = []
    weights: list[str] = []
    for name, module in model.named_modules():
        own = [f"{name}.{p}" for p, _ in module.named_parameters(recurse=False)]
        if isinstance(module, nn.Linear):
            groups.append(own)
            weights.append(f"{name}.weight")
        elif own and groups:
            groups[-1].extend(own)
    return groups, weights


@dataclasses.dataclass
class Checkpoint:
    step: int
    loss: float
    ics: list[dict]  # per probed layer: layer, l2, cos, grad_norm
    gradient_line: dict  # LandscapeLine fields along the gradient
    random_line: dict  # along a random direction of the gradient's norm
    gamma_over_sigma: list[float]  # per unit and normalized layer (empty without normalization)
    shift_input: dict  # mean and var per unit of the shift layer's input before normalization


@dataclasses.dataclass
class DLNRun:
    norm: str
    losses: list[float]  # per step, the start included
    checkpoints: list[Checkpoint]
    diverged_at: int | None

    @classmethod
    def from_dict(cls, d: dict) -> DLNRun:
        return cls(**{**d, "checkpoints": [Checkpoint(**c) for c in d["checkpoints"]]})


def _norm_stats(model: nn.Module, x: torch.Tensor, shift_layer: int) -> tuple[list[float], dict]:
    """γ_j/σ_j of every normalization layer (σ_j: biased std of its input over the batch), and the
    batch mean and variance of each unit of linear layer ``shift_layer``'s input *before*
    normalization: the output of linear layer ``shift_layer − 1``, which a norm layer (if any)
    then normalizes. (After a BN layer the batch moments are pinned to β and γ², so the shift of
    the normalized input would say little; santurkar2018 Fig. 14 measures the layer's input
    distribution, and the VGG half reads it before normalization too.)"""
    captured: dict[str, torch.Tensor] = {}
    hooks = []
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not 2 <= shift_layer <= len(linears):
        raise ValueError(f"shift_layer must name a linear layer with one before it (2..{len(linears)}), got {shift_layer}")
    for i, module in enumerate(m for m in model.modules() if hasattr(m, "running_mean") or hasattr(m, "running_scale")):
        hooks.append(module.register_forward_hook(lambda mod, inp, out, i=i: captured.__setitem__(f"norm{i}", (mod, inp[0].detach()))))
    hooks.append(linears[shift_layer - 2].register_forward_hook(lambda mod, inp, out: captured.__setitem__("shift", out.detach())))
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
        for k, v in model.named_buffers():  # the probe forward must not move running statistics
            v.copy_(buffers[k])
    ratios: list[float] = []
    for key, value in captured.items():
        if key.startswith("norm"):
            mod, inp = value
            sigma = inp.var(dim=0, unbiased=False).sqrt()
            ratios += (mod.weight.detach().abs() / sigma).tolist()
    shift = captured["shift"]
    return ratios, {"mean": shift.mean(dim=0).tolist(), "var": shift.var(dim=0, unbiased=False).tolist()}


def _config(norm: str, settings: dict, probes: bool, lr: float | None, steps: int | None) -> dict:
    return {"kind": "dln-run", "norm": norm, "settings": settings, "probes": probes, "lr": lr, "steps": steps}


def train_dln(norm: str, settings: dict, probes: bool = True, lr: float | None = None, steps: int | None = None,
              cache: ModelCache | None = None) -> DLNRun:
    """Full-batch GD on the DLN; with ``probes``, measure at ``settings['checkpoints']`` even steps.
    With a ``cache``, the run (record and probes) is made once ever.

    A run computes on the process's torch threads (``BNCLAIMS_THREADS``, default 1), here or in a
    worker of :func:`train_dln_many`, so its numbers do not depend on where it ran."""
    return cached_record(cache, _config(norm, settings, probes, lr, steps),
                         lambda: _train_dln(norm, settings, probes, lr, steps), DLNRun.from_dict)


def train_dln_many(calls: Sequence[dict], cache: ModelCache | None = None, workers: int | None = None) -> list[DLNRun]:
    """``[train_dln(**call, cache=cache) for call in calls]``, the runs the cache lacks computed side
    by side on ``workers`` processes (``cached_side_by_side``; default: one per core)."""
    calls = [{"probes": True, "lr": None, "steps": None, **call} for call in calls]
    return cached_side_by_side(train_dln, calls, cache, lambda c: _config(**c), workers)


def _train_dln(norm: str, settings: dict, probes: bool, lr: float | None, steps: int | None) -> DLNRun:
    lr = settings["lr"] if lr is None else lr
    steps = settings["steps"] if steps is None else steps
    x, y = regression_problem(settings["samples"], settings["width"], settings["seed"])
    torch.manual_seed(settings["seed"])
    model = deep_linear(depth=settings["depth"], width=settings["width"], norm=norm, init="xavier_uniform").train()
    objective = ParamLoss(model, x, y, squared_error)
    groups, weights = layer_groups(model)
    every = max(1, steps // settings["checkpoints"]) if probes else 0
    gen = torch.Generator().manual_seed(settings["seed"] + 1)  # random directions only, never the global RNG
    losses, checkpoints, diverged_at = [], [], None
    params = list(model.parameters())
    for step in range(steps + 1):
        if probes and step % every == 0:
            # one loss and gradient at θ serves every probe of this checkpoint
            current = objective.params()
            base = objective.loss_and_grad(current)
            multipliers = [m * lr for m in settings["step_multipliers"]]
            ics = internal_covariate_shift(objective, groups, weights, lr, probe=settings.get("ics_layers"),
                                           params=current, base=base)
            ratios, shift = _norm_stats(model, x, settings["shift_layer"])
            checkpoints.append(Checkpoint(
                step=step, loss=base[0], ics=[dataclasses.asdict(r) for r in ics],
                gradient_line=dataclasses.asdict(landscape_line(objective, multipliers, "gradient", params=current, base=base)),
                random_line=dataclasses.asdict(landscape_line(objective, multipliers, "random", gen, params=current, base=base)),
                gamma_over_sigma=ratios, shift_input=shift,
            ))
        loss = squared_error(model(x), y)
        value = float(loss.detach())
        losses.append(value)
        if not math.isfinite(value) or value > 1e3 * max(losses[0], 1e-12):
            diverged_at = step
            break
        if step == steps:
            break
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.sub_(lr * g)
    return DLNRun(norm, losses, checkpoints, diverged_at)


def lr_works(run: DLNRun) -> bool:
    """GD "works" at a learning rate: the loss stays finite and under 10× its start, and ends below half of it."""
    start, losses = run.losses[0], run.losses
    return all(math.isfinite(v) and v < 10 * start for v in losses) and losses[-1] < 0.5 * start


def lr_range(norms: Sequence[str], settings: dict, lrs: Sequence[float], steps: int, cache: ModelCache | None = None,
             workers: int | None = None) -> dict[str, dict[float, DLNRun]]:
    """Unprobed ``steps``-step runs of every norm at every LR, side by side (``train_dln_many``)."""
    calls = [{"norm": norm, "settings": settings, "probes": False, "lr": lr, "steps": steps} for norm in norms for lr in lrs]
    runs = iter(train_dln_many(calls, cache, workers))
    return {norm: {lr: next(runs) for lr in lrs} for norm in norms}
