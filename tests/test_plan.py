"""``pytest --plan``: runs listed without training, priced, and exactly those an execution makes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cache import ModelCache, Planned, cached_record
from harness.data import synthetic_cifar
from harness.lr_search import SEARCH_EVAL_TRAIN
from harness.models.flops import calibrate, forward_flops, training_flops
from harness.claimkit.plan import Planner, merge_runs, summarize, summary_lines
from harness.resnet_lab import ResNetLab

REPO = Path(__file__).resolve().parents[1]


def test_forward_flops_match_a_hand_count_and_a_run_is_three_forwards_per_example_and_step():
    # three 4×4 linear maps on one input: 3 × (2 × 4 × 4) multiply-adds counted as 2 FLOPs each
    assert forward_flops("deep_linear", {"depth": 3, "width": 4, "norm": "none"}, (1, 4)) == 3 * 2 * 4 * 4
    # a conv layer: 2 × C_in × C_out × k² × H × W
    resnet = forward_flops("resnet_cifar", {"depth": 8, "width": 4, "norm": "none"}, (1, 3, 8, 8))
    assert resnet > 2 * 3 * 4 * 9 * 8 * 8  # at least the stem
    assert training_flops(10.0, batch=4, steps=5, evaluated=7) == 10.0 * (3 * 4 * 5 + 7)
    assert calibrate("cpu", steps=1) > 1e8  # any CPU trains faster than 0.1 GFLOP/s


def test_the_planner_merges_what_several_claims_ask_for():
    planner = Planner()
    planner.claim = "A-fast"
    planner.note("k1", "run-record", "r1", stored=False, flops=10.0, conditional=True)
    planner.claim = "B-fast"
    planner.note("k1", "run-record", "r1", stored=False, flops=10.0, conditional=False)  # B needs it for sure
    planner.note("k2", "vgg-run", "r2", stored=True)
    first = planner.take()
    assert [r["key"] for r in first] == ["k1", "k2"] and planner.take() == []
    runs = merge_runs([first, [{**first[1], "claims": ["C-slow"]}]])
    assert runs["k1"]["conditional"] is False and runs["k1"]["claims"] == ["A-fast", "B-fast"]
    assert runs["k2"]["claims"] == ["B-fast", "C-slow"]
    plan = summarize(runs, {"D-slow": 2}, flops_per_s=10.0 / 3600, rate_source="test", device="cpu")
    t = plan["totals"]
    assert (t["runs"], t["stored"], t["to_make"], t["conditional"], t["waiting_claims"]) == (2, 1, 1, 0, 1)
    assert t["hours_to_make"] == pytest.approx(1.0)
    text = "\n".join(summary_lines(plan))
    assert "2 run(s): 1 stored, 1 to make" in text and "1 claim case(s) stop at runs not yet made" in text


def test_a_planning_cache_lists_a_missing_run_and_never_makes_it(tmp_path):
    planner = Planner()
    cache = ModelCache(tmp_path, version="v", planner=planner)

    def create():
        raise AssertionError("--plan made a run")

    with pytest.raises(Planned, match="waits for 1 run"):
        cached_record(cache, {"kind": "dln-run", "seed": 0}, create, dict)
    assert not list(tmp_path.glob("*.pt"))
    (run,) = planner.take()
    assert (run["kind"], run["stored"], run["flops"]) == ("dln-run", False, None)
    # a stored run is served as always, and noted as stored
    ModelCache(tmp_path, version="v").get_or_create({"kind": "dln-run", "seed": 1}, lambda: {"x": 1})
    assert cache.get_or_create({"kind": "dln-run", "seed": 1}, create)["x"] == 1
    assert planner.take()[0]["stored"] is True
    # declared runs: all listed before any is made; none missing → nothing raised
    with pytest.raises(Planned, match="waits for 2 run"):
        cache.declare([{"kind": "dln-run", "seed": s} for s in (1, 2, 3)], flops=lambda i: 5.0)
    assert [(r["stored"], r["flops"]) for r in planner.take()] == [(True, None), (False, 5.0), (False, 5.0)]
    cache.declare([{"kind": "dln-run", "seed": 1}])
    ModelCache(tmp_path, version="v").declare([{"kind": "dln-run", "seed": 9}])  # no planner: a no-op
    # a declared run's recipe makes and stores it in any process (--plan-execute runs them)
    run4 = {"kind": "dln-run", "seed": 4}
    with pytest.raises(Planned):
        cache.declare([run4], make=lambda i: (_store, (tmp_path, run4)))
    assert planner.take()[-1]["makeable"] and planner.execute() == 1 and cache.contains(run4) and not planner.makes


def _store(root: Path, config: dict) -> None:
    ModelCache(root, version="v").get_or_create(config, lambda: {"x": 4})


def test_a_search_lists_its_grid_below_the_first_missing_run_as_conditional(tmp_path):
    data = synthetic_cifar(n_train=256, n_test=64, resolution=8, seed=0)
    settings = {"dataset": "synthetic", "resolution": 8, "depth": 8, "width": 4, "grid": [1e4, 0.1, 0.01], "search_steps": 10, "learning_margin": 0.05,
                "train_steps": 10, "eval_every": 5, "seeds": [0]}
    planner = Planner()
    lab = ResNetLab(settings, data, {"name": data.name}, ModelCache(tmp_path, version="v", planner=planner))
    net = lab.model("batch")
    with pytest.raises(Planned, match="waits for 3 run"):
        lab.max_lr(net)
    assert [(r["stored"], r["conditional"]) for r in planner.take()] == [(False, False), (False, True), (False, True)]
    # once the top LR is stored (it diverges), the next one is certain and the last conditional
    maker = ResNetLab(settings, data, {"name": data.name}, ModelCache(tmp_path, version="v"))
    maker.store.run(net, lab.search_config(1e4), SEARCH_EVAL_TRAIN)
    with pytest.raises(Planned, match="waits for 2 run"):
        lab.prefetch(searches=[{"model": net}])
    assert [(r["stored"], r["conditional"]) for r in planner.take()] == [(True, False), (False, False), (False, True)]
    estimate = lab.store.flops(net, lab.search_config(0.1), SEARCH_EVAL_TRAIN)
    assert estimate == training_flops(forward_flops("resnet_cifar", net, (1, 3, 8, 8)), 128, 10, 1 * (64 + SEARCH_EVAL_TRAIN))


def _pytest(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_XDIST_WORKER_COUNT", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1200)


def _plan(tmp: Path, cache: Path, name: str) -> dict:
    out = _pytest("claims", "--smoke", "--plan", "--cache-dir", str(cache), "--report-dir", str(tmp / name))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "plan (nothing was trained)" in out.stdout
    return json.loads((tmp / name / "plan.json").read_text(encoding="utf-8"))


def test_a_plan_covers_exactly_the_runs_an_execution_makes(tmp_path):
    """Every slow and paper claim at the smoke settings: a cold plan trains nothing, and the runs it
    lists for sure are made by the execution; after the execution, the plan lists exactly the runs it stored,
    all stored, and only claims that compute in the session (never stored) still wait."""
    cache = tmp_path / "cache"
    cold = _plan(tmp_path, cache, "cold")
    assert not list(cache.glob("*.pt")), "--plan trained something"
    assert cold["totals"]["stored"] == 0 and cold["totals"]["to_make"] > 0 and cold["totals"]["flops_to_make"] > 0
    run = _pytest("claims", "--smoke", "-n", "2", "--cache-dir", str(cache), "--report-dir", str(tmp_path / "run"))
    assert run.returncode == 0, run.stdout[-3000:]
    made = {p.stem for p in cache.glob("*.pt")}
    certain = {r["key"] for r in cold["runs"] if r["cacheable"] and not r["pending"] and not r["conditional"]}
    assert certain <= made  # a conditional run (an LR below an achievable one) may never be made
    assert cold["totals"]["pending"] > 0  # full runs at an LR their search picks, priced before the search

    warm = _plan(tmp_path, cache, "warm")
    cacheable = [r for r in warm["runs"] if r["cacheable"]]
    assert {r["key"] for r in cacheable} == made and all(r["stored"] for r in cacheable) and warm["totals"]["pending"] == 0
    session_only = {c for r in warm["runs"] if not r["cacheable"] for c in r["claims"]}
    assert set(warm["waiting"]) <= session_only


def test_the_nightly_driver_makes_every_run_in_stages_then_judges_without_training(tmp_path):
    """python -m harness.nightly on the training and DLN families at the smoke settings: stages of
    --plan --plan-execute make the runs (searches first, then the full runs at the LRs they found),
    until a stage has nothing to make; the --judge-only pass then judges every claim."""
    args = ["claims/test_bjorck2018_training.py", "claims/test_santurkar2018_dln.py", "--smoke", "--executor", "pool",
            "--cache-dir", str(tmp_path / "cache"), "--report-dir", str(tmp_path / "report"), "-p", "no:randomly"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    out = subprocess.run([sys.executable, "-m", "harness.nightly", *args], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=1200)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    made = [int(line.split("made ")[1].split()[0]) for line in out.stdout.splitlines() if line.startswith("== stage ")]
    # stages until one has nothing to make (at these settings the searches' two grid LRs are the ones
    # the fixed-LR claims train at, so the full runs a search picks are mostly made in stage 1)
    assert len(made) >= 2 and made[0] > 0 and made[-1] == 0
    assert "judging every claim from the model cache (--judge-only)" in out.stdout
    records = json.loads((tmp_path / "report" / "claims.json").read_text(encoding="utf-8"))["records"]
    assert len(records) == 41 and not [r["claim_id"] for r in records if r["verdict"] == "error"]


def test_the_nightly_driver_adds_the_plan_and_judge_options_itself():
    out = subprocess.run([sys.executable, "-m", "harness.nightly", "--plan"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "adds --plan, --plan-execute and --judge-only itself" in out.stderr
