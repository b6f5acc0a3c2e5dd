"""A suite's independent calls side by side: in this process, on spawned processes, or as Ray tasks.

:func:`parallel_map` is ``[fn(*args) for args in calls]`` with the results in order, computed by
one of three *executors*:

- ``local``: every call in this process, one after another;
- ``pool``: a pool of ``workers`` spawned processes, started on first use and kept for the process
  (a fresh process may spend seconds importing the suite's libraries, once);
- ``ray``: Ray tasks on the cluster at ``RAY_ADDRESS`` or on a local Ray instance started for the
  process; a task whose worker dies is retried (:data:`RAY_RETRIES` times).

A suite whose results depend on how a process computes (thread counts, float settings) gives an
``init``: a module-level function every worker runs before its first call (a pool process once, a
Ray task each time, so it must be idempotent), so that a call gives the same bits wherever it ran.
``fn``, ``init`` and the arguments must pickle (module-level functions). A call that raises raises
here.

:func:`stored_side_by_side` builds on it for records made through a store
(:mod:`harness.claimkit.store`): the calls whose record the store lacks run side by side, the
workers store them, and every record is then loaded here, so a cold and a warm run hand back the
same values; under ``--plan`` the calls are declared with a recipe that makes each one.
"""

from __future__ import annotations

import atexit
import dataclasses
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")
EXECUTORS = ("local", "pool", "ray")
RAY_RETRIES = 2  # a Ray task whose worker process dies (killed, out of memory) is run again this often


@dataclasses.dataclass(frozen=True)
class RayOptions:
    """How the suite's calls become Ray tasks: the environment variables and code they carry
    (``working_dir``, less ``excludes``: a suite not installed where the tasks run travels with
    them), the CPUs of a local instance and the GPU share of a task."""

    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    working_dir: str | None = None
    excludes: tuple[str, ...] = ()
    local_cpus: int | None = None
    gpus_per_task: float = 0


def parallel_map(fn: Callable[..., Any], calls: Sequence[Sequence[Any]], workers: int = 0, kind: str = "pool",
                 init: Callable[[], None] | None = None, ray: RayOptions | None = None) -> list[Any]:
    """``[fn(*args) for args in calls]``, side by side (see the module's docstring). With the
    ``pool`` executor, ``workers`` ≤ 1 or a single call runs in this process (``init`` is then the
    caller's business: this process already computes as the suite wants)."""
    if kind not in EXECUTORS:
        raise ValueError(f"unknown executor {kind!r}: one of {', '.join(EXECUTORS)}")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise ValueError(f"workers must be an integer ≥ 0, got {workers!r}")
    calls = [tuple(args) for args in calls]
    if kind == "ray" and calls:
        return _ray_map(fn, calls, init, ray or RayOptions())
    if kind == "local" or workers <= 1 or len(calls) <= 1:
        return [fn(*args) for args in calls]
    pool = _pool(workers, init)
    try:
        return list(pool.map(fn, *zip(*calls)))
    except BrokenProcessPool:
        _pools.pop((workers, init), None)  # a worker died (killed, out of memory): the next call starts afresh
        raise


_pools: dict[tuple[int, Any], ProcessPoolExecutor] = {}


def _pool(workers: int, init: Callable[[], None] | None) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes (spawn: safe with CUDA and threads) running ``init``
    first, started on first use and kept for this process."""
    if (workers, init) not in _pools:
        context = multiprocessing.get_context("spawn")
        _pools[workers, init] = ProcessPoolExecutor(workers, mp_context=context, initializer=init)
    return _pools[workers, init]


@atexit.register
def _shut_pools() -> None:
    for pool in _pools.values():
        pool.shutdown(cancel_futures=True)
    _pools.clear()


_RAY: dict = {}


def _ray_task(init: Callable[[], None] | None, fn: Callable[..., Any], calls: list[tuple], index: int) -> Any:
    if init is not None:
        init()  # idempotent: a Ray worker process runs many tasks
    return fn(*calls[index])


def _ray_map(fn: Callable[..., Any], calls: list[tuple], init: Callable[[], None] | None, options: RayOptions) -> list[Any]:
    """The calls as Ray tasks on the cluster at ``RAY_ADDRESS``, else on a local Ray instance
    started once for this process (``options.local_cpus`` CPUs). The tasks get ``options.env`` and
    the suite's code (Ray's ``working_dir``); its dependencies must be installed where they run,
    and a store they write must be a folder they share. The options take effect when this process
    starts its first Ray map; later calls reuse that instance and task."""
    try:
        import ray
    except ImportError:
        raise RuntimeError("--executor ray needs Ray: pip install ray (the batch-norm suite: pip install -e '.[ray]')") from None
    if "task" not in _RAY:
        if not ray.is_initialized():
            address = os.environ.get("RAY_ADDRESS") or None
            code = {"working_dir": options.working_dir, "excludes": list(options.excludes)} if options.working_dir else {}
            ray.init(address=address, num_cpus=None if address else options.local_cpus, include_dashboard=False,
                     log_to_driver=False, runtime_env={"env_vars": dict(options.env), **code})
            atexit.register(ray.shutdown)
        _RAY["task"] = ray.remote(num_cpus=1, num_gpus=options.gpus_per_task, max_retries=RAY_RETRIES)(_ray_task)
    # the calls go to the object store once: what they share (a lab, its data) is stored once,
    # not once per task (pickle keeps one copy of an object referenced many times)
    shared = ray.put(calls)
    return ray.get([_RAY["task"].remote(init, fn, shared, i) for i in range(len(calls))])


def _call(fn: Callable[..., Any], kwargs: dict) -> Any:
    return fn(**kwargs)


def stored_side_by_side(fn: Callable[..., T], calls: Sequence[dict], store, config: Callable[[dict], dict],
                        mapper: Callable[[Callable[..., Any], list[tuple]], list[Any]],
                        flops: Callable[[dict], float] | None = None) -> list[T]:
    """``[fn(**call, cache=store) for call in calls]`` for a ``fn`` that makes a record through
    ``cached_record(cache, config(call), ...)``: the calls whose record ``store`` lacks run side by
    side on ``mapper(fn, calls)`` (a :func:`parallel_map` the suite has set up), the workers store
    them, and every record is then loaded here. Without a store (None) the made records are
    returned. Under --plan the calls are declared (``Store.declare``, with ``flops(call)``
    estimates and a recipe per call); a judge-only store lacking any is one error naming them."""
    if store is not None:
        store.declare([config(c) for c in calls], (lambda i: flops(calls[i])) if flops else None,
                      make=lambda i: (_call, (fn, {**calls[i], "cache": store.unplanned()})))
    missing = [c for c in calls if store is None or not store.contains(config(c))]
    if missing and store is not None and store.judge_only:
        raise store.missing([config(c) for c in missing])
    made = mapper(_call, [(fn, {**c, "cache": store}) for c in missing]) if missing else []
    if store is None:
        return made
    return [fn(**c, cache=store) for c in calls]
