"""Many small runs at once (harness/concurrent.py): same results as one after another, in order."""

from __future__ import annotations

import os
from concurrent.futures.process import BrokenProcessPool

import pytest
import torch

from harness.concurrent import Run, parallel_map, run_all, run_one
from harness.data import synthetic_cifar
from harness.train import TrainConfig


@pytest.fixture(scope="module")
def data():
    return synthetic_cifar(256, 64, resolution=8, seed=0)


def grid(lrs=(0.3, 0.03, 0.003), seeds=(0, 1)):
    return [Run({"depth": 8, "norm": "batch", "width": 4}, TrainConfig(lr=lr, steps=4, batch_size=32, seed=s))
            for lr in lrs for s in seeds]


def test_concurrent_runs_equal_sequential_runs_in_input_order(data):
    runs = grid()
    sequential = run_all(runs, data, workers=0)
    concurrent = run_all(runs, data, workers=2)
    assert [r.losses for r in concurrent] == [r.losses for r in sequential]
    assert [r.evals for r in concurrent] == [r.evals for r in sequential]
    assert len({tuple(r.losses) for r in sequential}) == len(runs)  # every run differs: the order is checked
    assert sequential[4].losses == run_one(runs[4], data).losses


def test_a_failing_run_raises_in_the_caller(data):
    runs = [grid()[0], Run({"depth": 7, "norm": "batch", "width": 4}, TrainConfig(lr=0.1, steps=2, batch_size=32))]
    with pytest.raises(ValueError, match="depth"):
        run_all(runs, data, workers=2)


def test_run_builds_from_an_importable_builder():
    torch.manual_seed(0)
    model = Run({"config": "vgg11", "norm": "batch", "width": 0.125}, TrainConfig(lr=0.1, steps=1),
                builder="harness.models:vgg_cifar").build()
    assert isinstance(model, torch.nn.Module)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"builder": "harness.models.resnet_cifar"}, ValueError, "module:function"),
    ({"builder": "lambda: x"}, ValueError, "module:function"),
    ({"train": {"lr": 0.1}}, TypeError, "TrainConfig"),
])
def test_bad_runs(kwargs, error, message):
    with pytest.raises(error, match=message):
        Run(**({"model": {}, "train": TrainConfig(lr=0.1, steps=1)} | kwargs))


@pytest.mark.parametrize("kwargs, message", [({"workers": -1}, "workers"), ({"workers": 1.5}, "workers"),
                                             ({"threads_per_worker": 0}, "threads_per_worker")])
def test_bad_pool_settings(data, kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_all(grid(), data, **kwargs)


def test_no_runs_no_results(data):
    assert run_all([], data, workers=4) == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: workers share one GPU")
def test_workers_share_a_gpu(data):
    runs = grid(lrs=(0.03,), seeds=(0, 1, 2))
    sequential = run_all(runs, data, "cuda", workers=0)
    concurrent = run_all(runs, data, "cuda", workers=3)
    for a, b in zip(sequential, concurrent):
        # cuDNN need not pick the same algorithms in another process: float32 rounding over 4 steps
        assert b.steps_done == a.steps_done and b.losses == pytest.approx(a.losses, rel=1e-3)


def _square_on_threads(x):
    return x * x, torch.get_num_threads()


def _fail_on_two(x):
    if x == 2:
        raise ArithmeticError(f"bad {x}")
    return x


def test_parallel_map_keeps_order_and_runs_single_threaded():
    assert parallel_map(_square_on_threads, [(3,), (1,), (2,)], workers=2) == [(9, 1), (1, 1), (4, 1)]
    assert parallel_map(_square_on_threads, [(3,)], workers=2) == [(9, torch.get_num_threads())]  # one call: in process
    assert parallel_map(_square_on_threads, [], workers=2) == []


def test_parallel_map_errors():
    with pytest.raises(ArithmeticError, match="bad 2"):
        parallel_map(_fail_on_two, [(1,), (2,), (3,)], workers=2)
    with pytest.raises(ValueError, match="workers must be an integer"):
        parallel_map(_square_on_threads, [(1,)], workers=-1)


def _die(x):
    os._exit(3)


def test_a_dead_worker_is_an_error_and_the_next_call_starts_afresh():
    with pytest.raises(BrokenProcessPool):
        parallel_map(_die, [(1,), (2,)], workers=2)
    assert parallel_map(_square_on_threads, [(2,), (3,)], workers=2) == [(4, 1), (9, 1)]
