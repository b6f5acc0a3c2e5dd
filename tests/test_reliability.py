"""Reliability matrix: every way a run could lose, fake or garble a result, and what it does instead.

Each case is a scratch project (tests/test_plugin.py) or a direct call, checked for the behaviour
the README's troubleshooting section promises: one line naming the option before any claim runs,
no silent stand-in data, no stale cache entry served, a report that stays consistent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from harness import cache as cache_module
from harness import checks
from harness.cache import CacheError, ModelCache, code_version, config_key, environment
from harness.report.__main__ import main as report_main
from harness.report.records import load_records, stale_reasons, suite_version, write_json
from tests.test_plugin import CLAIMS, EXPECTED, TESTS, records, scratch_project
from tests.test_report import record

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(pytester):
    return scratch_project(pytester, {"scratch.yaml": CLAIMS, "expected_verdicts.yaml": EXPECTED, "test_scratch.py": TESTS})


def _usage_error(result, *lines):
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(list(lines))
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


# --- configuration checked before any claim runs -------------------------------------------------

def test_a_report_dir_that_is_a_file_stops_the_run_before_any_claim(project):
    (project.path / "not-a-dir").write_text("x")
    _usage_error(project.runpytest("claims", "--report-dir", "not-a-dir"), "*--report-dir (env BNCLAIMS_REPORT_DIR) *not-a-dir is a file, not a folder*")


def test_an_unwritable_report_dir_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(checks, "_try_write", lambda folder: PermissionError(13, "Permission denied"))
    with pytest.raises(checks.ConfigError, match="--report-dir .* is not writable .*Permission denied"):
        checks.report_dir(tmp_path, "--report-dir")
    (tmp_path / "file").write_text("x")
    with pytest.raises(checks.ConfigError, match="cannot be created"):
        checks.report_dir(tmp_path / "file" / "reports", "--report-dir")


def test_a_cache_dir_that_is_a_file_stops_the_run(project):
    (project.path / "cache-file").write_text("x")
    _usage_error(project.runpytest("claims", "--cache-dir", "cache-file"), "*--cache-dir (env BNCLAIMS_CACHE) *cache-file is a file, not a folder*")


def test_a_missing_claims_dir_is_one_line(project):
    _usage_error(project.runpytest("claims", "--claims-dir", "nope"), "*--claims-dir nope is not a folder of claims YAML files*")


def test_a_bad_gpu_list_is_one_line_even_without_xdist(project, monkeypatch):
    monkeypatch.setenv("BNCLAIMS_GPUS", "garbage")
    _usage_error(project.runpytest_subprocess("claims"), "*BNCLAIMS_GPUS='garbage': expected a GPU count*")


def test_a_non_ascii_thread_count_is_one_line(project, monkeypatch):
    monkeypatch.setenv("BNCLAIMS_THREADS", "²")
    _usage_error(project.runpytest_subprocess("claims"), "*BNCLAIMS_THREADS must be a positive integer, got '²'*")


@pytest.mark.parametrize("setup", ["missing", "empty", "corrupt"])
def test_a_configured_cifar10_root_that_does_not_load_stops_the_run(project, setup):
    root = project.path / "cifar"
    if setup != "missing":
        (root / "cifar-10-batches-py").mkdir(parents=True)
    if setup == "corrupt":
        (root / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"\x00garbage")
    result = project.runpytest_subprocess("claims", "--cifar10-root", str(root))  # torchvision loads once per process
    _usage_error(result, "*--cifar10-root (env BNCLAIMS_CIFAR10): CIFAR-10 under *cifar* missing or corrupt*")
    assert not (project.path / "reports" / "claims.json").exists()  # no claim ran


def test_fixtures_never_swap_a_configured_cifar10_for_stand_in_images(tmp_path):
    from fixtures.common import profile_images
    from harness.data import DataUnavailable

    class Request:  # what profile_images reads of pytest's request
        class config:
            @staticmethod
            def getoption(name):
                return str(tmp_path / "no-cifar-here")

    with pytest.raises(DataUnavailable, match="missing or corrupt"):
        profile_images(Request, "cifar10", lambda: pytest.fail("stand-in images used for a configured CIFAR-10"))
    Request.config.getoption = staticmethod(lambda name: None)
    assert profile_images(Request, "cifar10", lambda: "stand-in") == "stand-in"  # none configured: says so per record


def test_slow_claims_without_cifar10_say_that_other_images_stand_in(project, monkeypatch):
    monkeypatch.delenv("BNCLAIMS_CIFAR10", raising=False)
    result = project.runpytest("claims", "-m", "slow")
    result.stdout.no_fnmatch_line("*CIFAR-10 is not configured*")  # the scratch family reads no images
    path = project.path / "claims" / "scratch.yaml"
    path.write_text(textwrap.dedent(CLAIMS).replace("claims:\n", "shared:\n  slow: {dataset: cifar10}\nclaims:\n", 1), encoding="utf-8")
    result = project.runpytest("claims", "-m", "slow")
    result.stdout.fnmatch_lines(["*CIFAR-10 is not configured*the slow/paper claims that ask for it (scratch) run on stand-in images*"])


# --- what runs ------------------------------------------------------------------------------------

def test_a_marker_expression_that_names_no_profile_runs_fast_claims_only(project):
    result = project.runpytest("claims", "-m", "not benchmark")
    result.assert_outcomes(passed=3, xfailed=2, deselected=1)
    result.stdout.fnmatch_lines(["*1 slow/paper claim case(s) not run*they run only when -m names their profile*"])


def test_an_explicit_slow_node_id_says_why_it_did_not_run(project):
    result = project.runpytest("claims/test_scratch.py::test_holds[B-T-HOLDS-slow]")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["*1 slow/paper claim case(s) not run (claims/test_scratch.py::test_holds?B-T-HOLDS-slow?)*-m slow*"])
    project.runpytest("claims/test_scratch.py::test_holds[B-T-HOLDS-slow]", "-m", "slow").assert_outcomes(passed=1)


def test_the_suite_runs_without_xdist(project):
    project.runpytest_subprocess("claims", "-p", "no:xdist").assert_outcomes(passed=3, xfailed=2)


def test_the_claim_markers_are_registered_once(project):
    markers = project.runpytest("--markers").stdout.str()
    for name in ("@pytest.mark.fast:", "@pytest.mark.slow:", "@pytest.mark.paper:", "@pytest.mark.claim("):
        assert markers.count(name) == 1, name


# --- SIGTERM --------------------------------------------------------------------------------------

def test_sigterm_ends_the_run_like_ctrl_c_with_a_consistent_report(project):
    (project.path / "test_zz_term.py").write_text(textwrap.dedent('''
        import os, signal, pytest

        @pytest.mark.claim("B-T-HOLDS")
        def test_term(verdict):
            os.kill(os.getpid(), signal.SIGTERM)
    '''), encoding="utf-8")
    result = project.runpytest_subprocess("claims/test_scratch.py", "test_zz_term.py", "-m", "fast")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    recs, payload = records(project)
    assert len(recs) == 5 and payload["runs"][-1]["interrupted"] is True
    html = (project.path / "reports" / "claims.html").read_text(encoding="utf-8")
    assert "The latest run was interrupted" in html and html.count('class="claim"') == 3


# --- cache keys -----------------------------------------------------------------------------------

def test_editing_what_makes_an_entry_changes_the_code_version_and_judging_code_does_not(tmp_path):
    copy = tmp_path / "repo"
    for package in ("harness", "fixtures"):
        shutil.copytree(REPO / package, copy / package, ignore=shutil.ignore_patterns("cache", "__pycache__"))
    before = code_version(copy)
    assert before == code_version(REPO)
    for judging in ("harness/evidence.py", "harness/verdicts.py", "harness/readouts/dln.py", "fixtures/vgg.py"):
        path = copy / judging
        path.write_text(path.read_text(encoding="utf-8") + "\nJUDGED_KAPPA = 1.0\n", encoding="utf-8")
        code_version.cache_clear()
        assert code_version(copy) == before, f"{judging} decides about entries and must not version them"
    train = copy / "harness" / "train.py"
    train.write_text(train.read_text(encoding="utf-8") + "\nSTORED_KAPPA = 1.0\n", encoding="utf-8")
    code_version.cache_clear()
    assert code_version(copy) != before
    names = {p.relative_to(copy).as_posix() for p in cache_module.versioned_modules(copy)}
    assert {"harness/train.py", "harness/accel.py", "harness/probes/checkpoints.py", "harness/dln.py", "fixtures/rmt.py"} <= names
    assert not names & {"harness/pytest_plugin.py", "harness/report/html.py", "harness/evidence.py", "harness/verdicts.py",
                        "harness/registry.py", "fixtures/vgg.py"}  # judging and asking, not making


def test_a_run_key_names_torch_device_and_threads():
    base = environment("cpu")
    assert set(base) == {"torch", "device", "threads"} and base["device"] == "cpu" and environment("cuda:1")["device"] == "cuda"
    keys = {config_key({"a": 1}, "v1", env) for env in (base, {**base, "torch": "0.0"}, {**base, "device": "cuda"},
                                                        {**base, "threads": base["threads"] + 1})}
    assert len(keys) == 4


def test_an_edited_fixture_rebuilds_its_entry(tmp_path):
    made = []
    ModelCache(tmp_path, version="fixture-v1").get_or_create({"kappa": "x"}, lambda: made.append(1) or {"kappa": 0.3})
    entry = ModelCache(tmp_path, version="fixture-v2").get_or_create({"kappa": "x"}, lambda: made.append(2) or {"kappa": 1.0})
    assert made == [1, 2] and entry["kappa"] == 1.0


def test_a_read_only_cache_serves_what_it_holds_without_locking(tmp_path, monkeypatch):
    cache = ModelCache(tmp_path, version="v1")
    cache.get_or_create({"x": 1}, lambda: {"v": torch.ones(2)})

    class ReadOnlyLock:
        def __init__(self, path):
            self.path = path

        def acquire(self):
            raise PermissionError(13, "Read-only file system", self.path)

    monkeypatch.setattr(cache_module, "FileLock", ReadOnlyLock)
    assert torch.equal(cache.get_or_create({"x": 1}, lambda: pytest.fail("trained again"))["v"], torch.ones(2))
    with pytest.raises(CacheError, match="--cache-dir .* cannot store a new entry .*Read-only file system"):
        cache.get_or_create({"x": 2}, lambda: {"v": torch.zeros(1)})


# --- report files ---------------------------------------------------------------------------------

@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(bytes(range(256))), "not a text file"),
    (lambda p: p.mkdir(), "is a folder"),
    (lambda p: p.write_text(json.dumps({"schema": 1, "records": [{"nodeid": "n", "claim_id": "B-X", "paper": "p",
                                                                   "verdict": "holds", "profile": "fast"}]})), "lacks section"),
    (lambda p: p.write_text(json.dumps({"schema": 1, "records": [record(verdict="maybe")]})), "unknown verdict 'maybe'"),
    (lambda p: p.write_text(json.dumps({"schema": 1, "records": [record(measured=[1])]})), "measured (list, not dict)"),
    (lambda p: p.write_text(json.dumps({"schema": 1, "records": [], "runs": {"a": 1}})), "'runs' must be a list"),
])
def test_merge_turns_every_bad_input_into_one_error_line(tmp_path, capsys, make, message):
    bad = tmp_path / "bad.json"
    make(bad)
    assert report_main(["merge", str(bad), "-o", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_merge_says_which_run_won_an_overlap(tmp_path, capsys):
    old = record(run_id="100.0 host 1", recorded="1970-01-01 00:01:40 UTC", commit="aaa", summary="old")
    new = record(run_id="200.0 host 2", recorded="1970-01-01 00:03:20 UTC", commit="bbb", summary="new")
    write_json([new], tmp_path / "new.json")
    write_json([old], tmp_path / "old.json")
    assert report_main(["merge", str(tmp_path / "new.json"), str(tmp_path / "old.json"), "-o", str(tmp_path / "m.html"),
                        "--json", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "B-X-1 (fast, no tier): in several files; kept the run of 1970-01-01 00:03:20 UTC (commit bbb)" in out
    assert "over the run of 1970-01-01 00:01:40 UTC (commit aaa)" in out and "1 overlap(s)" in out
    assert [r["summary"] for r in load_records(tmp_path / "m.json")[0]] == ["new"]


def test_records_of_other_code_or_settings_are_marked_stale(project):
    project.runpytest("claims", "-m", "fast")
    json_path = project.path / "reports" / "claims.json"
    payload = json.loads(json_path.read_text(encoding="utf-8"))
    for rec in payload["records"]:
        if rec["claim_id"] == "B-T-REFUTED":
            rec.update(code_version="0ld0ld0", commit="abc1234")
    json_path.write_text(json.dumps(payload), encoding="utf-8")
    (project.path / "README.md").write_text("docs do not make records stale")
    claims = project.path / "claims" / "scratch.yaml"
    claims.write_text(claims.read_text(encoding="utf-8").replace("{fast: {}}", "{fast: {extra: 1}}"), encoding="utf-8")
    project.runpytest("claims", "-m", "fast", "-k", "B-T-HOLDS")
    html = (project.path / "reports" / "claims.html").read_text(encoding="utf-8")
    assert html.count('<div class="stale"') == 4  # B-T-REFUTED (commit) and the three B-T-CASES (settings)
    assert "made with other code (commit abc1234)" in html and "settings in the claims YAML have changed since" in html
    assert "4 record(s) are stale" in html


def test_stale_reasons_compare_code_and_settings():
    recs = [record(code_version="a", commit="c1", settings_hash="s1"), record(claim="B-X-2", code_version="b", settings_hash="s1"),
            record(claim="B-X-3", code_version="b", settings_hash="s2"), record(claim="B-X-4", code_version="b"),
            record(claim="B-X-5", settings_hash="s1")]  # a record from before code versions: not judged on code
    now = {"B-X-1": "s1", "B-X-2": "s1", "B-X-3": "s3", "B-X-5": "s1"}
    reasons = stale_reasons(recs, "b", lambda r: now.get(r["claim_id"]))
    assert set(reasons) == {"B-X-1|None|fast|None", "B-X-3|None|fast|None", "B-X-4|None|fast|None"}
    assert "other code (commit c1)" in reasons["B-X-1|None|fast|None"] and "no longer in the catalogue" in reasons["B-X-4|None|fast|None"]


def test_the_suite_version_ignores_docs_and_rendering(tmp_path):
    for package in ("harness", "fixtures", "claims"):
        (tmp_path / package / "report").mkdir(parents=True)
        (tmp_path / package / "a.py").write_text("x = 1")
    before = suite_version(tmp_path)
    (tmp_path / "README.md").write_text("docs")
    (tmp_path / "harness" / "report" / "html.py").write_text("rendering")
    assert suite_version(tmp_path) == before
    (tmp_path / "claims" / "a.py").write_text("x = 2")
    assert suite_version(tmp_path) != before


def test_the_cache_check_creates_nothing(tmp_path):
    assert checks.cache_dir(tmp_path / "a" / "b", "--cache-dir") and not (tmp_path / "a").exists()
    (tmp_path / "f").write_text("x")
    with pytest.raises(checks.ConfigError, match="cannot be created: .*f is a file"):
        checks.cache_dir(tmp_path / "f" / "cache", "--cache-dir")


# --- judge only -----------------------------------------------------------------------------------

def test_a_judge_only_cache_serves_entries_and_names_the_missing_ones(tmp_path):
    ModelCache(tmp_path, version="v1").get_or_create({"kind": "run", "lr": 0.1}, lambda: {"v": 1})
    judge = ModelCache(tmp_path, version="v1", judge_only=True)
    assert judge.get_or_create({"kind": "run", "lr": 0.1}, lambda: pytest.fail("trained"))["v"] == 1
    with pytest.raises(CacheError, match=r"--judge-only: .* lacks 1 run\(s\) .*: run\(lr=0.01\)"):
        judge.get_or_create({"kind": "run", "lr": 0.01}, lambda: pytest.fail("trained"))


def test_judge_only_lists_every_missing_run_before_starting_workers(tmp_path, monkeypatch):
    from harness.concurrent import cached_side_by_side

    monkeypatch.setattr("harness.concurrent.parallel_map", lambda *a, **k: pytest.fail("workers started"))
    judge = ModelCache(tmp_path, version="v1", judge_only=True)
    with pytest.raises(CacheError, match=r"lacks 7 run\(s\).*dln-run\(norm=n0.*and 2 more"):
        cached_side_by_side(lambda **kw: None, [{"norm": f"n{i}"} for i in range(7)], judge, lambda c: {"kind": "dln-run", **c})


def test_judge_only_on_the_real_suite_fails_naming_the_missing_runs(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "claims", "-m", "fast", "-k", "B-RMT-KAPPA", "--judge-only", "-p", "no:cacheprovider",
         "--cache-dir", str(tmp_path / "empty-cache"), "--report-dir", str(tmp_path / "reports"), "-q"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout[-2000:]
    assert "--judge-only: the model cache" in proc.stdout and "product-spectra(" in proc.stdout
    assert not (tmp_path / "empty-cache").exists() or not any((tmp_path / "empty-cache").iterdir())  # nothing trained


# --- pytest conventions ---------------------------------------------------------------------------

def test_the_header_names_device_threads_cache_report_and_data(project):
    result = project.runpytest("claims", "-m", "fast")
    result.stdout.fnmatch_lines(["bnclaims: device *, 1 torch thread(s) per process, seed offset 0",
                                 "bnclaims: model cache *fixtures/cache, report *reports, CIFAR-10 not configured"])


def test_junitxml_does_not_copy_the_records(project):
    project.runpytest("claims", "-m", "fast", "--junitxml", "out.xml").assert_outcomes(passed=3, xfailed=2)
    xml = (project.path / "out.xml").read_text(encoding="utf-8")
    assert "bnclaims_record" not in xml and len(records(project)[0]) == 5


def test_the_report_lists_claims_in_the_catalogue_order(project):
    project.runpytest("claims", "-m", "fast")
    html = (project.path / "reports" / "claims.html").read_text(encoding="utf-8")
    positions = [html.index(f'id="{cid}"') for cid in ("B-T-HOLDS", "B-T-REFUTED", "B-T-CASES")]  # YAML order, not A–Z
    assert positions == sorted(positions)


def test_merge_marks_records_of_older_code_than_the_newest_run_stale(tmp_path):
    write_json([record(run_id="100.0 h 1", code_version="old"), record(claim="B-X-2", run_id="200.0 h 2", code_version="new")],
               tmp_path / "a.json")
    assert report_main(["merge", str(tmp_path / "a.json"), "-o", str(tmp_path / "m.html")]) == 0
    html = (tmp_path / "m.html").read_text(encoding="utf-8")
    assert html.count('<div class="stale"') == 1 and "1 record(s) are stale" in html
