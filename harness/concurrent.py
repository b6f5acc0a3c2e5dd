"""Many small independent training runs (LR grids × seeds), one after another or on N processes.

A GPU trains a small net far below its capacity: each step is a few hundred tiny kernels, and the
Python loop, the kernel launches and the per-step ``loss.item()`` leave it idle most of the time.
Several worker processes on the same device fill those gaps. :func:`run_all` takes a list of
:class:`Run` (model builder + arguments + ``TrainConfig``) and returns their ``TrainResult`` in
input order; ``workers=0`` runs them in this process one after another, ``workers=N`` on N spawned
processes (``torch.multiprocessing``, spawn: safe with CUDA). Every run seeds the global RNG with
its ``TrainConfig.seed`` before building its model, exactly as ``lr_search.RunStore`` does, so a
run's result does not depend on where or after what it ran: on the CPU the results are identical
to sequential execution (tested); on CUDA they are as deterministic as the kernels are.

Workers set ``threads_per_worker`` torch threads (default: as many as this process uses, since
CPU float reductions depend on the thread count and results would otherwise differ from a
sequential run's in the last bits) and flush denormals like ``harness.device.configure_threads``
(the pytest plugin does the same in the parent process, so both paths compute alike). Each
worker receives the data once, on the CPU, and moves it to the device itself. Several processes
on one GPU time-slice it unless NVIDIA MPS runs (``nvidia-cuda-mps-control -d``), which lets their
kernels overlap. (``run_all`` is what the throughput benchmark measures; it starts its pool per
call.)

The claims' own runs go through :func:`parallel_map`, which hands them to the session's
*executor* (``--executor``, env ``BNCLAIMS_EXECUTOR``) through the claims machinery's
(``harness.claimkit.executors``); this module says how the suite's workers compute and where:

- ``pool`` (default): a pool of one process per core kept for the session (spawned once: a fresh
  process spends seconds importing torch); on a GPU the labs run one after another in process,
  or ``--runs-per-gpu K`` processes side by side on each GPU;
- ``local``: every run in the pytest process, one after another;
- ``ray``: Ray tasks (``num_cpus=1``, ``num_gpus=1/K`` on a GPU) on the cluster at ``RAY_ADDRESS``
  or a local Ray instance started for the session, carrying the suite's ``BNCLAIMS_*`` settings
  and code; a task whose worker dies is retried, an exception in a run raises here naming it.

Every executor's workers compute as the pytest process does (``configure_threads``: the same
torch threads, denormals flushed, full float32, and BN as the identity under
``-p harness.bn_identity``), so the records are the same bits whichever ran them
(``tests/test_executors.py``). :func:`cached_side_by_side` builds on it for records made
through the model cache: the DLN and VGG runs, and ``ResNetLab.prefetch``; the workers store the
records in the model cache (a shared folder for a cluster), and the claims then load them.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

import torch
from torch import nn

from harness.accel import Accel
from harness.cache import ModelCache
from harness.claimkit import executors
from harness.claimkit.executors import EXECUTORS, RayOptions
from harness.data import ImageData
from harness.device import configure_threads, cpu_share
from harness.sources import REPO
from harness.train import TrainConfig, TrainResult, train

T = TypeVar("T")
EXECUTOR_ENV = "BNCLAIMS_EXECUTOR"
RUNS_PER_GPU_ENV = "BNCLAIMS_RUNS_PER_GPU"
_BUILDER = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


@dataclasses.dataclass(frozen=True)
class Run:
    model: dict  # keyword arguments of the builder
    train: TrainConfig
    builder: str = "harness.models:resnet_cifar"  # "module:function", importable in a fresh process

    def __post_init__(self):
        if not isinstance(self.builder, str) or not _BUILDER.fullmatch(self.builder):
            raise ValueError(f"builder must be 'module:function' (importable by a worker process), got {self.builder!r}")
        if not isinstance(self.train, TrainConfig):
            raise TypeError(f"train must be a TrainConfig, got {type(self.train).__name__}")

    def build(self) -> nn.Module:
        module, name = self.builder.split(":")
        return getattr(importlib.import_module(module), name)(**self.model)


def run_one(run: Run, data: ImageData, device: torch.device | str = "cpu", accel: Accel | None = None,
            eval_train_samples: int = 2000) -> TrainResult:
    """One run: seed, build, train."""
    torch.manual_seed(run.train.seed)
    return train(run.build(), data, run.train, device, eval_train_samples, accel=accel)


_worker: dict = {}


def _init_worker(data: ImageData, device: str, threads: int, accel: Accel | None, eval_train_samples: int) -> None:
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    _worker.update(data=data.to(device), device=device, accel=accel, eval_train_samples=eval_train_samples)


def _run_in_worker(run: Run) -> TrainResult:
    return run_one(run, _worker["data"], _worker["device"], _worker["accel"], _worker["eval_train_samples"])


def run_all(runs: Sequence[Run], data: ImageData, device: torch.device | str = "cpu", workers: int = 0,
            threads_per_worker: int | None = None, accel: Accel | None = None, eval_train_samples: int = 2000) -> list[TrainResult]:
    """Train every run; results in the order of ``runs``. ``workers`` 0 or 1: in this process, one
    after another; N ≥ 2: on N spawned processes sharing ``device``. A run that raises raises here."""
    if not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers must be an integer ≥ 0, got {workers!r}")
    threads_per_worker = torch.get_num_threads() if threads_per_worker is None else threads_per_worker
    if threads_per_worker < 1:
        raise ValueError(f"threads_per_worker must be ≥ 1, got {threads_per_worker}")
    runs = list(runs)
    if not runs:
        return []
    if workers <= 1:
        on_device = data.to(device)
        return [run_one(run, on_device, device, accel, eval_train_samples) for run in runs]
    context = torch.multiprocessing.get_context("spawn")
    initargs = (data.to("cpu"), str(device), threads_per_worker, accel, eval_train_samples)
    with ProcessPoolExecutor(min(workers, len(runs)), mp_context=context, initializer=_init_worker, initargs=initargs) as pool:
        return list(pool.map(_run_in_worker, runs))


def _init_compute_worker() -> None:
    from harness.bn_identity import apply_if_requested

    apply_if_requested()  # a run under ``-p harness.bn_identity`` trains with BN as the identity here too
    configure_threads()  # BNCLAIMS_THREADS (default 1) torch threads, denormals flushed, full float32


def executor() -> str:
    """The session's executor (``BNCLAIMS_EXECUTOR``, set from ``--executor``; default ``pool``)."""
    value = os.environ.get(EXECUTOR_ENV, "pool")
    if value not in EXECUTORS:
        raise ValueError(f"{EXECUTOR_ENV}={value!r}: the executor is one of {', '.join(EXECUTORS)}")
    return value


def runs_per_gpu() -> int:
    """Runs side by side on one GPU (``BNCLAIMS_RUNS_PER_GPU``, set from ``--runs-per-gpu``; default 1)."""
    raw = os.environ.get(RUNS_PER_GPU_ENV, "1")
    if not (raw.isascii() and raw.isdigit() and int(raw) >= 1):
        raise ValueError(f"{RUNS_PER_GPU_ENV}={raw!r}: expected a whole number ≥ 1")
    return int(raw)


def offloads(device: torch.device | str) -> bool:
    """Whether a lab's independent runs on ``device`` go to other processes (or Ray tasks)
    instead of one after another in this process."""
    kind = executor()
    return kind == "ray" or (kind == "pool" and (torch.device(device).type == "cpu" or runs_per_gpu() > 1))


def side_by_side_workers(device: torch.device | str) -> int | None:
    """``parallel_map``'s ``workers`` for runs on ``device``: one per core on the CPU (None), on a
    GPU ``runs_per_gpu()`` (1: in process); 0 with the ``local`` executor."""
    if not offloads(device):
        return 0
    return None if torch.device(device).type == "cpu" else runs_per_gpu()


def ray_options() -> RayOptions:
    """The suite's Ray tasks: they get its ``BNCLAIMS_*`` and thread settings and the project's code
    (``fixtures/`` is not an installed package), a local instance gets this process's share of the
    cores, and a task ``1 / runs_per_gpu()`` of a GPU when there is one."""
    env = {k: v for k, v in os.environ.items()
           if k.startswith("BNCLAIMS_") or k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    return RayOptions(env, str(REPO), (".git", ".venv", "fixtures/cache", "reports", "*.pt", "__pycache__"), cpu_share(),
                      1 / runs_per_gpu() if torch.cuda.is_available() else 0)


def parallel_map(fn: Callable[..., Any], calls: Sequence[Sequence[Any]], workers: int | None = None) -> list[Any]:
    """``[fn(*args) for args in calls]``, computed side by side on ``workers`` spawned processes
    (default: this process's share of the cores, ``cpu_share()``), results in order; with the
    ``ray`` executor as Ray tasks, with ``local`` in this process (the machinery's
    ``harness.claimkit.executors.parallel_map`` on the session's executor).

    The workers compute as this process does (``configure_threads``: BNCLAIMS_THREADS torch
    threads, default 1), so a call gives the same bits in a worker and in process (``workers`` ≤ 1,
    or a single call). For independent CPU runs of small nets, which two processes get through
    faster than two threads (a DLN run: 2×). ``fn`` and its arguments must pickle (``fn`` a
    module-level function). A call that raises raises here."""
    kind = executor()
    workers = 0 if kind == "local" else cpu_share() if workers is None else workers
    return executors.parallel_map(fn, calls, workers, kind, _init_compute_worker, ray_options() if kind == "ray" else None)


def cached_side_by_side(fn: Callable[..., T], calls: Sequence[dict], cache: ModelCache | None,
                        config: Callable[[dict], dict], workers: int | None = None,
                        flops: Callable[[dict], float] | None = None) -> list[T]:
    """``[fn(**call, cache=cache) for call in calls]`` for a ``fn`` that makes a record through
    ``cached_record(cache, config(call), ...)``: the calls whose record the cache lacks run side by
    side (``parallel_map``), the workers store them, and every record is then loaded here, so a
    cold and a warm run hand back the same values. Without a cache the made records are returned.
    Under --plan the calls are declared (``ModelCache.declare``, with ``flops(call)`` estimates)
    (the machinery's ``stored_side_by_side`` on this session's executor)."""
    return executors.stored_side_by_side(fn, calls, cache, config, lambda f, c: parallel_map(f, c, workers), flops)
