"""The claims machinery (harness.claimkit) carries a suite with no neural network in it.

``tests/toy_claims`` is a claims suite about comparison sorting: a YAML with three claims (a
stochastic one decided over seeds in looks, an exact worst-case bound, and a false claim kept as
an expected refutation), typed settings, a seeded measurement made once ever in the machinery's
store (JSON entries), planning and judge-only runs, and a report. It runs here in a
scratch copy with pytest's plugin autoloading off, so only the claims plugin and the toy's own
conftest load: the run must import neither torch nor any batch-norm module.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TOY = Path(__file__).parent / "toy_claims"
REPO = Path(__file__).parents[1]


def _run(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "TOY_MODULES_OUT": str(project / "modules.json"),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    env.pop("BNCLAIMS_REPORT_DIR", None)
    env.pop("TOY_STORE", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-m", "fast", *args], cwd=project,
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def toy(tmp_path) -> Path:
    project = tmp_path / "toy"
    shutil.copytree(TOY, project, ignore=shutil.ignore_patterns("__pycache__", "reports"))
    return project


def test_the_toy_suite_runs_on_the_machinery_alone(toy):
    proc = _run(toy)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "2 passed, 1 xfailed" in proc.stdout
    data = json.loads((toy / "reports" / "claims.json").read_text(encoding="utf-8"))
    verdicts = {r["claim_id"]: r["verdict"] for r in data["records"]}
    assert verdicts == {"T-QSORT-MEAN": "holds", "T-MERGE-WORST": "holds", "T-INSERTION-BEATS-MERGE": "refuted"}
    qsort = next(r for r in data["records"] if r["claim_id"] == "T-QSORT-MEAN")
    assert qsort["tier"] == "paper" and len(qsort["seeds"]) >= 3 and all(0.5 < x < 1 for x in qsort["measured"]["ratio_per_seed"])
    html = (toy / "reports" / "claims.html").read_text(encoding="utf-8")
    assert "<h1>Which textbook facts about sorting hold?</h1>" in html  # the suite's title, through the plugin's hook
    assert "Textbook facts about comparison sorting" in html and "T-INSERTION-BEATS-MERGE" in html and "torch" not in html
    modules = set(json.loads((toy / "modules.json").read_text(encoding="utf-8")))
    assert "torch" not in modules and "harness.claimkit.plugin" in modules
    assert not {m for m in modules if m.startswith("harness.") and not m.startswith("harness.claimkit")}


def _entries(toy: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (toy / "store").glob("*.entry")}


def test_the_toy_suite_stores_its_counts_once_and_serves_them(toy):
    assert _run(toy).returncode == 0
    first = _entries(toy)
    assert len(first) == 3 and all(b.startswith(b"claimkit-entry sha256=") for b in first.values())
    records = json.loads((toy / "reports" / "claims.json").read_text(encoding="utf-8"))["records"]
    proc = _run(toy, "--judge-only")  # every count is stored: judged from the store alone, nothing made
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert _entries(toy) == first
    again = json.loads((toy / "reports" / "claims.json").read_text(encoding="utf-8"))["records"]
    measured = lambda recs: {r["claim_id"]: r["measured"] for r in recs}  # noqa: E731
    assert measured(again) == measured(records)
    sorting = toy / "sorting.py"  # editing the code that makes entries makes new keys
    sorting.write_text(sorting.read_text(encoding="utf-8") + "\nEDITED = 1\n", encoding="utf-8")
    proc = _run(toy, "--judge-only")
    assert proc.returncode == 1 and "1 failed" in proc.stdout
    qsort = next(r for r in json.loads((toy / "reports" / "claims.json").read_text(encoding="utf-8"))["records"]
                 if r["claim_id"] == "T-QSORT-MEAN")
    error = qsort["later_outcome"]  # the record merged into claims.json keeps its verdict and shows this run's error
    assert error["verdict"] == "error" and "--judge-only: the store" in error["error"]
    assert "lacks 1 run(s) this claim needs: quicksort(n=400, seed=0)" in error["error"]


def test_a_changed_byte_in_a_toy_entry_is_rebuilt_not_served(toy):
    assert _run(toy).returncode == 0
    name, data = sorted(_entries(toy).items())[0]
    (toy / "store" / name).write_bytes(data.replace(b'"comparisons": ', b'"comparisons": 1', 1))
    proc = _run(toy)
    assert proc.returncode == 0 and "CacheWarning: store: entry" in proc.stdout and "content does not match its digest" in proc.stdout
    assert _entries(toy)[name] == data  # rebuilt with the same bytes


def test_a_refutation_not_in_the_expected_verdicts_fails_the_toy_run(toy):
    (toy / "claims" / "expected_verdicts.yaml").write_text("[]\n", encoding="utf-8")
    proc = _run(toy)
    assert proc.returncode == 1 and "1 failed, 2 passed" in proc.stdout, proc.stdout[-3000:]
    assert "T-INSERTION-BEATS-MERGE" in proc.stdout


def test_a_toy_claim_that_names_an_unregistered_paper_is_one_line(toy):
    path = toy / "claims" / "toy_sorting.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("paper: textbook", "paper: folklore"), encoding="utf-8")
    proc = _run(toy)
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR
    assert "unknown paper 'folklore' (known: textbook; a suite declares its papers with register_paper)" in proc.stderr


def test_a_plan_of_a_suite_that_prices_no_runs_has_no_times(toy):
    """--plan works without the suite's pricing hook: the quicksort counts are listed (the look's
    three seeds, and the next look's as conditional), none made; the claims that store nothing are
    judged as usual, and the plan says it has no rate instead of failing on one."""
    proc = _run(toy, "--plan")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    plan = json.loads((toy / "reports" / "plan.json").read_text(encoding="utf-8"))
    assert plan["flops_per_s"] is None and plan["totals"]["hours_to_make"] is None
    assert plan["totals"]["to_make"] == 6 and plan["totals"]["conditional"] == 3 and plan["totals"]["stored"] == 0
    assert {r["name"] for r in plan["runs"]} == {f"quicksort(n=400, seed={s})" for s in range(6)}
    assert "no time estimate (no rate: the suite prices no runs)" in proc.stdout
    assert "plan: waits for 3 run(s) not yet stored" in proc.stdout and not _entries(toy)
