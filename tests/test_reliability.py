"""Reliability matrix: every way a run could lose, fake or garble a result, and what it does instead.

Each case is a scratch project (tests/test_plugin.py) or a direct call, checked for the behaviour
the README's troubleshooting section promises: one line naming the option before any claim runs,
no silent stand-in data, no stale cache entry served, a report that stays consistent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from harness import bn_identity, checks
from harness.claimkit import checks as kit_checks
from harness import cache as cache_module
from harness.claimkit import store as store_module
from harness.cache import CacheError, ModelCache, code_version, config_key, environment
from harness.claimkit.report.__main__ import main as report_main
from harness.claimkit.report.records import load_records, stale_reasons, suite_version, write_json
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
    monkeypatch.setattr(kit_checks, "try_write", lambda folder: PermissionError(13, "Permission denied"))
    with pytest.raises(kit_checks.ConfigError, match="--report-dir .* is not writable .*Permission denied"):
        kit_checks.report_dir(tmp_path, "--report-dir")
    (tmp_path / "file").write_text("x")
    with pytest.raises(checks.ConfigError, match="cannot be created"):
        kit_checks.report_dir(tmp_path / "file" / "reports", "--report-dir")


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
    for judging in ("harness/claimkit/evidence.py", "harness/claimkit/verdicts.py", "harness/claimkit/settings.py",
                    "harness/readouts/dln.py", "fixtures/vgg.py"):
        path = copy / judging
        path.write_text(path.read_text(encoding="utf-8") + "\nJUDGED_KAPPA = 1.0\n", encoding="utf-8")
        code_version.cache_clear()
        assert code_version(copy) == before, f"{judging} decides about entries and must not version them"
    train = copy / "harness" / "train.py"
    source = train.read_text(encoding="utf-8")
    train.write_text("# a comment\n" + source.replace('"""', '"""Edited. ', 1) + "\n\n# another\n", encoding="utf-8")
    code_version.cache_clear()
    assert code_version(copy) == before, "comments, docstrings and layout are not code"
    train.write_text(source + "\nSTORED_KAPPA = 1.0\n", encoding="utf-8")
    code_version.cache_clear()
    assert code_version(copy) != before
    names = {p.relative_to(copy).as_posix() for p in cache_module.versioned_modules(copy)}
    assert {"harness/train.py", "harness/accel.py", "harness/probes/checkpoints.py", "harness/dln.py", "fixtures/rmt.py"} <= names
    assert not names & {"harness/claimkit/plugin/__init__.py", "harness/claimkit/report/html.py", "harness/claimkit/evidence.py",
                        "harness/claimkit/verdicts.py", "harness/claimkit/registry.py", "harness/claimkit/settings.py",
                        "fixtures/vgg.py"}  # judging, parsing and asking, not making


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

    monkeypatch.setattr(store_module, "FileLock", ReadOnlyLock)
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
    packages = ("harness", "fixtures", "claims")
    before = suite_version(tmp_path, packages)
    (tmp_path / "README.md").write_text("docs")
    (tmp_path / "harness" / "report" / "html.py").write_text("rendering")
    assert suite_version(tmp_path, packages) == before
    (tmp_path / "claims" / "a.py").write_text("x = 2")
    assert suite_version(tmp_path, packages) != before


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
    result.stdout.fnmatch_lines(["claims: seed offset 0, report *reports",
                                 "bnclaims: device *, 1 torch thread(s) per process",
                                 "bnclaims: model cache *fixtures/cache, CIFAR-10 not configured"])


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


# === round 2 (issue 28): the documented nightly works as written; no run loses or fakes a result ===

def _real_suite(*args: str, cwd: Path = REPO, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """A command on the real repository, in a fresh process (its own pytest, its own rootdir choice)."""
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


# --- the plugin's options wherever pytest starts ---------------------------------------------------

def test_the_plugin_is_registered_through_its_entry_point():
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert '[project.entry-points.pytest11]\n"harness.claimkit.plugin" = "harness.claimkit.plugin"' in text
    proc = _real_suite("-c", "from importlib.metadata import entry_points; "
                             "print([e.value for e in entry_points(group='pytest11') if e.name == 'harness.claimkit.plugin'])")
    assert proc.stdout.strip() == "['harness.claimkit.plugin']", "reinstall: pip install -e ."


def test_an_install_without_the_entry_point_says_to_reinstall(project, monkeypatch):
    import harness.claimkit.plugin.options as plugin_config

    monkeypatch.setattr(plugin_config, "_installed_plugins", lambda: {"xdist"})
    result = project.runpytest("claims", "-m", "fast", "-k", "B-T-HOLDS")
    result.assert_outcomes(passed=1)
    for plugin in ("harness.claimkit.plugin", "harness.bn_plugin"):  # each names itself, in either order
        result.stdout.fnmatch_lines([f"*installed without the pytest plugin entry point {plugin}*pip install -e .*"])


def test_folders_outside_the_repository_written_after_a_space_work_without_test_paths(tmp_path):
    """pytest picks its rootdir before installed plugins load, so an existing folder after
    --report-dir / --cache-dir used to become the rootdir (no pyproject.toml, no claims)."""
    reports, cache = tmp_path / "reports", tmp_path / "cache"
    reports.mkdir(), cache.mkdir()
    proc = _real_suite("-m", "pytest", "-m", "fast", "-k", "S-THM41", "--report-dir", str(reports), "--cache-dir", str(cache),
                       "-p", "no:cacheprovider")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert f"rootdir: {REPO}" in proc.stdout and "1 passed" in proc.stdout
    assert [r["claim_id"] for r in load_records(reports / "claims.json")[0]] == ["S-THM41"]
    cifar = tmp_path / "cifar"  # an existing folder with no CIFAR-10: the option is read, and its check names it
    cifar.mkdir()
    proc = _real_suite("-m", "pytest", "-m", "fast", "-k", "S-THM41", "--cifar10-root", str(cifar), "--report-dir", str(reports))
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR
    assert "--cifar10-root (env BNCLAIMS_CIFAR10): CIFAR-10 under" in proc.stderr and "unrecognized arguments" not in proc.stderr


def test_a_scratch_project_keeps_its_rootdir_when_an_option_names_a_folder_elsewhere(project, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    result = project.runpytest_subprocess("-m", "fast", "-k", "B-T-HOLDS", "--report-dir", str(elsewhere), "--cache-dir",
                                          str(elsewhere))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"rootdir: {project.path}"])
    assert (elsewhere / "claims.json").exists()


def test_outside_a_claims_project_the_installed_plugin_changes_nothing(pytester):
    pytester.makepyfile(test_plain="def test_x():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "bnclaims:" not in result.stdout.str() and not (pytester.path / "reports").exists()


def test_the_nightly_has_its_own_help():
    proc = _real_suite("-m", "harness.nightly", "--help")
    assert proc.returncode == 0 and proc.stdout.startswith("usage: python -m harness.nightly [PYTEST ARGS]")
    assert len(proc.stdout.splitlines()) < 30 and "Traceback" not in proc.stdout + proc.stderr


def test_the_documented_nightly_runs_its_stages_and_judges(tmp_path):
    """README: python -m harness.nightly -m slow --smoke … from the repository root (here with a
    cache and a report folder of the test's own, written after a space)."""
    reports, cache = tmp_path / "reports", tmp_path / "cache"
    reports.mkdir(), cache.mkdir()
    proc = _real_suite("-m", "harness.nightly", "-m", "slow", "--smoke", "-k", "S-THM41", "--cache-dir", str(cache),
                       "--report-dir", str(reports), "-p", "no:cacheprovider", timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "== nightly stage 1" in proc.stdout and "== judging every claim from the model cache (--judge-only)" in proc.stdout
    recs, runs = load_records(reports / "claims.json")
    assert [(r["claim_id"], r["tier"]) for r in recs] == [("S-THM41", "smoke")] and runs[-1]["finished"]


def test_the_nightly_says_when_a_stage_selects_no_claim(tmp_path):
    proc = _real_suite("-m", "harness.nightly", "-m", "slow", "-p", "no:cacheprovider", cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "error: stage 1" in proc.stderr


# --- the model cache never serves a changed entry --------------------------------------------------

def test_a_changed_number_in_a_cache_entry_is_a_warning_and_a_rebuild_never_a_result(tmp_path):
    from tests.test_cache import test_a_changed_number_inside_an_intact_zip_is_not_served

    test_a_changed_number_inside_an_intact_zip_is_not_served(tmp_path)  # the B-RMT-EDGE case of the issue


def test_a_rejected_cache_entry_reaches_the_terminal(project):
    (project.path / "test_cached.py").write_text(textwrap.dedent('''
        import pytest, torch
        from harness.cache import ModelCache

        @pytest.mark.claim("B-T-HOLDS")
        def test_cached(verdict, tmp_path):
            cache = ModelCache(tmp_path, version="v1")
            cache.get_or_create({"x": 1}, lambda: {"v": torch.zeros(1)})
            path = cache.path({"x": 1})
            path.write_bytes(path.read_bytes()[:-8] + b"tampered")
            cache.get_or_create({"x": 1}, lambda: {"v": torch.ones(1)})
            verdict.conclude(holds=True, summary="rebuilt")
    '''), encoding="utf-8")
    result = project.runpytest("test_cached.py", "-m", "fast")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*warnings summary*", "*CacheWarning: model cache: entry *.pt rejected (its content does not "
                                 "match its digest*): deleted, rebuilding it"])


def test_the_read_only_cache_warning_reaches_the_terminal(project, monkeypatch):
    monkeypatch.setattr(checks, "cache_dir", lambda path, option: False)
    result = project.runpytest("claims", "-m", "fast", "-k", "B-T-HOLDS")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*warnings summary*", "*CacheWarning: the model cache *fixtures/cache is read-only: stored runs "
                                 "are served, a missing one stops its claim with an error"])


def test_runs_under_a_mutation_get_cache_keys_of_their_own(monkeypatch):
    monkeypatch.delenv(cache_module.MUTATION_ENV, raising=False)
    real = environment("cpu")
    monkeypatch.setenv(cache_module.MUTATION_ENV, "harness.bn_identity")
    assert environment("cpu") == {**real, "mutation": "harness.bn_identity"}
    assert config_key({"a": 1}, "v1", environment("cpu")) != config_key({"a": 1}, "v1", real)


# --- runs under a plugin that changes what is measured ---------------------------------------------

MUTATE = {
    "declared": 'BNCLAIMS_MUTATION = "every measured value is doubled"\n',
    "undeclared": "def pytest_configure(config):\n    pass\n",
    "harmless": "BNCLAIMS_MUTATION = None  # only prints things\n",
}


def _mutation_plugins(pytester):
    for name, text in MUTATE.items():
        (pytester.path / f"mutate_{name}.py").write_text(text, encoding="utf-8")
    pytester.syspathinsert()


def test_mutation_records_are_marked_and_kept_apart(project):
    _mutation_plugins(project)
    project.runpytest("claims", "-m", "fast").assert_outcomes(passed=3, xfailed=2)  # the real report
    real_before = (project.path / "reports" / "claims.json").read_bytes()
    result = project.runpytest("claims", "-m", "fast", "-p", "mutate_declared")
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    assert (project.path / "reports" / "claims.json").read_bytes() == real_before  # untouched
    recs, payload = records(project, "mutation/claims.json")
    assert len(recs) == 5 and {r["mutation"] for r in recs.values()} == {"mutate_declared"}
    assert payload["runs"][-1]["mutation"] == [{"plugin": "mutate_declared", "change": "every measured value is doubled"}]
    html = (project.path / "reports" / "mutation" / "claims.html").read_text(encoding="utf-8")
    assert "Not a verdict about the papers" in html and "-p mutate_declared</code>: every measured value is doubled" in html
    assert "under -p mutate_declared" in html and "bear on the papers</strong> (" not in html


def test_a_plugin_that_does_not_say_what_it_changes_counts_as_a_mutation(project):
    _mutation_plugins(project)
    project.runpytest("claims", "-m", "fast", "-k", "B-T-HOLDS", "-p", "mutate_undeclared").assert_outcomes(passed=1)
    recs, payload = records(project, "mutation/claims.json")
    assert payload["runs"][-1]["mutation"][0]["change"].startswith("it does not declare BNCLAIMS_MUTATION")
    project.runpytest("claims", "-m", "fast", "-k", "B-T-HOLDS", "-p", "mutate_harmless", "-p", "no:cacheprovider",
                      "-p", "pytester").assert_outcomes(passed=1)
    recs, payload = records(project)  # a plugin that changes nothing, pytest's own and -p no:… write real records
    assert payload["runs"][-1]["mutation"] is None and recs[("B-T-HOLDS", None, "fast")]["mutation"] is None


def test_the_bn_identity_plugin_is_a_mutation(project):
    result = project.runpytest("claims", "-m", "fast", "-k", "B-T-HOLDS", "-p", "harness.bn_identity")
    result.assert_outcomes(passed=1)
    _, payload = records(project, "mutation/claims.json")
    assert payload["runs"][-1]["mutation"] == [{"plugin": "harness.bn_identity", "change": bn_identity.BNCLAIMS_MUTATION}]
    assert not (project.path / "reports" / "claims.json").exists()
    # the run was in this process: once it ended, BN computes again, and nothing points at its cache
    assert torch.nn.functional.batch_norm is not bn_identity.identity_batch_norm
    assert bn_identity.ENV not in os.environ and bn_identity.CACHE_ENV not in os.environ


def test_a_report_folder_never_mixes_real_and_mutation_runs(project, tmp_path):
    _mutation_plugins(project)
    shared = tmp_path / "shared"
    project.runpytest("claims", "-m", "fast", "-k", "B-T-HOLDS", "--report-dir", str(shared)).assert_outcomes(passed=1)
    real = (shared / "claims.json").read_bytes()
    for extra in ([], ["--fresh-report"]):
        _usage_error(project.runpytest("claims", "-m", "fast", "-p", "mutate_declared", "--report-dir", str(shared), *extra),
                     "*--report-dir (env BNCLAIMS_REPORT_DIR) *shared: its claims.json holds real runs, and this is one of "
                     "the runs under -p mutate_declared: the two never share a report; give this run a folder of its own")
    assert (shared / "claims.json").read_bytes() == real
    project.runpytest("claims", "-m", "fast", "-k", "B-T-HOLDS", "-p", "mutate_declared").assert_outcomes(passed=1)
    _usage_error(project.runpytest("claims", "-m", "fast", "--report-dir", str(project.path / "reports" / "mutation")),
                 "*its claims.json holds runs under -p mutate_declared, and this is one of the real runs*")
    assert report_main(["merge", str(shared / "claims.json"), str(project.path / "reports" / "mutation" / "claims.json"),
                        "-o", str(tmp_path / "m.html")]) == 2


def test_the_store_refuses_a_run_of_the_other_kind_even_past_the_check(tmp_path):
    from harness.claimkit.report.records import StoreKindError, update_store

    update_store(tmp_path / "claims.json", [record()], {"id": "1.0 h 1"})
    with pytest.raises(StoreKindError, match="holds real runs"):
        update_store(tmp_path / "claims.json", [record(claim="B-X-2")], {"id": "2.0 h 1", "mutation": [{"plugin": "m", "change": "c"}]},
                     fresh=True)
    assert [r["claim_id"] for r in load_records(tmp_path / "claims.json")[0]] == ["B-X-1"]


# --- the run entry, the store and the set-aside files ----------------------------------------------

INTERRUPT_TEST = '''
    import os, signal, pytest

    @pytest.mark.claim("B-T-HOLDS")
    def test_int(verdict):
        os.kill(os.getpid(), signal.SIGINT)
'''
SECOND_CTRL_C = {
    # before the report's final write: another plugin's session end is cut short
    "before-the-final-write": '''
        import os, signal, pytest

        @pytest.hookimpl(wrapper=True, tryfirst=True)
        def pytest_sessionfinish(session):
            os.kill(os.getpid(), signal.SIGINT)
            return (yield)
    ''',
    # in the middle of it: while the HTML is being rendered
    "during-the-final-write": '''
        import os, signal
        import harness.claimkit.report.html as html

        _render = html.render_html

        def _render_and_ctrl_c(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGINT)
            return _render(*args, **kwargs)

        html.render_html = _render_and_ctrl_c
    ''',
    # after it: while the session's fixtures are torn down
    "after-the-final-write": '''
        import os, signal, pytest

        @pytest.fixture(scope="session", autouse=True)
        def ctrl_c_at_teardown():
            yield
            os.kill(os.getpid(), signal.SIGINT)
    ''',
}


@pytest.mark.parametrize("when", list(SECOND_CTRL_C))
def test_every_ctrl_c_is_recorded_however_many_arrive(project, when):
    (project.path / "test_zz_int.py").write_text(textwrap.dedent(INTERRUPT_TEST), encoding="utf-8")
    plugin = textwrap.dedent(SECOND_CTRL_C[when]) + "\nBNCLAIMS_MUTATION = None  # it changes no measurement\n"
    (project.path / "second_ctrl_c.py").write_text(plugin, encoding="utf-8")
    result = project.runpytest_subprocess("claims/test_scratch.py", "test_zz_int.py", "-m", "fast", "-p", "second_ctrl_c")
    assert result.ret != pytest.ExitCode.OK
    recs, payload = records(project)
    run = payload["runs"][-1]
    assert len(recs) == 5 and run["interrupted"] is True and run["signals"] == ["SIGINT", "SIGINT"], run
    html = (project.path / "reports" / "claims.html").read_text(encoding="utf-8")
    assert "The latest run was interrupted</strong> (SIGINT, SIGINT)" in html and html.count('class="claim"') == 3


def test_an_error_never_replaces_a_measured_verdict(project):
    project.runpytest("claims", "-m", "fast", "-k", "B-T-HOLDS").assert_outcomes(passed=1)
    tests = project.path / "claims" / "test_scratch.py"
    measured = tests.read_text(encoding="utf-8")
    tests.write_text(measured.replace('def test_holds(verdict, settings):\n',
                                      'def test_holds(verdict, settings):\n    raise RuntimeError("--judge-only: the model cache lacks 1 run(s)")\n'),
                     encoding="utf-8")
    project.runpytest("claims", "-m", "fast", "-k", "B-T-HOLDS").assert_outcomes(failed=1)
    rec = records(project)[0][("B-T-HOLDS", None, "fast")]
    assert rec["verdict"] == "holds" and rec["summary"] == "value 2"  # the measurement stays
    assert rec["later_outcome"]["verdict"] == "error" and "lacks 1 run(s)" in rec["later_outcome"]["error"]
    html = (project.path / "reports" / "claims.html").read_text(encoding="utf-8")
    assert "measured nothing: error: " in html and "lacks 1 run(s)" in html
    tests.write_text(measured, encoding="utf-8")
    project.runpytest("claims", "-m", "fast", "-k", "B-T-HOLDS").assert_outcomes(passed=1)
    assert "later_outcome" not in records(project)[0][("B-T-HOLDS", None, "fast")]  # a new measurement replaces it


def test_the_judge_only_rule_of_the_store_merge_too(tmp_path, capsys):
    from harness.claimkit.report.records import merge_records

    holds = record(run_id="100.0 h 1", recorded="then", summary="measured")
    error = record(run_id="200.0 h 2", recorded="now", verdict="error", error="--judge-only: lacks 1 run(s)")
    for groups in (([holds], [error]), ([error], [holds])):
        (kept,) = merge_records(*groups)
        assert kept["verdict"] == "holds" and kept["later_outcome"]["error"] == "--judge-only: lacks 1 run(s)"
    skipped = record(run_id="300.0 h 3", verdict="not run", summary="CIFAR-10 not configured")
    assert merge_records([holds], [skipped])[0]["later_outcome"]["verdict"] == "not run"
    newer = record(run_id="300.0 h 3", verdict="refuted")
    assert merge_records([holds], [newer])[0]["verdict"] == "refuted"  # a measurement still replaces one
    write_json([holds], tmp_path / "a.json")
    write_json([error], tmp_path / "b.json")
    assert report_main(["merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "-o", str(tmp_path / "m.html")]) == 0
    assert "a run that measured nothing never replaces a measured verdict" in capsys.readouterr().out


def test_every_unreadable_report_is_set_aside_under_its_own_name(project):
    store = project.path / "reports" / "claims.json"
    store.parent.mkdir()
    for n, junk in enumerate((b"\x00first junk", b"\x00second junk", b"\x00third junk"), start=1):
        store.write_bytes(junk)
        result = project.runpytest("claims", "-m", "fast", "-k", "B-T-HOLDS")
        aside = "claims.json.unreadable" + (f".{n}" if n > 1 else "")
        result.stdout.fnmatch_lines([f"WARNING claims report: *not valid JSON*moved it to *{aside} and started a new report"])
    assert [(project.path / "reports" / f"claims.json.unreadable{s}").read_bytes() for s in ("", ".2", ".3")] == [
        b"\x00first junk", b"\x00second junk", b"\x00third junk"]


def test_the_html_is_rendered_under_the_report_lock(tmp_path):
    from filelock import FileLock, Timeout

    from harness.claimkit.report.records import update_store

    held = []

    def render(records, runs):
        try:
            FileLock(str(tmp_path / ".claims.json.lock"), timeout=0).acquire()
            held.append(False)
        except Timeout:
            held.append(True)

    update_store(tmp_path / "claims.json", [record()], {"id": "1.0 h 1"}, then=render)
    assert held == [True]


def test_smoke_records_never_go_into_the_main_store_from_the_environment(pytester, monkeypatch, tmp_path):
    from tests.test_plugin import SMOKE_CLAIMS, SMOKE_TEST

    smoky = scratch_project(pytester, {"smoke.yaml": SMOKE_CLAIMS, "test_smoke.py": SMOKE_TEST})
    monkeypatch.setenv("BNCLAIMS_REPORT_DIR", str(tmp_path / "main"))
    smoky.runpytest("claims", "--smoke")
    assert (tmp_path / "main" / "smoke" / "claims.json").exists() and not (tmp_path / "main" / "claims.json").exists()


# --- input checked when the run starts ----------------------------------------------------------

def test_a_repeated_key_names_file_claim_and_line(project):
    path = project.path / "claims" / "scratch.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace('    source: "§9.2"\n', '    source: "§9.2"\n    source: "§9.3"\n'),
                    encoding="utf-8")
    _usage_error(project.runpytest("claims"), "*scratch.yaml: claim B-T-REFUTED: not valid YAML: repeated key 'source'",
                 "*scratch.yaml*line 15*")


@pytest.mark.parametrize("value", ["99999999999999999999999", "1000001"])
def test_a_seed_offset_beyond_what_the_generators_take_is_one_line(project, value):
    _usage_error(project.runpytest("claims", "--seed-offset", value),
                 f"*--seed-offset: expected a whole number from 0 to 1000000, got '{value}'")


@pytest.mark.parametrize("option", ["--cifar10-root", "--report-dir", "--cache-dir", "--claims-dir"])
def test_an_empty_path_is_an_error_not_the_default(project, option):
    _usage_error(project.runpytest("claims", option, ""), f"*{option}: an empty path; give a folder, or leave the option*out*")
    _usage_error(project.runpytest("claims", f"{option}="), f"*{option}: an empty path*")


READOUT_TEST = '''
    import pytest
    from harness.readouts import theory as ro

    @pytest.mark.claim("B-T-HOLDS")
    def test_holds(verdict, settings, thresholds):
        readout = ro.theorem_41([], thresholds)
        verdict.conclude(holds=True, summary="unreachable")
'''


def test_a_threshold_name_the_readout_reads_is_checked_when_the_registry_loads(project):
    claims = project.path / "claims" / "scratch.yaml"
    claims.write_text(claims.read_text(encoding="utf-8").replace('    seed_exempt: "exact"\n    profiles: {fast: {value: 2}',
                                                                 '    seed_exempt: "exact"\n    thresholds: {max_relative_eror: 1.0e-6}\n'
                                                                 '    profiles: {fast: {value: 2}', 1), encoding="utf-8")
    (project.path / "claims" / "test_scratch.py").write_text(textwrap.dedent(READOUT_TEST), encoding="utf-8")
    _usage_error(project.runpytest("claims", "-m", "fast"),
                 "*scratch.yaml: claim B-T-HOLDS: field 'thresholds': test_scratch.py::test_holds reads 'max_relative_error' "
                 "(theory.py:*), which the claim does not declare (declared: max_relative_eror)")
    assert not (project.path / "reports" / "claims.json").exists()  # nothing was measured


def test_every_threshold_a_real_claim_reads_is_declared():
    from harness.claimkit.registry import Registry
    from harness.threshold_reads import claim_reads, readout_modules, undeclared_reads

    registry = Registry.load(REPO / "claims")
    assert undeclared_reads(registry, REPO / "claims", readout_modules(REPO)) == []
    reads = claim_reads(sorted((REPO / "claims").glob("test_*.py")), readout_modules(REPO))
    assert len(reads) > 50 and sum(len(names) for *_, names in reads) > 50  # the checker does follow the readouts


def test_the_model_cache_reads_the_mutation_the_claims_plugin_exports():
    """The machinery exports a run's mutation plugins under a name of its own; the model cache (on
    the suite's side, which the machinery may not import) must read that same name."""
    from harness.claimkit.plugin.options import MUTATION_ENV

    assert cache_module.MUTATION_ENV == MUTATION_ENV
