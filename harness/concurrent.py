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
(the pytest plugin does the same in the parent process, so both paths compute alike). Each worker receives the data once, on the CPU, and moves it to the
device itself. Several processes on one GPU time-slice it unless NVIDIA MPS runs
(``nvidia-cuda-mps-control -d``), which lets their kernels overlap.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch
from torch import nn

from harness.accel import Accel
from harness.data import ImageData
from harness.device import cpu_share, full_float32
from harness.train import TrainConfig, TrainResult, train

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


def _init_single_thread_worker() -> None:
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    full_float32()


def parallel_map(fn: Callable[..., Any], calls: Sequence[Sequence[Any]], workers: int | None = None) -> list[Any]:
    """``[fn(*args) for args in calls]``, computed side by side on ``workers`` spawned processes of
    one torch thread each (default: this process's share of the cores, ``cpu_share()``), in order.

    For independent CPU runs too small to keep two threads busy: a 25-layer width-10 DLN step is a
    few hundred tiny kernels, as fast on one thread as on two, so two processes do twice the work.
    ``fn`` and its arguments must pickle (``fn`` a module-level function). ``fn`` should compute
    under ``harness.device.single_threaded`` so that the in-process path (``workers`` ≤ 1, or a
    single call) gives the same bits as a worker. A call that raises raises here."""
    workers = cpu_share() if workers is None else workers
    if not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers must be an integer ≥ 0, got {workers!r}")
    calls = [tuple(args) for args in calls]
    if workers <= 1 or len(calls) <= 1:
        return [fn(*args) for args in calls]
    context = torch.multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(calls)), mp_context=context, initializer=_init_single_thread_worker) as pool:
        return list(pool.map(fn, *zip(*calls)))
