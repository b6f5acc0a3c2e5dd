"""What the batch-norm suite adds to the claims plugin (``harness.claimkit.plugin``) through its hooks.

- its options: the model cache's folder (``--cache-dir``), CIFAR-10 (``--cifar10-root``)
  and where side-by-side runs train (``--executor``, ``--runs-per-gpu``);
- its configuration, checked before any claim runs: torch threads, the executor, the GPU list, the
  model cache folder, a configured CIFAR-10 root, and the threshold names its readouts read;
- what every record and run is stamped with (the device, the torch version), the header lines
  (device, threads, model cache, CIFAR-10), and the note when other images stand in for CIFAR-10;
- under ``--plan``: the rate runs are priced at (a ResNet-20 timed on this device) and the pool that
  makes them (the model cache is the claims machinery's store, so its planned stop is the machinery's);
- the two papers' titles and the ``bn_vs_none`` claim field (a claim that credits BN with an effect
  over no BN, so it must stop holding when BN is the identity: ``-p harness.bn_identity``).

Installed, it is a registered pytest plugin (the ``pytest11`` entry point ``harness.bn_plugin``),
so its options are known wherever pytest starts, like the claims plugin's.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from harness import checks
from harness.cache import CACHE_ENV, CacheWarning, default_cache_dir
from harness.claimkit.checks import ConfigError
from harness.claimkit.plugin.options import check_entry_point, export
from harness.claimkit.registry import RegistryError, register_claim_field, register_paper
from harness.data import CIFAR10_ENV, cifar10_root

PLUGIN = "harness.bn_plugin"  # this module and its pytest11 entry point's name

register_paper("bjorck2018", "Bjorck et al., Understanding Batch Normalization (NeurIPS 2018)")
register_paper("santurkar2018", "Santurkar et al., How Does Batch Normalization Help Optimization? (NeurIPS 2018)")
register_paper("beyond", "Beyond the papers: reviews and later work")
register_claim_field("bn_vs_none", bool, "credits BN with an effect over no BN, so it must stop holding when BN is the "
                                         "identity (-p harness.bn_identity)")


def pytest_addoption(parser: pytest.Parser) -> None:
    from harness.concurrent import EXECUTORS

    group = parser.getgroup("bnclaims", "claims suite")
    group.addoption(
        "--cifar10-root", default=None,
        help=f"folder holding cifar-10-batches-py/ (env {CIFAR10_ENV}); claims that need CIFAR-10 skip without it",
    )
    group.addoption(
        "--cache-dir", default=None,
        help=f"trained-model cache (default: <rootdir>/fixtures/cache; env {CACHE_ENV})",
    )
    group.addoption(
        "--executor", default=None, choices=EXECUTORS,
        help="where side-by-side runs train: pool (default: one process per core; on a GPU in process or "
             "--runs-per-gpu), local (in this process, one after another), ray (Ray tasks on RAY_ADDRESS or a "
             "local Ray instance; pip install -e '.[ray]'); env BNCLAIMS_EXECUTOR. The records are the same bits",
    )
    group.addoption(
        "--runs-per-gpu", default=None,
        help="runs trained side by side on one GPU by the pool or Ray executor (default 1; env BNCLAIMS_RUNS_PER_GPU)",
    )


def pytest_claimkit_title() -> str:
    return "Which claims about batch normalization hold?"


def pytest_claimkit_path_options() -> list[tuple[str, str, str | None]]:
    return [("cache_dir", "--cache-dir", CACHE_ENV), ("cifar10_root", "--cifar10-root", CIFAR10_ENV)]


def pytest_claimkit_configure(config: pytest.Config, controller: bool) -> None:
    from harness.device import configure_threads

    try:
        configure_threads()
    except ValueError as err:  # a bad BNCLAIMS_THREADS: one line, before any claim runs
        raise pytest.UsageError(f"{err} (unset it for the default of 1)") from None
    configure_executor(config)
    if controller:
        check_configuration(config)
        check_entry_point(config, PLUGIN)


def configure_executor(config: pytest.Config) -> None:
    """--executor / --runs-per-gpu (else their environment variables), checked and exported."""
    from harness.concurrent import EXECUTOR_ENV, RUNS_PER_GPU_ENV, executor, runs_per_gpu

    for option, env in (("executor", EXECUTOR_ENV), ("runs_per_gpu", RUNS_PER_GPU_ENV)):
        if config.getoption(option) is not None:
            export(config, env, str(config.getoption(option)))
    try:
        runs_per_gpu()
        kind = executor()
    except ValueError as err:
        raise pytest.UsageError(str(err).replace(RUNS_PER_GPU_ENV, "--runs-per-gpu / " + RUNS_PER_GPU_ENV)) from None
    if kind == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise pytest.UsageError("--executor ray needs Ray, an optional extra: pip install -e '.[ray]'")


def check_configuration(config: pytest.Config) -> None:
    """The GPU list, the model cache folder and a configured CIFAR-10 root; one line per problem."""
    try:
        checks.gpus(os.environ)
        if config.getoption("collectonly"):
            return
        cache = default_cache_dir(config.getoption("cache_dir"), Path(config.rootpath))
        if not checks.cache_dir(cache, f"--cache-dir (env {CACHE_ENV})"):
            # issued as a pytest warning: this runs before the terminal exists, and the warnings summary shows it
            config.issue_config_time_warning(CacheWarning(
                f"the model cache {cache} is read-only: stored runs are served, a missing one stops its claim with an error"),
                stacklevel=2)
        checks.cifar10(cifar10_root(config.getoption("cifar10_root")), f"--cifar10-root (env {CIFAR10_ENV})")
    except ConfigError as err:
        raise pytest.UsageError(str(err)) from None


def pytest_claimkit_check_registry(config: pytest.Config, registry, claims_dir: Path) -> None:
    """Every threshold name a claim's test reads through its readout is one the claim declares:
    a typo stops the run now, not after the measurement (harness.threshold_reads)."""
    from harness.sources import REPO
    from harness.threshold_reads import readout_modules, undeclared_reads

    problems = undeclared_reads(registry, claims_dir, readout_modules(REPO))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise RegistryError(problems[0] + more)


def pytest_claimkit_environment() -> dict[str, Any]:
    import torch

    from harness.device import describe

    return {"device": describe(), "torch_version": torch.__version__}


def pytest_claimkit_report_header(config: pytest.Config) -> list[str]:
    from harness.device import compute_threads, describe

    cifar = cifar10_root(config.getoption("cifar10_root"))
    return [f"bnclaims: device {describe()}, {compute_threads()} torch thread(s) per process",
            f"bnclaims: model cache {default_cache_dir(config.getoption('cache_dir'), Path(config.rootpath))}"
            f"{' (judge only)' if config.getoption('judge_only') else ''}, CIFAR-10 {cifar if cifar else 'not configured'}"]


def pytest_claimkit_collection_notes(config: pytest.Config, cases: list[tuple[Any, str]]) -> list[str]:
    """When slow / paper claims that ask for CIFAR-10 run without it: other images stand in."""
    families = sorted({f.family for f, p in cases if p in ("slow", "paper") and _reads(f.shared.get(p, {}), "dataset", "cifar10")})
    if families and cifar10_root(config.getoption("cifar10_root")) is None:
        return [f"bnclaims: CIFAR-10 is not configured (--cifar10-root or {CIFAR10_ENV}): the slow/paper claims "
                f"that ask for it ({', '.join(families)}) run on stand-in images, and the report counts them as stand-ins"]
    return []


def _reads(settings: Mapping[str, Any], key: str, value: Any) -> bool:
    """Whether ``settings`` (a profile's shared block, its overrides included) set ``key`` to ``value``."""
    return settings.get(key) == value or any(isinstance(v, Mapping) and _reads(v, key, value) for v in settings.values())


def pytest_claimkit_plan_rate(config: pytest.Config) -> tuple[float, str, str]:
    from harness.device import describe, select_device
    from harness.models.flops import calibrate

    return calibrate(select_device()), f"measured on {describe()}", describe()


def pytest_claimkit_execute_plan(config: pytest.Config, planner) -> int:
    from harness.concurrent import parallel_map, side_by_side_workers
    from harness.device import select_device

    workers = side_by_side_workers(select_device())
    return planner.execute(lambda fn, calls: parallel_map(fn, calls, workers))


def pytest_claimkit_code_packages() -> list[str]:
    from harness.sources import PACKAGES

    return list(PACKAGES)


def pytest_claimkit_provenance(provenance: dict) -> dict:
    """The CPU with torch's vector capability, and torch's thread count."""
    import torch

    cpu = provenance.get("cpu")
    with contextlib.suppress(AttributeError, RuntimeError):
        cpu = f"{cpu} ({torch.backends.cpu.get_cpu_capability()})"
    return {"cpu": cpu, "threads": torch.get_num_threads()}
