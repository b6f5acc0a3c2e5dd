"""Probed VGG training runs for santurkar2018's VGG claims (App. A).

Protocol (App. A.1): a CIFAR VGG, "standard" SGD (read as: no momentum, no weight decay) with a
fixed learning rate, batch 128, no data augmentation, Glorot initialization, cross-entropy loss.
One run per normalization kind; while it trains it records what every claim reads:

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

Probes evaluate through :class:`ParamLoss` (cloned buffers: BN running statistics do not move),
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
from harness.concurrent import cached_side_by_side
from harness.data import ImageData, normalize
from harness.models import vgg_cifar
from harness.norms import seed_noise
from harness.probes.distribution import ActivationSampler, UnitRecord, step_changes
from harness.probes.functional import ParamLoss, flat
from harness.probes.ics import internal_covariate_shift
from harness.probes.landscape import landscape_line
from harness.train import DIVERGENCE_LOSS, evaluate


@dataclasses.dataclass
class Checkpoint:
    step: int  # updates done before the probe
    loss: float  # loss of this step's batch at θ
    grad_norm: float  # ‖∇L(θ)‖₂ over all parameters
    ics: list[dict]  # per probed layer: layer, l2, cos, grad_norm (empty when not probed)
    gradient_line: dict  # LandscapeLine fields along the gradient
    random_line: dict  # along a random direction of the gradient's norm


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
    diverged_at: int | None  # 0-based step whose batch loss diverged

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


def norm_after(model: nn.Module, layer: int) -> nn.Module:
    """The normalization module that follows conv layer ``layer`` (1-based) in a CIFAR VGG."""
    features = list(model.features)
    convs = [i for i, m in enumerate(features) if isinstance(m, nn.Conv2d)]
    if not 1 <= layer <= len(convs):
        raise ValueError(f"layer {layer} is not among the conv layers 1..{len(convs)}")
    return features[convs[layer - 1] + 1]


def train_vgg(norm: str, data: ImageData, settings: dict, seed: int, device: torch.device | str = "cpu",
              probes: bool = True, lr: float | None = None, steps: int | None = None,
              cache: ModelCache | None = None) -> VGGRun:
    """Train one VGG; with ``probes`` measure ICS / landscape (for ``settings['probe_norms']``) at the
    checkpoints. With a ``cache``, the run (record and probes) is made once ever.

    Narrow unnormalized or ℓp VGGs produce subnormal floats in the backward pass, which x86 computes
    with about 100× slower (2.3 s instead of 30 ms per ℓ1 step); the process flushes them to zero
    (``harness.device.configure_threads``, run by the pytest plugin)."""
    device = torch.device(device)
    return cached_record(cache, _config(norm, data, settings, seed, device, probes, lr, steps),
                         lambda: _train_vgg(norm, data, settings, seed, device, probes, lr, steps), VGGRun.from_dict)


def _config(norm: str, data: ImageData, settings: dict, seed: int, device: torch.device | str, probes: bool = True,
            lr: float | None = None, steps: int | None = None) -> dict:
    return {"kind": "vgg-run", "norm": norm, "data": data_fingerprint(data), "settings": settings, "seed": seed,
            "device": torch.device(device).type, "probes": probes, "lr": lr, "steps": steps}


def train_vgg_many(calls: Sequence[dict], data: ImageData, device: torch.device | str = "cpu",
                   cache: ModelCache | None = None) -> list[VGGRun]:
    """``[train_vgg(**call, data=data, device=device, cache=cache) for call in calls]``. On the CPU the
    runs the cache lacks train side by side, one process per core (``cached_side_by_side``): a
    narrow VGG keeps one thread busy, not two. On a GPU they train here, one after another."""
    calls = [{"data": data, "device": str(device), **call} for call in calls]
    workers = None if torch.device(device).type == "cpu" else 0
    return cached_side_by_side(train_vgg, calls, cache, lambda c: _config(**c), workers)


def _train_vgg(norm: str, data: ImageData, settings: dict, seed: int, device: torch.device, probes: bool,
               lr: float | None, steps: int | None) -> VGGRun:
    lr = settings["lr"] if lr is None else lr
    steps = settings["steps"] if steps is None else steps
    torch.manual_seed(seed)
    model = vgg_cifar(settings["config"], norm, width=settings["width"]).to(device).train()
    seed_noise(model, 1000 * seed)
    data = data.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=settings.get("momentum", 0.0),
                          weight_decay=settings.get("weight_decay", 0.0))
    batches = torch.Generator(device=device).manual_seed(seed)
    directions = torch.Generator(device=device).manual_seed(seed + 1)  # random directions only
    channels = model.layer(settings["dist_layer"]).out_channels
    units = torch.randperm(channels, generator=torch.Generator().manual_seed(seed + 2))[: settings["dist_units"]].tolist()
    samplers = (ActivationSampler(model.layer(settings["dist_layer"]), units),
                ActivationSampler(norm_after(model, settings["dist_layer"]), units))
    groups, weights = layer_groups(model)
    probing = probes and norm in settings["probe_norms"]
    ics_layers = settings["ics_layers"] if norm in settings["ics_norms"] else []
    every = max(1, steps // settings["checkpoints"])
    n, batch = len(data.train_y), settings["batch_size"]
    train_eval = (data.train_x[: settings["eval_train_samples"]], data.train_y[: settings["eval_train_samples"]])
    perm, cursor = torch.randperm(n, generator=batches, device=device), 0
    losses, accs, evals, checkpoints, diverged_at = [], [], [], [], None

    def record_eval(step: int) -> None:
        tr, te = evaluate(model, *train_eval, data), evaluate(model, data.test_x, data.test_y, data)
        evals.append({"step": step, "train_acc": tr["acc"], "train_loss": tr["loss"], "test_acc": te["acc"], "test_loss": te["loss"]})

    try:
        for step in range(steps):
            if cursor + batch > n:  # new epoch
                perm, cursor = torch.randperm(n, generator=batches, device=device), 0
            idx = perm[cursor : cursor + batch]
            cursor += batch
            x, y = normalize(data.train_x[idx], data.mean, data.std), data.train_y[idx]
            if step % every == 0:
                if probing:
                    checkpoints.append(_probe(model, x, y, groups, weights, lr, step, settings["step_multipliers"], ics_layers, directions))
                if probes:
                    record_eval(step)
            with samplers[0].capture(step), samplers[1].capture(step):
                logits = model(x)
            loss = F.cross_entropy(logits, y)
            value = loss.item()
            losses.append(value)
            accs.append(float((logits.argmax(1) == y).float().mean()))
            if not math.isfinite(value) or value > DIVERGENCE_LOSS:
                diverged_at = step
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    finally:
        for sampler in samplers:
            sampler.remove()
    record_eval(len(losses) if diverged_at is None else diverged_at)
    return VGGRun(norm, seed, losses, accs, evals, checkpoints, samplers[0].record, samplers[1].record, diverged_at)


def _probe(model: nn.Module, x: torch.Tensor, y: torch.Tensor, groups: list[list[str]], weights: list[str],
           lr: float, step: int, step_multipliers: Sequence[float], ics_layers: Sequence[int],
           directions: torch.Generator) -> Checkpoint:
    """ICS and landscape lines on this step's batch; one loss and gradient at θ serves them all."""
    objective = ParamLoss(model, x, y, F.cross_entropy)
    current = objective.params()
    base = objective.loss_and_grad(current)
    multipliers = [m * lr for m in step_multipliers]
    ics = internal_covariate_shift(objective, groups, weights, lr, probe=list(ics_layers), params=current, base=base) \
        if ics_layers else []
    return Checkpoint(
        step=step, loss=base[0], grad_norm=float(flat(base[1]).norm()), ics=[dataclasses.asdict(r) for r in ics],
        gradient_line=dataclasses.asdict(landscape_line(objective, multipliers, "gradient", params=current, base=base)),
        random_line=dataclasses.asdict(landscape_line(objective, multipliers, "random", directions, params=current, base=base)),
    )


def lr_works(run: VGGRun, chance: float = 0.1) -> bool:
    """"Achievable" LR (App. J of bjorck2018): no divergence, and training accuracy above
    twice chance at the end (read: not stuck at chance)."""
    return run.diverged_at is None and run.final["train_acc"] > 2 * chance


def lr_range(norms: Sequence[str], data: ImageData, settings: dict, lrs: Sequence[float], steps: int, seed: int,
             device: torch.device | str = "cpu", cache: ModelCache | None = None) -> dict[str, dict[float, VGGRun]]:
    """Unprobed ``steps``-step runs of every norm at every LR (``train_vgg_many``)."""
    calls = [{"norm": n, "settings": settings, "seed": seed, "probes": False, "lr": lr, "steps": steps} for n in norms for lr in lrs]
    runs = iter(train_vgg_many(calls, data, device, cache))
    return {n: {lr: next(runs) for lr in lrs} for n in norms}
