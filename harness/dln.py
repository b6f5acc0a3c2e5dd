"""The 25-layer deep linear network of santurkar2018 (App. A) and its measured training runs.

Regression: x ∈ R^{n×10} Gaussian, targets Ax with A a 10×10 Gaussian matrix, ℓ2 loss
‖f(x) − Ax‖² (summed), full-batch gradient descent (no momentum, no weight decay) with LR 1e-6,
Glorot initialization. With normalization, a norm layer follows each of the first 24 linear
layers; the output layer is left free to match the targets' scale (our choice; the paper does not
say). At evenly spaced checkpoints the run records the probes every DLN claim reads.

The settings' ``precision`` names the float type of the whole run, probes included. The suite runs
it in float64: at LR 1e-6 the 25-layer net amplifies rounding, and in float32 one BN run's
landscape readings at step 1,000 moved by 64% between one and two torch threads (other kernel
rounding); in float64 they move by less than 1e-9, for about 1.4× the time per step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence

import torch
from torch import nn

from harness.cache import ModelCache, cached_record
from harness.concurrent import cached_side_by_side
from harness.models import deep_linear
from harness.models.flops import forward_flops, training_flops
from harness.probes.checkpoints import Checkpoint, CheckpointSchedule, LandscapeProbe, checkpoint_steps
from harness.settings import JUDGING_KEYS, DLNShared, typed
from harness.train import FullBatch, Probe, TrainConfig, train


def squared_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).pow(2).sum()


PRECISIONS = {"float32": torch.float32, "float64": torch.float64}


def regression_problem(samples: int, width: int, seed: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """x Gaussian and targets Ax (A Gaussian), drawn in float32 from ``seed`` (the same draw at every
    precision), then cast to ``dtype``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, width, generator=g)
    A = torch.randn(width, width, generator=g)
    x, A = x.to(dtype), A.to(dtype)
    return x, x @ A.T


def precision(settings: DLNShared) -> torch.dtype:
    name = settings["precision"]
    if name not in PRECISIONS:
        raise ValueError(f"DLN precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    return PRECISIONS[name]


@dataclasses.dataclass
class NormStats:
    step: int  # updates done
    gamma_over_sigma: list[float]  # per unit and normalized layer (empty without normalization)
    shift_input: dict  # mean and var per unit of the shift layer's input before normalization


@dataclasses.dataclass
class DLNRun:
    norm: str
    losses: list[float]  # per step, the start and the end included
    checkpoints: list[Checkpoint]  # ICS and landscape lines (harness.probes.checkpoints)
    norm_stats: list[NormStats]  # at the same steps
    diverged_at: int | None  # 1-based number of the loss that diverged

    @classmethod
    def from_dict(cls, d: dict) -> DLNRun:
        return cls(**{**d, "checkpoints": [Checkpoint(**c) for c in d["checkpoints"]],
                      "norm_stats": [NormStats(**c) for c in d["norm_stats"]]})


class NormStatsProbe(Probe):
    """γ/σ of every normalization layer and the shift layer's input moments, on a
    :class:`CheckpointSchedule` (every ``every`` updates, or at the updates it lists)."""

    def __init__(self, every: int | Collection[int], shift_layer: int):
        self.schedule, self.shift_layer = CheckpointSchedule(every), shift_layer
        self.record: list[NormStats] = []

    def due(self, step: int) -> bool:
        return self.schedule.due(step)

    def measure(self, step, model, x, y) -> None:
        self.record.append(NormStats(step, *_norm_stats(model, x, self.shift_layer)))


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


def _config(norm: str, settings: DLNShared, seed: int, probes: bool, lr: float | None, steps: int | None) -> dict:
    settings = typed(DLNShared, settings, "DLN run settings").without(*JUDGING_KEYS)
    return {"kind": "dln-run", "norm": norm, "settings": {**settings, "seed": seed}, "probes": probes, "lr": lr, "steps": steps}


def train_dln(norm: str, settings: DLNShared, seed: int, probes: bool = True, lr: float | None = None, steps: int | None = None,
              cache: ModelCache | None = None) -> DLNRun:
    """Full-batch GD on the DLN, its problem and init drawn from ``seed``; with ``probes``, measure
    at ``settings.checkpoints`` + 1 steps, spaced by ``settings.checkpoint_spacing``
    (:func:`checkpoint_steps`: even, or dense early). With a ``cache``, the run (record and probes)
    is made once ever. ``settings``: the family's (a plain mapping is parsed into them); the run is
    made from all but ``JUDGING_KEYS``.

    A run computes on the process's torch threads (``BNCLAIMS_THREADS``, default 1), here or in a
    worker of :func:`train_dln_many`, so its numbers do not depend on where it ran."""
    settings = typed(DLNShared, settings, "DLN run settings")
    return cached_record(cache, _config(norm, settings, seed, probes, lr, steps),
                         lambda: _train_dln(norm, settings, seed, probes, lr, steps), DLNRun.from_dict)


def train_dln_many(calls: Sequence[dict], cache: ModelCache | None = None, workers: int | None = None) -> list[DLNRun]:
    """``[train_dln(**call, cache=cache) for call in calls]``, the runs the cache lacks computed side
    by side on ``workers`` processes (``cached_side_by_side``; default: one per core)."""
    calls = [{"probes": True, "lr": None, "steps": None, **call} for call in calls]
    return cached_side_by_side(train_dln, calls, cache, lambda c: _config(**c), workers, lambda c: dln_flops(**c))


def dln_flops(norm: str, settings: DLNShared, seed: int = 0, probes: bool = True, lr: float | None = None, steps: int | None = None) -> float:
    """Estimated FLOPs of a DLN run: full-batch steps over ``samples`` points (probes not counted)."""
    steps = settings["steps"] if steps is None else steps
    per = forward_flops("deep_linear", {"depth": settings["depth"], "width": settings["width"], "norm": norm}, (1, settings["width"]))
    return training_flops(per, settings["samples"], steps)


def _train_dln(norm: str, settings: DLNShared, seed: int, probes: bool, lr: float | None, steps: int | None) -> DLNRun:
    lr = settings["lr"] if lr is None else lr
    steps = settings["steps"] if steps is None else steps
    dtype = precision(settings)
    x, y = regression_problem(settings["samples"], settings["width"], seed, dtype)
    torch.manual_seed(seed)
    model = deep_linear(depth=settings["depth"], width=settings["width"], norm=norm, init="xavier_uniform").to(dtype).train()
    config = TrainConfig(lr=lr, steps=steps, batch_size=len(x), momentum=0.0, weight_decay=0.0, milestones=(), augment=False,
                         divergence_relative=True, loss_at_end=True)
    landscape, stats = None, None
    if probes:
        at = checkpoint_steps(steps, settings["checkpoints"], settings["checkpoint_spacing"])
        landscape = LandscapeProbe(model, at, lr, settings["step_multipliers"], settings["ics_layers"], squared_error,
                                   torch.Generator().manual_seed(seed + 1))  # random directions only
        stats = NormStatsProbe(at, settings["shift_layer"])
    result = train(model, FullBatch(x, y, squared_error), config, probes=[p for p in (landscape, stats) if p])
    return DLNRun(norm, result.losses, landscape.record if landscape else [], stats.record if stats else [], result.diverged_at)


def lr_range(norms: Sequence[str], settings: DLNShared, lrs: Sequence[float], steps: int, seeds: Sequence[int],
             cache: ModelCache | None = None, workers: int | None = None) -> list[dict[str, dict[float, DLNRun]]]:
    """Per seed of ``seeds`` (each drawing its problem and init), the unprobed ``steps``-step runs
    of every norm at every LR, ``{norm: {lr: run}}``; all seeds' runs side by side in one batch
    (``train_dln_many``)."""
    runs = iter(train_dln_many([{"norm": n, "settings": settings, "seed": seed, "probes": False, "lr": lr, "steps": steps}
                                for seed in seeds for n in norms for lr in lrs], cache, workers))
    return [{n: {lr: next(runs) for lr in lrs} for n in norms} for _ in seeds]
