"""Probed VGG training runs for santurkar2018's VGG claims (App. A).

Protocol (App. A.1): a CIFAR VGG, "standard" SGD (read as: no momentum, no weight decay) with a
fixed learning rate, batch 128, no data augmentation, Glorot initialization, cross-entropy loss.
One run per normalization kind, trained by the suite's one loop (``harness.train``) with the
probes below; while it trains it records what every claim reads:

- the mini-batch loss and accuracy of every step (training curves, Figs. 1a, 2, 11a);
- eval-mode train / test accuracy at the checkpoints and the end (Fig. 1b);
- the distribution of a few fixed units of conv layer ``dist_layer`` at every step (Figs. 1c, 2,
  7, 14): ``activations`` at its output, the input of its normalization, and ``normalized`` at
  the normalization's output (after the noise for noisy kinds). The claims read the first: a BN
  layer's output has moments β_j, γ_j² on every batch by construction, so only its input can
  show how earlier layers' normalization (or noise) shapes the distribution a layer receives;
  the second is recorded for comparison;
- at the checkpoints, on that step's batch: ICS of Definition 2.1 for ``ics_layers`` and the
  landscape along the gradient and a random direction, steps ``step_multipliers`` × LR (§3.2).

The checkpoint probe (``harness.probes.checkpoints.LandscapeProbe``, shared with the deep linear
network) evaluates through :class:`ParamLoss` (cloned buffers: BN running statistics do not move),
random directions come from their own generator, and the noise layers draw from theirs, so the
training trajectory is the same with or without probes (tested).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from harness.cache import ModelCache, cached_record, data_fingerprint
from harness.concurrent import cached_side_by_side, side_by_side_workers
from harness.data import ImageData
from harness.models import vgg_cifar
from harness.models.flops import forward_flops, training_flops
from harness.norms import seed_noise
from harness.probes.checkpoints import Checkpoint, LandscapeProbe
from harness.probes.distribution import ActivationSampler, UnitRecord, step_changes
from harness.settings import JUDGING_KEYS, VGGShared, typed
from harness.train import BatchAccuracy, TrainConfig, train


@dataclasses.dataclass
class VGGRun:
    norm: str
    seed: int
    losses: list[float]  # mini-batch loss per step (before its update)
    accs: list[float]  # mini-batch accuracy per step
    evals: list[dict]  # {"step", "train_acc", "train_loss", "test_acc", "test_loss"}, eval mode
    checkpoints: list[Checkpoint]
    activations: UnitRecord  # the sampled units of conv layer dist_layer's output, every step
    normalized: UnitRecord  # the same units after its normalization
    diverged_at: int | None  # 1-based number of the batch whose loss diverged

    @classmethod
    def from_dict(cls, d: dict) -> VGGRun:
        return cls(**{**d, "checkpoints": [Checkpoint(**c) for c in d["checkpoints"]],
                      "activations": UnitRecord(**d["activations"]), "normalized": UnitRecord(**d["normalized"])})

    @property
    def final(self) -> dict:
        """The evaluation at the end of the run (after the last update, or at divergence)."""
        return self.evals[-1]

    def activation_changes(self, where: str = "activations") -> list[float]:
        """Step-to-step change of the sampled units' distributions, up to the last finite record."""
        record: UnitRecord = getattr(self, where)
        n = len(record.var)
        while n and not all(math.isfinite(v) and v > 0 for v in record.var[n - 1]):
            n -= 1
        return step_changes(record.mean[:n], record.var[:n]) if n >= 2 else []


def tail_mean(values: Sequence[float], fraction: float = 0.1) -> float:
    """Mean of the last ``fraction`` of a per-step series (the end of a training curve)."""
    if not values:
        raise ValueError("no values to average")
    k = max(1, math.ceil(len(values) * fraction))
    return float(sum(values[-k:]) / k)


def norm_after(model: nn.Module, layer: int) -> nn.Module:
    """The normalization module that follows conv layer ``layer`` (1-based) in a CIFAR VGG."""
    features = list(model.features)
    convs = [i for i, m in enumerate(features) if isinstance(m, nn.Conv2d)]
    if not 1 <= layer <= len(convs):
        raise ValueError(f"layer {layer} is not among the conv layers 1..{len(convs)}")
    return features[convs[layer - 1] + 1]


def train_vgg(norm: str, data: ImageData, settings: VGGShared, seed: int, device: torch.device | str = "cpu",
              probes: bool = True, lr: float | None = None, steps: int | None = None,
              cache: ModelCache | None = None) -> VGGRun:
    """Train one VGG; with ``probes`` measure ICS / landscape (for ``settings.probe_norms``) at the
    checkpoints. With a ``cache``, the run (record and probes) is made once ever. ``settings``: the
    family's (a plain mapping is parsed into them); the run is made from all but ``JUDGING_KEYS``.

    Narrow unnormalized or ℓp VGGs produce subnormal floats in the backward pass, which x86 computes
    with about 100× slower (2.3 s instead of 30 ms per ℓ1 step); the process flushes them to zero
    (``harness.device.configure_threads``, run by the pytest plugin)."""
    device, settings = torch.device(device), typed(VGGShared, settings, "VGG run settings")
    return cached_record(cache, _config(norm, data, settings, seed, device, probes, lr, steps),
                         lambda: _train_vgg(norm, data, settings, seed, device, probes, lr, steps), VGGRun.from_dict)


def _config(norm: str, data: ImageData, settings: VGGShared, seed: int, device: torch.device | str, probes: bool = True,
            lr: float | None = None, steps: int | None = None) -> dict:
    settings = typed(VGGShared, settings, "VGG run settings").without(*JUDGING_KEYS)
    return {"kind": "vgg-run", "norm": norm, "data": data_fingerprint(data), "settings": settings, "seed": seed,
            "device": torch.device(device).type, "probes": probes, "lr": lr, "steps": steps}


def train_vgg_many(calls: Sequence[dict], data: ImageData, device: torch.device | str = "cpu",
                   cache: ModelCache | None = None) -> list[VGGRun]:
    """``[train_vgg(**call, data=data, device=device, cache=cache) for call in calls]``. On the CPU the
    runs the cache lacks train side by side, one process per core (``cached_side_by_side``): a
    narrow VGG keeps one thread busy, not two. On a GPU they train here, one after another, unless
    ``--runs-per-gpu`` or the Ray executor puts them side by side."""
    calls = [{"data": data, "device": str(device), **call} for call in calls]
    return cached_side_by_side(train_vgg, calls, cache, lambda c: _config(**c), side_by_side_workers(device), lambda c: vgg_flops(**c))


def vgg_flops(norm: str, data: ImageData, settings: VGGShared, seed: int = 0, device: str = "cpu", probes: bool = True,
              lr: float | None = None, steps: int | None = None) -> float:
    """Estimated FLOPs of a VGG run: its training steps and its evaluations (probes not counted)."""
    steps = settings["steps"] if steps is None else steps
    r = data.resolution
    per = forward_flops("vgg_cifar", {"config": settings["config"], "norm": norm, "width": settings["width"]}, (1, 3, r, r))
    evaluations = (settings["checkpoints"] + 1) if probes else 1
    return training_flops(per, settings["batch_size"], steps, evaluations * (len(data.test_y) + settings["eval_train_samples"]))


def _train_vgg(norm: str, data: ImageData, settings: VGGShared, seed: int, device: torch.device, probes: bool,
               lr: float | None, steps: int | None) -> VGGRun:
    lr = settings["lr"] if lr is None else lr
    steps = settings["steps"] if steps is None else steps
    torch.manual_seed(seed)
    model = vgg_cifar(settings["config"], norm, width=settings["width"]).to(device).train()
    seed_noise(model, 1000 * seed)
    every = max(1, steps // settings["checkpoints"])
    config = TrainConfig(lr=lr, steps=steps, batch_size=settings["batch_size"], momentum=settings["momentum"],
                         weight_decay=settings["weight_decay"], milestones=(), augment=False, seed=seed,
                         eval_every=every if probes else 0, eval_at_start=probes, eval_diverged=True)
    channels = model.layer(settings["dist_layer"]).out_channels
    units = torch.randperm(channels, generator=torch.Generator().manual_seed(seed + 2))[: settings["dist_units"]].tolist()
    activations = ActivationSampler(model.layer(settings["dist_layer"]), units)
    normalized = ActivationSampler(norm_after(model, settings["dist_layer"]), units)
    accuracy = BatchAccuracy()
    carried = [activations, normalized, accuracy]
    landscape = None
    if probes and norm in settings["probe_norms"]:
        landscape = LandscapeProbe(model, every, lr, settings["step_multipliers"],
                                   settings["ics_layers"] if norm in settings["ics_norms"] else [], F.cross_entropy,
                                   torch.Generator(device=device).manual_seed(seed + 1))  # random directions only
        carried.insert(0, landscape)
    result = train(model, data, config, device, settings["eval_train_samples"], probes=carried)
    return VGGRun(norm, seed, result.losses, accuracy.record, result.evals, landscape.record if landscape else [],
                  activations.record, normalized.record, result.diverged_at)


def block_losses(run) -> list[float]:
    """Per checkpoint of a probed run, the mean mini-batch loss over the steps around it: from
    halfway since the previous checkpoint to halfway to the next (the loss of training, less
    noisy than the one batch the checkpoint measured on). Steps after a divergence have no loss:
    a checkpoint there keeps its own reading."""
    steps = [c.step for c in run.checkpoints]
    out = []
    for k, (c, t) in enumerate(zip(run.checkpoints, steps)):
        low = (steps[k - 1] + t) // 2 if k else 0
        high = (t + steps[k + 1]) // 2 if k + 1 < len(steps) else t + 1
        block = run.losses[low:high]
        out.append(float(sum(block) / len(block)) if block else c.loss)
    return out


def lr_range(norms: Sequence[str], data: ImageData, settings: VGGShared, lrs: Sequence[float], steps: int, seeds: Sequence[int],
             device: torch.device | str = "cpu", cache: ModelCache | None = None) -> list[dict[str, dict[float, VGGRun]]]:
    """Per seed of ``seeds``, unprobed ``steps``-step runs of every norm at every LR, ``{norm: {lr:
    run}}``; all seeds' runs side by side in one batch (``train_vgg_many``)."""
    runs = iter(train_vgg_many([{"norm": n, "settings": settings, "seed": seed, "probes": False, "lr": lr, "steps": steps}
                                for seed in seeds for n in norms for lr in lrs], data, device, cache))
    return [{n: {lr: next(runs) for lr in lrs} for n in norms} for _ in seeds]
