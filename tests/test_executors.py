"""Executors (``--executor local|pool|ray``): where side-by-side runs train, never what they compute."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.concurrent import EXECUTOR_ENV, RUNS_PER_GPU_ENV, executor, offloads, parallel_map, runs_per_gpu, side_by_side_workers

REPO = Path(__file__).resolve().parents[1]
# CI installs the optional Ray extra and sets this, so the Ray test cannot silently skip there
REQUIRE_RAY = os.environ.get("BNCLAIMS_REQUIRE_RAY") == "1"


def test_the_executor_and_runs_per_gpu_come_from_the_environment_and_are_checked(monkeypatch):
    monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    monkeypatch.delenv(RUNS_PER_GPU_ENV, raising=False)
    assert (executor(), runs_per_gpu()) == ("pool", 1)
    assert offloads("cpu") and side_by_side_workers("cpu") is None  # one process per core
    assert not offloads("cuda") and side_by_side_workers("cuda") == 0  # a GPU: in process, one after another
    monkeypatch.setenv(RUNS_PER_GPU_ENV, "4")
    assert offloads("cuda") and side_by_side_workers("cuda") == 4
    monkeypatch.setenv(EXECUTOR_ENV, "local")
    assert not offloads("cpu") and side_by_side_workers("cpu") == 0
    assert parallel_map(pow, [(2, 3), (3, 2)], workers=2) == [8, 9]  # local: in this process, whatever workers says
    monkeypatch.setenv(EXECUTOR_ENV, "ray")
    assert offloads("cpu") and offloads("cuda")
    monkeypatch.setenv(EXECUTOR_ENV, "dask")
    with pytest.raises(ValueError, match="BNCLAIMS_EXECUTOR='dask': the executor is one of local, pool, ray"):
        executor()
    monkeypatch.setenv(RUNS_PER_GPU_ENV, "0")
    with pytest.raises(ValueError, match="expected a whole number ≥ 1"):
        runs_per_gpu()


def _run(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")} | (env or {})
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args], cwd=REPO, env=environ,
                          capture_output=True, text=True, timeout=1200)


@pytest.mark.parametrize("args, message", [
    (["--executor", "dask"], "argument --executor: invalid choice: 'dask'"),
    (["--runs-per-gpu", "0"], "--runs-per-gpu / BNCLAIMS_RUNS_PER_GPU='0': expected a whole number ≥ 1"),
])
def test_a_bad_executor_setting_is_one_usage_error(args, message):
    out = _run(["claims/test_santurkar2018_theory.py", "--collect-only", *args])
    assert out.returncode == pytest.ExitCode.USAGE_ERROR and message in out.stderr, out.stderr[-2000:]


def _records(executor_name: str, tmp: Path) -> dict[str, tuple]:
    out = _run(["claims/test_santurkar2018_dln.py", "claims/test_bjorck2018_training.py", "claims/test_santurkar2018_vgg.py",
                "claims/test_bjorck2018_init.py",
                "--smoke", "--executor", executor_name, "--cache-dir", str(tmp / executor_name / "cache"),
                "--report-dir", str(tmp / executor_name / "report")])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    records = json.loads((tmp / executor_name / "report" / "claims.json").read_text(encoding="utf-8"))["records"]
    return {r["nodeid"]: (r["verdict"], r["summary"], json.dumps(r["measured"], sort_keys=True)) for r in records}


def test_every_executor_gives_the_same_records(tmp_path):
    """The DLN, ResNet-lab (searches, full runs, diverging updates), VGG runs and init passes of
    the smoke profile, each made from an empty cache by each executor: the judged records are
    identical, bit for bit (Ray: a local instance started by the run, the code shipped to it)."""
    if not REQUIRE_RAY:
        pytest.importorskip("ray", reason="Ray is an optional extra (pip install -e '.[ray]')")
    local = _records("local", tmp_path)
    assert len(local) >= 40
    assert _records("pool", tmp_path) == local
    assert _records("ray", tmp_path) == local


def test_ray_runs_the_calls_in_ray_worker_processes(monkeypatch):
    if not REQUIRE_RAY:
        pytest.importorskip("ray", reason="Ray is an optional extra (pip install -e '.[ray]')")
    import ray

    from harness.claimkit import executors

    monkeypatch.setenv(EXECUTOR_ENV, "ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    try:
        pids = parallel_map(os.getpid, [(), (), ()])
        assert len(pids) == 3 and os.getpid() not in pids
        with pytest.raises(ZeroDivisionError):  # an exception in a run raises here
            parallel_map(divmod, [(1, 0)])
    finally:
        ray.shutdown()
        executors._RAY.clear()
