"""What the bjorck2018 training claims ask of the ResNet lab, in the lab protocol every family
follows: the claim names the runs it reads, and gets typed records back.

    claim ──names runs──▶ this module ──declare──▶ model cache (--plan lists them, makes none)
                                      ──make────▶ the missing ones side by side (executors)
                                      ──serve───▶ LRSearch / TrainResult per seed

A claim module calls these functions and never the lab's store, its prefetch lists or the
planner: how runs are declared to ``--plan``, which of them train side by side and what the cache
serves is decided here and in :class:`~harness.resnet_lab.ResNetLab`, the same way for every claim.

Nothing here makes what the model cache stores (the lab does), so editing this module keeps
stored runs (``harness.cache.versioned_modules``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from harness.lr_search import LRSearch
from harness.resnet_lab import ResNetLab
from harness.train import TrainConfig, TrainResult

LR = float | Sequence[float]  # one LR for every seed, or one per seed (a net's own highest achievable LR)


def start(verdict, lab: ResNetLab, preconditions: Callable | None = None, own_runs: bool = True) -> None:
    """A claim's first step: it names the lab's dataset; with ``preconditions`` (the fixture
    ``lab_preconditions``), it checks the ones the claim requires on this look's seeds, so that a
    lab that cannot show the claim makes it inconclusive. A claim with ``own_runs`` (searches or
    full runs beyond the base nets' searches) then stops without making them; under --plan, while
    the preconditions cannot be measured yet, the runs it declares from here are conditional."""
    verdict.ran_on(lab.data.name, lab.data.stands_in_for)
    if preconditions is None:
        return
    measured = preconditions(verdict.seeds)
    measured.check(verdict)
    if own_runs:
        verdict.stop_unless_preconditions_met()
        if not measured.known:  # under --plan, before the base runs are stored: its runs may never be made
            lab.cache.conditional_from_here()


def grid(lab: ResNetLab, extra_lrs: Sequence[float] = ()) -> list[float]:
    """The lab's LR grid with a claim's ``extra_lrs``, highest first."""
    return sorted(set(lab.settings["grid"]) | set(extra_lrs), reverse=True)


def per_seed(seeds: Sequence[int], lr: LR) -> list[float]:
    """An LR for every seed: the same one, or one per seed."""
    lrs = list(lr) if isinstance(lr, (list, tuple)) else [lr] * len(seeds)
    if len(lrs) != len(seeds):
        raise ValueError(f"need one LR per seed ({list(seeds)}), got {lrs}")
    return lrs


def searches(lab: ResNetLab, nets: Mapping[Any, dict], seeds: Sequence[int], grid: Sequence[float] | None = None,
             **options) -> dict[Any, list[LRSearch]]:
    """The highest achievable LR of every net (``ResNetLab.max_lr``; ``options``: ``warm_start``)
    on each of ``seeds``: ``{name: [search of each seed]}``. Declared and made side by side first."""
    grid = None if grid is None else list(grid)
    lab.prefetch(searches=[{"model": m, "grid": grid, "seed": s, **options} for m in nets.values() for s in seeds])
    return {name: [lab.max_lr(m, grid, seed=s, **options) for s in seeds] for name, m in nets.items()}


def full_runs(lab: ResNetLab, seeds: Sequence[int], nets: Mapping[Any, tuple[dict, LR]],
              more: Sequence[dict] = ()) -> dict[Any, list[TrainResult]]:
    """Full runs (the App. B schedule): for every net ``name: (model, LR)``, one run per seed,
    ``{name: [run of each seed]}``. ``more``: further runs (``ResNetLab.trained`` arguments) to
    make side by side with them, read afterwards with :func:`full_run`."""
    asked = {name: [{"model": m, "lr": lr, "seed": s} for s, lr in zip(seeds, per_seed(seeds, lrs))]
             for name, (m, lrs) in nets.items()}
    lab.prefetch(runs=list(more) + [run for runs in asked.values() for run in runs])
    return {name: [lab.trained(**run) for run in runs] for name, runs in asked.items()}


def full_run(lab: ResNetLab, run: dict) -> TrainResult:
    """One full run (``ResNetLab.trained`` arguments), made now unless :func:`full_runs` made it."""
    return lab.trained(**run)


def at_best(lab: ResNetLab, model: dict, seeds: Sequence[int], grid: Sequence[float] | None = None,
            **run) -> tuple[list[float], list[TrainResult]]:
    """A net's highest LR achievable over a full run, per seed, and those runs
    (``ResNetLab.trained_at_best``; ``run``: batch size, steps). Its searches are declared first,
    with the full runs their result will pick listed to --plan as pending."""
    grid = None if grid is None else list(grid)
    lab.expect_after_search([{"model": model, "grid": grid, "seed": s} for s in seeds],
                            [{"model": model, "seed": s, **run} for s in seeds])
    lab.prefetch(searches=[{"model": model, "grid": grid, "seed": s} for s in seeds])
    best = lab.trained_at_best(model, seeds, grid, **run)
    return [lr for lr, _ in best], [r for _, r in best]


def constant_lr_runs(lab: ResNetLab, model: dict, lrs: Sequence[float], seeds: Sequence[int],
                     steps: int) -> dict[tuple[float, int], TrainResult]:
    """Short runs at a constant LR (no decay: the LR under test throughout; App. B's schedule would
    divide it by 10 halfway), ``{(lr, seed): run}``, declared to --plan together."""
    configs = {(lr, seed): TrainConfig(lr=lr, steps=steps, seed=seed, pad=lab.pad, milestones=()) for lr in lrs for seed in seeds}
    lab.store.declare([(model, c) for c in configs.values()])
    return {key: lab.store.run(model, c) for key, c in configs.items()}


def final(runs: Sequence[TrainResult], key: str = "test_acc") -> list[float]:
    """``key`` at the end of each full run; NaN for a run that diverged (it has no final value,
    and ``Verdict.decide_readout(..., every_seed_finite=True)`` makes the claim inconclusive)."""
    return [float("nan") if r.diverged else r.final[key] for r in runs]
