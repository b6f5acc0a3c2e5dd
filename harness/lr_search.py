"""The highest achievable learning rate on a grid (bjorck2018 App. J), shared by every ``*-LR`` claim.

"Achievable" (App. J): over the run's whole budget no mini-batch loss diverges (§3.4: above 1e3,
or not finite), and at its end the test accuracy is clearly above that of random guessing. The
search walks the grid from the largest LR down and stops at the first achievable one, so the
answer is the maximum over the grid without training the LRs below it. A run stops early only at
the diverging batch (``train`` records it): nothing after it could make the run achievable, while
a run that learned early may still diverge later, so learning never cuts a run short.

Runs go through :class:`RunStore`: the same (model, data, training config) is trained once per
pytest session (an in-memory table) and once ever (the on-disk model cache), whichever claim asks.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence

import torch

from harness.cache import ModelCache, cached_record
from harness.data import ImageData
from harness.models.flops import forward_flops, training_flops
from harness.train import TrainConfig, TrainResult, train

CHANCE = 0.1  # ten balanced classes
SEARCH_EVAL_TRAIN = 256  # search runs decide on test accuracy; the training accuracy is only logged
FULL_RUN_EVAL_TRAIN = 2000  # training images a full run's final train accuracy reads


@dataclasses.dataclass(frozen=True)
class Trial:
    lr: float
    status: str  # "diverged" | "chance" | "learning"
    steps_done: int
    diverged_at: int | None
    test_acc: float | None  # at the last evaluation (None when it diverged before one)

    @property
    def achievable(self) -> bool:
        return self.status == "learning"


@dataclasses.dataclass(frozen=True)
class LRSearch:
    grid: tuple[float, ...]  # descending
    trials: tuple[Trial, ...]  # in the order run; LRs below the answer are not run

    @property
    def max_lr(self) -> float | None:
        """The highest achievable LR, or None when no LR of the grid is achievable."""
        return next((t.lr for t in self.trials if t.achievable), None)

    def as_dict(self) -> dict:
        return {"grid": list(self.grid), "max_lr": self.max_lr, "trials": [dataclasses.asdict(t) for t in self.trials]}


def classify(result: TrainResult, learning_acc: float) -> str:
    if result.diverged:
        return "diverged"
    return "learning" if result.final.get("test_acc", 0.0) >= learning_acc else "chance"


def max_lr(run: Callable[[float], TrainResult], grid: Sequence[float], learning_acc: float) -> LRSearch:
    """Highest LR of ``grid`` whose run (``run(lr)``) is achievable: no divergence, final test
    accuracy ≥ ``learning_acc`` (the chance level plus a margin the caller states)."""
    if not grid or any(not lr > 0 for lr in grid):
        raise ValueError(f"the LR grid must be non-empty and positive, got {list(grid)}")
    if not CHANCE < learning_acc <= 1:
        raise ValueError(f"learning_acc must lie above chance ({CHANCE}) and at most 1, got {learning_acc}")
    ordered = tuple(sorted(set(grid), reverse=True))
    trials = []
    for lr in ordered:
        result = run(lr)
        final = result.final.get("test_acc")
        trials.append(Trial(lr, classify(result, learning_acc), result.steps_done, result.diverged_at, final))
        if trials[-1].achievable:
            break
    return LRSearch(ordered, tuple(trials))


def _store_run(store: RunStore, model_config: dict, train_config: TrainConfig, eval_train_samples: int) -> None:
    store.run(model_config, train_config, eval_train_samples)


class RunStore:
    """Training runs keyed by their full config: once per session in memory, once ever on disk.

    ``build`` maps a model config (a dict of builder arguments) to a fresh model; the stored entry
    holds the training record only (no weights), so an LR grid costs kilobytes.
    """

    def __init__(self, cache: ModelCache, build: Callable[..., torch.nn.Module], data: ImageData,
                 data_config: dict, device: torch.device | str = "cpu", builder: str = "resnet_cifar"):
        self.cache, self.build, self.data, self.data_config, self.device = cache, build, data, data_config, device
        self.builder = builder  # the name of ``build`` in harness.models (for FLOP estimates)
        self._memo: dict[str, TrainResult] = {}
        self.trained = 0  # runs actually trained in this session (not loaded)

    def config(self, model_config: dict, train_config: TrainConfig, eval_train_samples: int = FULL_RUN_EVAL_TRAIN) -> dict:
        """The model cache's config (its key) of a run."""
        return {"kind": "run-record", "model": model_config, "data": self.data_config,
                "train": dataclasses.asdict(train_config), "eval_train_samples": eval_train_samples}

    def flops(self, model_config: dict, train_config: TrainConfig, eval_train_samples: int = FULL_RUN_EVAL_TRAIN) -> float:
        """Estimated FLOPs of a run: its training steps and its evaluations (test set plus
        ``eval_train_samples`` training images each)."""
        r = self.data.resolution
        evaluations = (train_config.total_steps // train_config.eval_every if train_config.eval_every else 1) + train_config.eval_at_start
        return training_flops(forward_flops(self.builder, model_config, (1, 3, r, r)), train_config.batch_size,
                              train_config.total_steps, evaluations * (len(self.data.test_y) + eval_train_samples))

    def is_stored(self, model_config: dict, train_config: TrainConfig, eval_train_samples: int = FULL_RUN_EVAL_TRAIN) -> bool:
        config = self.config(model_config, train_config, eval_train_samples)
        return json.dumps(config, sort_keys=True) in self._memo or self.cache.contains(config)

    def unplanned(self) -> RunStore:
        """This store on the cache without its planner (what a recipe makes runs with)."""
        return RunStore(self.cache.unplanned(), self.build, self.data, self.data_config, self.device, self.builder)

    def declare(self, runs: Sequence[tuple[dict, TrainConfig]], eval_train_samples: int = FULL_RUN_EVAL_TRAIN) -> None:
        """Declare ``(model_config, train_config)`` runs about to be asked for (``ModelCache.declare``:
        under --plan, listed with their estimates and a recipe each; otherwise nothing)."""
        runs = list(runs)
        self.cache.declare([self.config(m, t, eval_train_samples) for m, t in runs],
                           lambda i: self.flops(*runs[i], eval_train_samples),
                           make=lambda i: (_store_run, (self.unplanned(), *runs[i], eval_train_samples)))

    def run(self, model_config: dict, train_config: TrainConfig, eval_train_samples: int = FULL_RUN_EVAL_TRAIN) -> TrainResult:
        """``eval_train_samples``: training images each evaluation scores (search runs need few)."""
        config = self.config(model_config, train_config, eval_train_samples)
        key = json.dumps(config, sort_keys=True)
        if key not in self._memo:
            def create() -> TrainResult:
                self.trained += 1
                torch.manual_seed(train_config.seed)
                return train(self.build(**model_config), self.data, train_config, self.device, eval_train_samples)

            self._memo[key] = cached_record(self.cache, config, create, lambda record: TrainResult(**record))
        return self._memo[key]

    def search_runs(self, model_config: dict, make_config: Callable[[float], TrainConfig], grid: Sequence[float],
                    learning_acc: float) -> tuple[list[TrainConfig], list[bool]]:
        """The runs a search may make, without training: walking the grid from the top, a stored
        run decides as in the search (a stored achievable LR ends the walk); from the first run
        not stored on, every lower LR is listed as conditional (made only if the LRs above it are
        not achievable). Returns the runs' train configs and their conditional flags; the search
        needs training when any of them is not stored."""
        configs, conditional, unknown = [], [], False
        for lr in sorted(set(grid), reverse=True):
            config = make_config(lr)
            configs.append(config)
            conditional.append(unknown)
            if unknown or not self.is_stored(model_config, config, SEARCH_EVAL_TRAIN):
                unknown = True
            elif classify(self.run(model_config, config, SEARCH_EVAL_TRAIN), learning_acc) == "learning":
                break
        return configs, conditional

    def search(self, model_config: dict, make_config: Callable[[float], TrainConfig], grid: Sequence[float],
               learning_acc: float) -> LRSearch:
        return max_lr(lambda lr: self.run(model_config, make_config(lr), SEARCH_EVAL_TRAIN), grid, learning_acc)
