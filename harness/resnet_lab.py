"""The bjorck2018 training protocol (App. B) as one object shared by the training claims.

A :class:`ResNetLab` holds the family's settings (depth, width, data, step budgets, LR grid),
builds model configs for every variant (norm kind, depth, BN on top only, Fixup) and hands out
two kinds of runs through one :class:`~harness.lr_search.RunStore`:

- search runs (``max_lr``): ``search_steps`` steps with the App. B schedule, cut short only when
  they diverge, and judged at their end (App. J "achievable");
- full runs (``trained``): ``train_steps`` steps with the App. B schedule (LR ÷10 at 50% / 75%),
  evaluated every ``eval_every`` steps for the learning curves of Fig. 1.

Every (model, LR, seed) is trained once per session and once ever (on-disk cache), whichever
claim asks first.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from harness.cache import ModelCache, cached_record
from harness.concurrent import offloads, parallel_map, side_by_side_workers
from harness.data import ImageData, normalize
from harness.lr_search import CHANCE, FULL_RUN_EVAL_TRAIN, SEARCH_EVAL_TRAIN, LRSearch, RunStore
from harness.models import resnet_cifar
from harness.models.flops import forward_flops, training_flops
from harness.probes.divergence import DivergedBeforeBatch, along_update, batch_lines, find_diverging_update
from harness.probes.sgd_noise import per_example_gradients
from harness.settings import TrainingShared, typed
from harness.train import TrainConfig, TrainResult


@dataclasses.dataclass
class DivergingPath:
    """The update that made a run diverge (its LR and 1-based step) and ``along_update``'s record."""

    lr: float | None
    step: int | None
    path: dict | None


@dataclasses.dataclass
class GradientLines:
    """``batch_lines``' record per probed batch, or None when the run diverged before one."""

    lines: dict | None


@dataclasses.dataclass
class ResNetLab:
    settings: TrainingShared  # a plain mapping is parsed into it (checked like the YAML)
    data: ImageData
    data_config: dict
    cache: ModelCache
    device: torch.device | str = "cpu"

    def __post_init__(self):
        self.settings = typed(TrainingShared, self.settings, "ResNetLab settings")
        self.store = RunStore(self.cache, resnet_cifar, self.data, self.data_config, self.device)

    @property
    def learning_acc(self) -> float:
        """Test accuracy that counts as "not at chance" (App. J)."""
        return CHANCE + self.settings["learning_margin"]

    def model(self, norm: str = "batch", depth: int | None = None, **options) -> dict:
        """Builder arguments of ``resnet_cifar`` for a variant; options as the builder takes them."""
        return {"depth": depth or self.settings["depth"], "norm": norm, "width": self.settings["width"], **options}

    def search_config(self, lr: float, seed: int = 0, warm_start: bool = False, batch_size: int = 128) -> TrainConfig:
        s = self.settings
        return TrainConfig(lr=lr, steps=s["search_steps"], batch_size=batch_size, seed=seed, pad=self.pad,
                           warm_start_steps=self.epoch_steps(batch_size) if warm_start else 0)

    def train_config(self, lr: float, seed: int = 0, batch_size: int = 128, steps: int | None = None) -> TrainConfig:
        steps = steps or self.settings["train_steps"]
        return TrainConfig(lr=lr, steps=steps, batch_size=batch_size, seed=seed, pad=self.pad,
                           eval_every=max(1, steps * self.settings["eval_every"] // self.settings["train_steps"]))

    @property
    def pad(self) -> int:
        """Crop padding: App. B's 4 pixels on 32×32 images, scaled with the resolution."""
        return max(1, self.data.resolution // 8)

    def epoch_steps(self, batch_size: int = 128) -> int:
        return len(self.data.train_y) // batch_size

    def max_lr(self, model: dict, grid: list[float] | None = None, seed: int = 0, warm_start: bool = False) -> LRSearch:
        if self.cache.planning:  # --plan: the search's runs, with the recipe that makes them
            self.prefetch(searches=[{"model": model, "grid": grid, "seed": seed, "warm_start": warm_start}])
        return self.store.search(model, lambda lr: self.search_config(lr, seed, warm_start), grid or self.settings["grid"],
                                 self.learning_acc)

    def trained(self, model: dict, lr: float, seed: int = 0, batch_size: int = 128, steps: int | None = None) -> TrainResult:
        if self.cache.planning:  # --plan: the run, with the recipe that makes it
            self.prefetch(runs=[{"model": model, "lr": lr, "seed": seed, "batch_size": batch_size, "steps": steps}])
        return self.store.run(model, self.train_config(lr, seed, batch_size, steps))

    def trained_at_best(self, model: dict, seeds: Sequence[int], grid: Sequence[float] | None = None,
                        **run: Any) -> list[tuple[float, TrainResult]]:
        """Per seed, a full run at the net's highest achievable LR, achievable over the *full* budget
        (App. J; docs/verdicts.md: a run that learned and later diverged is not achievable): the
        search's highest achievable LR on ``grid``, or the next lower grid LR while the full run
        there diverges (the grid's lowest when the search found none). ``(lr, run)`` per seed; the
        run has diverged only when every candidate did. ``run``: further ``trained`` arguments
        (batch size, steps); the searches run at the default batch. Full runs are made side by
        side, one grid step down at a time for the seeds whose run diverged."""
        grid = sorted(grid or self.settings["grid"], reverse=True)
        candidates = {}
        for seed in seeds:
            best = self.max_lr(model, list(grid), seed=seed).max_lr
            candidates[seed] = [lr for lr in grid if lr <= best] if best is not None else [grid[-1]]
        out: dict[int, tuple[float, TrainResult]] = {}
        while len(out) < len(candidates):
            todo = {seed: lrs.pop(0) for seed, lrs in candidates.items() if seed not in out}
            self.prefetch(runs=[{"model": model, "lr": lr, "seed": seed, **run} for seed, lr in todo.items()])
            for seed, lr in todo.items():
                result = self.trained(model, lr, seed, **run)
                if not result.diverged or not candidates[seed]:
                    out[seed] = (lr, result)
        return [out[seed] for seed in seeds]

    def per_example_gradients(self, model: dict, n: int, seed: int) -> torch.Tensor:
        """The (n, parameters) matrix of per-example gradients of ``model`` (builder arguments of
        ``resnet_cifar``) at its seed-``seed`` initialization, on the first ``n`` training images
        (B-SGD-NOISE's Eq. 2). Made once ever: the model cache keeps it."""
        task = PerExampleGradients(model, n, seed)
        config = task.config(self)

        def create() -> dict:
            torch.manual_seed(seed)
            x = normalize(self.data.train_x[:n], self.data.mean, self.data.std)
            return {"grads": per_example_gradients(resnet_cifar(**model), x, self.data.train_y[:n])}

        # under --plan: declared with the task as its recipe, so a --plan-execute stage makes it
        self.cache.declare([config], lambda i: task.flops(self), make=lambda i: (run_task, (self.unplanned(), task)))
        return self.cache.get_or_create(config, create)["grads"]

    def per_example_config(self, model: dict, n: int, seed: int) -> dict:
        """The model cache's config of :meth:`per_example_gradients`."""
        return {"kind": "per-example-gradients", "model": model, "data": self.data_config, "n": n, "seed": seed}

    def diverging_update(self, lr: float, max_steps: int, doublings: int, points: int, seed: int = 0) -> DivergingPath | None:
        """The first update that makes the unnormalized base net diverge (§3.4, Figs. 5–6), trying
        ``lr``, then doubling it up to ``doublings`` times, each run at most ``max_steps`` steps at that
        constant LR (the first batches of training: no decay yet) from a fresh net drawn from ``seed``; with ``along_update`` at ``points`` values of t over every
        layer. None when no LR tried diverges. Made once ever (the model cache keeps the record)."""
        config = self.diverging_config(lr, max_steps, doublings, points, seed)

        def create() -> DivergingPath:
            for k in range(doublings + 1):
                torch.manual_seed(seed)
                model = resnet_cifar(**self.model("none"))
                config = TrainConfig(lr=lr * 2**k, steps=max_steps, seed=seed, pad=self.pad, milestones=())  # the LR under test throughout
                update = find_diverging_update(model, self.data, config, self.device)
                if update is not None:
                    return DivergingPath(update.lr, update.step, along_update(model, update, np.linspace(0, 1, points),
                                                                              list(range(1, model.depth))))
            return DivergingPath(None, None, None)

        found = cached_record(self.cache, config, create, lambda record: DivergingPath(**record))
        return found if found.lr is not None else None

    def diverging_config(self, lr: float, max_steps: int, doublings: int, points: int, seed: int = 0) -> dict:
        """The model cache's config of :meth:`diverging_update`."""
        return {"kind": "diverging-update", "model": self.model("none"), "data": self.data_config, "lr": lr, "max_steps": max_steps,
                "doublings": doublings, "points": points, "seed": seed, "pad": self.pad, "milestones": []}

    def lines_config(self, norm: str, lr: float, batches: Sequence[int], etas: Sequence[float], seed: int = 0) -> dict:
        """The model cache's config of :meth:`gradient_lines`."""
        return {"kind": "gradient-lines", "model": self.model(norm), "data": self.data_config, "lr": lr, "batches": list(batches),
                "etas": [float(e) for e in etas], "seed": seed, "pad": self.pad, "milestones": []}

    def _per_example(self, model: dict) -> float:
        r = self.data.resolution
        return forward_flops("resnet_cifar", model, (1, 3, r, r))

    def gradient_lines(self, norm: str, lr: float, batches: Sequence[int], etas: Sequence[float], seed: int = 0) -> dict[int, dict] | None:
        """``batch_lines`` (App. N, Fig. 24) of a fresh base net with ``norm`` drawn from ``seed``,
        trained at the constant ``lr`` (the first batches of training: no decay yet) up to the last of
        ``batches``; None when the run diverges before one of them. Made once ever (the model cache keeps the record)."""
        etas = [float(e) for e in etas]
        config = self.lines_config(norm, lr, batches, etas, seed)

        def create() -> GradientLines:
            torch.manual_seed(seed)
            try:
                return GradientLines(batch_lines(resnet_cifar(**self.model(norm)), self.data,
                                                 TrainConfig(lr=lr, steps=max(batches), seed=seed, pad=self.pad, milestones=()), batches, etas,
                                                 self.device))
            except DivergedBeforeBatch:
                return GradientLines(None)

        return cached_record(self.cache, config, create, lambda record: GradientLines(**record)).lines

    def side_by_side(self, tasks: Sequence[LabTask]) -> list:
        """``[task.run(self) for task in tasks]``, side by side on the session's executor
        (``parallel_map``: the same bits as in process; on a GPU in process unless
        ``--runs-per-gpu`` or Ray). Under --plan every task's run is declared first, with the task
        as the recipe that makes it."""
        bad = [t for t in tasks if not isinstance(t, LabTask)]
        if bad:
            raise TypeError(f"side_by_side takes LabTask objects (DivergingUpdate, GradientLinesRun, …), got {bad[0]!r}")
        self.cache.declare([t.config(self) for t in tasks], lambda i: tasks[i].flops(self),
                           make=lambda i: (run_task, (self.unplanned(), tasks[i])))
        if not offloads(self.device):
            return [t.run(self) for t in tasks]
        return parallel_map(run_task, [(self, t) for t in tasks], side_by_side_workers(self.device))

    def _search(self, model: dict, grid: list[float] | None = None, seed: int = 0, warm_start: bool = False):
        """The runs :meth:`max_lr` may make and their conditional flags (``RunStore.search_runs``)."""
        return self.store.search_runs(model, lambda lr: self.search_config(lr, seed, warm_start), grid or self.settings["grid"],
                                      self.learning_acc)

    def unplanned(self) -> ResNetLab:
        """This lab on the cache without its planner (what a recipe makes runs with); made once."""
        if "_unplanned" not in self.__dict__:
            self.__dict__["_unplanned"] = dataclasses.replace(self, cache=self.cache.unplanned())
        return self.__dict__["_unplanned"]

    def expect_after_search(self, searches: Sequence[dict], runs: Sequence[dict]) -> None:
        """Under --plan, while any of ``searches`` (``max_lr`` keyword arguments) lacks runs: list the
        full ``runs`` (``trained`` keyword arguments without ``lr``) whose LR those searches will
        pick, priced at their cost (the same at any LR), as pending. Otherwise nothing: once the
        searches are stored the claim asks for the real runs."""
        if not self.cache.planning:
            return
        if all(self.store.is_stored(kw["model"], c, SEARCH_EVAL_TRAIN) for kw in searches for c in self._search(**kw)[0]):
            return
        for kw in runs:
            config = self.train_config(1.0, kw.get("seed", 0), kw.get("batch_size", 128), kw.get("steps"))
            what = {"model": kw["model"], "seed": config.seed, "batch_size": config.batch_size, "steps": config.steps}
            self.cache.expect("after-search:" + json.dumps(what, sort_keys=True), "run-record",
                              f"run-record({', '.join(f'{k}={v}' for k, v in kw['model'].items())}, seed={config.seed}, "
                              f"batch={config.batch_size}, steps={config.steps}, LR picked by its search)",
                              self.store.flops(kw["model"], config))

    def prefetch(self, searches: Sequence[dict] = (), runs: Sequence[dict] = ()) -> None:
        """Make side by side the searches (``max_lr`` keyword arguments) and full runs (``trained``
        keyword arguments) a claim is about to ask for, each in a worker process (or Ray task) that
        stores its runs in the model cache (``parallel_map``; on a GPU with the default executor:
        nothing, they train when asked). Only speed:
        the claim's own calls then load them, and every run computes alike here and in a worker.
        Which of them need training is read from the cache's keys (a stored search run decides as in
        the search); under --plan they are declared instead."""
        planned, todo = [], []  # planned: (model, train config, eval samples, conditional, task that makes it)
        for kw in searches:
            task, (configs, conditional) = Search(**kw), self._search(**kw)
            all_stored = True  # one task makes the search's runs, as far as the search goes: the first missing one names it
            for c, f in zip(configs, conditional):
                stored = self.store.is_stored(task.model, c, SEARCH_EVAL_TRAIN)
                planned.append((task.model, c, SEARCH_EVAL_TRAIN, f, task if all_stored and not stored else None))
                all_stored = all_stored and stored
            if not all_stored:
                todo.append((self, task))
        for kw in runs:
            task = FullRun(**kw)
            config = task.train_config(self)
            planned.append((task.model, config, FULL_RUN_EVAL_TRAIN, False, task))
            if not self.store.is_stored(task.model, config):
                todo.append((self, task))
        if self.cache.planning:
            self.cache.declare([self.store.config(*p[:3]) for p in planned], lambda i: self.store.flops(*planned[i][:3]),
                               lambda i: planned[i][3],
                               make=lambda i: planned[i][4] and (run_task, (self.unplanned(), planned[i][4])))
        if not offloads(self.device):
            return
        if len(todo) > 1 and not self.cache.judge_only:  # judge-only: the first missing run raises, in process
            parallel_map(run_task, todo, side_by_side_workers(self.device))


class LabTask:
    """One unit of work a :class:`ResNetLab` makes side by side or in a planned stage: a frozen
    dataclass of the arguments, which says what it runs (``run``), the model cache's config of
    what it stores (``config``) and an estimate of its cost (``flops``). Being an object (not a
    method name), it pickles to a worker or a Ray task as it is, and a wrong one fails where it
    is made."""

    def run(self, lab: ResNetLab) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not say what it runs")

    def config(self, lab: ResNetLab) -> dict:
        raise NotImplementedError(f"{type(self).__name__} is planned run by run in ResNetLab.prefetch")

    def flops(self, lab: ResNetLab) -> float:
        raise NotImplementedError(f"{type(self).__name__} is priced run by run in ResNetLab.prefetch")

    def arguments(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def run_task(lab: ResNetLab, task: LabTask) -> Any:
    """What a worker process or a recipe calls: ``task.run(lab)``."""
    return task.run(lab)


@dataclasses.dataclass(frozen=True)
class Search(LabTask):
    """The highest achievable LR of ``model`` on the grid (:meth:`ResNetLab.max_lr`); it stores the
    search's runs (planned one by one in ``prefetch``)."""

    model: dict
    grid: list[float] | None = None
    seed: int = 0
    warm_start: bool = False

    def run(self, lab: ResNetLab) -> LRSearch:
        return lab.max_lr(**self.arguments())


@dataclasses.dataclass(frozen=True)
class FullRun(LabTask):
    """A full run at ``lr`` (:meth:`ResNetLab.trained`)."""

    model: dict
    lr: float
    seed: int = 0
    batch_size: int = 128
    steps: int | None = None

    def run(self, lab: ResNetLab) -> TrainResult:
        return lab.trained(**self.arguments())

    def train_config(self, lab: ResNetLab) -> TrainConfig:
        return lab.train_config(self.lr, self.seed, self.batch_size, self.steps)


@dataclasses.dataclass(frozen=True)
class DivergingUpdate(LabTask):
    """The first update that makes the unnormalized base net diverge (:meth:`ResNetLab.diverging_update`)."""

    lr: float
    max_steps: int
    doublings: int
    points: int
    seed: int = 0

    def run(self, lab: ResNetLab) -> DivergingPath | None:
        return lab.diverging_update(**self.arguments())

    def config(self, lab: ResNetLab) -> dict:
        return lab.diverging_config(**self.arguments())

    def flops(self, lab: ResNetLab) -> float:
        """Upper bound: every doubling trained for ``max_steps`` steps, then the line along the update."""
        per = lab._per_example(lab.model("none"))
        return training_flops(per, 128, (self.doublings + 1) * self.max_steps) + per * 128 * self.points


@dataclasses.dataclass(frozen=True)
class GradientLinesRun(LabTask):
    """The loss along the gradient at the given batches of a base net with ``norm`` (:meth:`ResNetLab.gradient_lines`)."""

    norm: str
    lr: float
    batches: list[int]
    etas: list[float]
    seed: int = 0

    def run(self, lab: ResNetLab) -> dict[int, dict] | None:
        return lab.gradient_lines(**self.arguments())

    def config(self, lab: ResNetLab) -> dict:
        return lab.lines_config(**self.arguments())

    def flops(self, lab: ResNetLab) -> float:
        per = lab._per_example(lab.model(self.norm))
        return training_flops(per, 128, max(self.batches)) + per * 128 * len(self.batches) * len(self.etas)


@dataclasses.dataclass(frozen=True)
class PerExampleGradients(LabTask):
    """The per-example gradients of ``model`` at its seed-``seed`` initialization on ``n`` images
    (:meth:`ResNetLab.per_example_gradients`)."""

    model: dict
    n: int
    seed: int = 0

    def run(self, lab: ResNetLab) -> torch.Tensor:
        return lab.per_example_gradients(**self.arguments())

    def config(self, lab: ResNetLab) -> dict:
        return lab.per_example_config(**self.arguments())

    def flops(self, lab: ResNetLab) -> float:
        return training_flops(lab._per_example(self.model), self.n, 1)
