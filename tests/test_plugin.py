"""The claims plugin end to end, in scratch projects run by pytester.

Each scratch project has a claims YAML, an expected-verdicts file and a claims test module; the
tests read the JSON report the run wrote.
"""

from __future__ import annotations

import json
import textwrap

import pytest

CLAIMS = """
paper: bjorck2018
section: "§9 Scratch"
tiers: {fast: paper, slow: paper}
claims:
  - id: B-T-HOLDS
    source: "§9.1"
    statement: "A <script>alert(1)</script> claim that holds."
    paper_value: "1"
    threshold: "≥ 1"
    seed_exempt: "exact"
    profiles: {fast: {value: 2}, slow: {value: 3}}
  - id: B-T-REFUTED
    source: "§9.2"
    statement: "A claim that does not hold."
    paper_value: "1"
    threshold: "≥ 1"
    seed_exempt: "exact"
    profiles: {fast: {value: 0}}
  - id: B-T-CASES
    source: "§9.3"
    statement: "A parametrized claim."
    paper_value: "1"
    threshold: "≥ 1"
    seed_exempt: "exact"
    profiles: {fast: {}}
"""

EXPECTED = """
- {claim: B-T-REFUTED, profiles: [fast], verdict: refuted, cause: finding, measured: "0", reason: "scratch refutation"}
- {claim: B-T-CASES, case: "k=0", profiles: [fast], verdict: refuted, cause: finding, measured: "0", reason: "k = 0 fails"}
"""

TESTS = """
import pytest

@pytest.mark.claim("B-T-HOLDS")
def test_holds(verdict, settings):
    verdict.measure(value=settings["value"])
    verdict.conclude(holds=settings["value"] >= 1, summary=f"value {settings['value']}")

@pytest.mark.claim("B-T-REFUTED")
def test_refuted(verdict, settings):
    verdict.measure(value=settings["value"])
    verdict.conclude(holds=settings["value"] >= 1, summary=f"value {settings['value']}")

@pytest.mark.claim("B-T-CASES")
@pytest.mark.parametrize("k", [0, 1, 2], ids=lambda k: f"k={k}")
def test_cases(verdict, k):
    verdict.conclude(holds=k >= 1, summary=f"k {k}")
"""


SCRATCH_CONFTEST = """
pytest_plugins = ["harness.claimkit.plugin"]

from harness.settings import Settings, register, settings_class


@settings_class
class ScratchShared(Settings):
    steps: int | None = None
    n: int | None = None
    dataset: str | None = None


@settings_class
class ScratchClaim(Settings):
    value: int | None = None
    boom: bool | None = None
    only_fast: int | None = None
    seeds: list[int] | None = None
    extra: int | None = None


for family in ("scratch", "half", "seeded", "smoke", "broken"):
    register(family, ScratchShared, ScratchClaim)
"""


def scratch_project(pytester, files: dict[str, str]):
    """A scratch project with the claims plugin, settings classes for its claims families, and
    ``files`` (name → text) in its claims/ folder."""
    pytester.makeconftest(SCRATCH_CONFTEST)
    (pytester.path / "claims").mkdir()
    for name, text in files.items():
        (pytester.path / "claims" / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return pytester


@pytest.fixture
def project(pytester):
    return scratch_project(pytester, {"scratch.yaml": CLAIMS, "expected_verdicts.yaml": EXPECTED, "test_scratch.py": TESTS})


def records(pytester, name="claims.json"):
    payload = json.loads((pytester.path / "reports" / name).read_text(encoding="utf-8"))
    return {(r["claim_id"], r["case"], r["profile"]): r for r in payload["records"]}, payload


def verdicts(recs):
    return {k: r["verdict"] for k, r in recs.items()}


def test_verdicts_expected_failures_and_report(project):
    result = project.runpytest("claims", "-m", "fast")
    result.assert_outcomes(passed=3, xfailed=2)
    recs, payload = records(project)
    assert verdicts(recs) == {
        ("B-T-HOLDS", None, "fast"): "holds",
        ("B-T-REFUTED", None, "fast"): "refuted",
        ("B-T-CASES", "k=0", "fast"): "refuted",
        ("B-T-CASES", "k=1", "fast"): "holds",
        ("B-T-CASES", "k=2", "fast"): "holds",
    }
    assert all(r["as_expected"] for r in recs.values())
    rec = recs[("B-T-REFUTED", None, "fast")]
    assert rec["expected"] == "refuted" and rec["expected_reason"] == "scratch refutation"
    assert rec["measured"] == {"value": 0} and rec["summary"] == "value 0"
    for key in ("statement", "source", "paper_value", "threshold", "dataset", "device", "seeds", "torch_version", "wall_time_s"):
        assert key in rec
    html = (project.path / "reports" / "claims.html").read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert payload["runs"][0]["finished"] is True


def test_plain_pytest_runs_fast_profile_only(project):
    result = project.runpytest("claims")
    result.assert_outcomes(passed=3, xfailed=2, deselected=1)  # B-T-HOLDS[slow]
    result = project.runpytest("claims", "-m", "slow")
    result.assert_outcomes(passed=1, deselected=5)


def test_flipped_verdict_fails_strictly(project):
    # the expected refutation now holds: strict xfail turns it into a failure (XPASS(strict))
    (project.path / "claims" / "scratch.yaml").write_text(
        textwrap.dedent(CLAIMS).replace("profiles: {fast: {value: 0}}", "profiles: {fast: {value: 5}}"), encoding="utf-8"
    )
    result = project.runpytest("claims", "-m", "fast")
    result.assert_outcomes(passed=3, xfailed=1, failed=1)
    recs, _ = records(project)
    flipped = recs[("B-T-REFUTED", None, "fast")]
    assert flipped["verdict"] == "holds" and flipped["as_expected"] is False


def test_unexpected_refutation_fails(project):
    (project.path / "claims" / "expected_verdicts.yaml").write_text("[]\n", encoding="utf-8")
    result = project.runpytest("claims", "-m", "fast")
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(["B-T-REFUTED refuted at profile 'fast': value 0"])  # the message, no traceback
    assert "def test_" not in result.stdout.str()


def test_crash_in_expected_refutation_is_an_error_not_an_xfail(project):
    tests = TESTS.replace('    verdict.measure(value=settings["value"])\n    verdict.conclude(holds=settings["value"] >= 1, summary=f"value {settings[\'value\']}")\n\n@pytest.mark.claim("B-T-CASES")',
                          '    raise ZeroDivisionError("probe broke")\n\n@pytest.mark.claim("B-T-CASES")')
    (project.path / "claims" / "test_scratch.py").write_text(textwrap.dedent(tests), encoding="utf-8")
    result = project.runpytest("claims", "-m", "fast")
    result.assert_outcomes(passed=3, xfailed=1, failed=1)
    recs, _ = records(project)
    rec = recs[("B-T-REFUTED", None, "fast")]
    assert rec["verdict"] == "error" and "ZeroDivisionError: probe broke" in rec["error"]


def test_unknown_claim_id_is_a_collection_error(project):
    project.makepyfile(test_unknown='''
        import pytest
        @pytest.mark.claim("B-NOT-THERE")
        def test_x(verdict):
            verdict.conclude(True, "")
    ''')
    result = project.runpytest("test_unknown.py")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*test_unknown.py::test_x: unknown claim ID 'B-NOT-THERE'*"])


def test_claim_test_must_conclude(project):
    project.makepyfile(test_silent='''
        import pytest
        @pytest.mark.claim("B-T-HOLDS")
        def test_x(verdict):
            verdict.measure(value=1)
    ''')
    result = project.runpytest("test_silent.py", "-m", "fast")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ended without calling verdict.conclude()*"])


def test_skip_is_recorded_as_not_run(project):
    project.makepyfile(test_skip='''
        import pytest
        @pytest.mark.claim("B-T-HOLDS")
        def test_x(verdict):
            pytest.skip("CIFAR-10 not configured: pass --cifar10-root")
    ''')
    project.runpytest("test_skip.py", "-m", "fast").assert_outcomes(skipped=1)
    recs, _ = records(project)
    rec = recs[("B-T-HOLDS", None, "fast")]
    assert rec["verdict"] == "not run" and "cifar10-root" in rec["summary"] and rec["as_expected"] is None


def test_malformed_registry_stops_the_run(project):
    (project.path / "claims" / "broken.yaml").write_text("paper: bjorck2018\nsection: x\nclaims:\n  - id: B-X-1\n", encoding="utf-8")
    result = project.runpytest("claims")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*broken.yaml: claim B-X-1: field 'source': missing*"])


def test_interrupted_run_leaves_a_valid_report(project):
    project.makepyfile(test_zz_interrupt='''
        import pytest
        @pytest.mark.claim("B-T-HOLDS")
        def test_x(verdict):
            raise KeyboardInterrupt
    ''')
    result = project.runpytest_subprocess("claims/test_scratch.py", "test_zz_interrupt.py", "-m", "fast")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    recs, payload = records(project)
    assert len(recs) == 5  # every claim that finished before the interrupt
    assert payload["runs"][0]["interrupted"] is True
    assert (project.path / "reports" / "claims.html").read_text(encoding="utf-8").count('class="claim"') == 3


def test_xdist_gives_same_verdicts_and_one_report(project):
    project.runpytest("claims", "-m", "fast")
    serial, _ = records(project)
    (project.path / "reports" / "claims.json").unlink()
    result = project.runpytest_subprocess("claims", "-m", "fast", "-n", "2", "-p", "xdist")
    result.assert_outcomes(passed=3, xfailed=2)
    parallel, payload = records(project)
    assert verdicts(parallel) == verdicts(serial)
    assert {r["nodeid"] for r in parallel.values()} == {r["nodeid"] for r in serial.values()}
    assert sorted(p.name for p in (project.path / "reports").iterdir()) == [".claims.json.lock", "claims.html", "claims.json",
                                                                          "history.sqlite"]


def test_a_family_runs_on_one_xdist_worker(project):
    """With -n and no --dist, the plugin distributes by file: every test of a claims file runs on
    the same worker, so a family's shared session fixtures (trained runs, probed records) are built once."""
    family = textwrap.dedent('''
        import os, pytest

        @pytest.mark.parametrize("k", range(6))
        def test_member(k):
            with open(os.path.join(os.path.dirname(__file__), f"{__name__}.workers"), "a") as f:
                f.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")
    ''')
    for name in ("test_family_a.py", "test_family_b.py"):
        (project.path / "claims" / name).write_text(family, encoding="utf-8")
    result = project.runpytest_subprocess("claims/test_family_a.py", "claims/test_family_b.py", "-n", "2", "-p", "xdist")
    result.assert_outcomes(passed=12)
    for name in ("test_family_a", "test_family_b"):
        workers = (project.path / "claims" / f"{name}.workers").read_text().split()
        assert len(workers) == 6 and len(set(workers)) == 1, f"{name} ran on {sorted(set(workers))}"


def test_claim_id_selects_with_k_and_unknown_ids_are_named(project):
    result = project.runpytest("claims", "-m", "fast", "-k", "B-T-CASES", "-v")
    result.assert_outcomes(passed=2, xfailed=1, deselected=3)
    result.stdout.fnmatch_lines(["*test_cases?B-T-CASES-fast-k=1?*PASSED*"])
    result = project.runpytest("claims", "-k", "B-T-CASSES")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*-k names unknown claim ID(s) B-T-CASSES; known IDs: B-T-CASES, B-T-HOLDS, B-T-REFUTED*"])


HALF_CLAIMS = """
paper: santurkar2018
section: "§8 Other network"
tiers: {fast: paper}
claims:
  - id: B-T-HOLDS
    case: net2
    seed_exempt: "exact"
    source: "§8.1"
    statement: "The holding claim, on a second network."
    paper_value: "2"
    threshold: "≥ 2"
    profiles: {fast: {value: 1}}
"""

HALF_TEST = """
import pytest

@pytest.mark.claim("B-T-HOLDS", case="net2")
def test_holds_net2(verdict, settings):
    verdict.conclude(holds=settings["value"] >= 2, summary=f"value {settings['value']}")
"""


def test_half_of_a_claim_runs_with_its_own_metadata(project):
    (project.path / "claims" / "half.yaml").write_text(textwrap.dedent(HALF_CLAIMS), encoding="utf-8")
    (project.path / "claims" / "test_half.py").write_text(textwrap.dedent(HALF_TEST), encoding="utf-8")
    with open(project.path / "claims" / "expected_verdicts.yaml", "a", encoding="utf-8") as fh:
        fh.write('- {claim: B-T-HOLDS, case: net2, profiles: [fast], verdict: refuted, cause: finding, measured: "1", reason: "half refuted"}\n')
    result = project.runpytest("claims", "-m", "fast", "-k", "B-T-HOLDS", "-v")
    result.assert_outcomes(passed=1, xfailed=1, deselected=5)
    result.stdout.fnmatch_lines(["*test_holds_net2?B-T-HOLDS-fast-net2?*XFAIL*"])
    recs, _ = records(project)
    main, half = recs[("B-T-HOLDS", None, "fast")], recs[("B-T-HOLDS", "net2", "fast")]
    assert (main["verdict"], main["section"], main["threshold"]) == ("holds", "§9 Scratch", "≥ 1")
    assert (half["verdict"], half["section"], half["threshold"], half["paper"]) == ("refuted", "§8 Other network", "≥ 2", "santurkar2018")
    assert half["as_expected"] and half["expected_reason"] == "half refuted"


def test_claim_marker_with_unknown_case_is_a_collection_error(project):
    (project.path / "claims" / "test_bad_case.py").write_text(HALF_TEST, encoding="utf-8")
    result = project.runpytest("claims", "-m", "fast")
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*claim B-T-HOLDS has no case 'net2' (cases: none)*"])


SEEDED_CLAIMS = """
paper: bjorck2018
section: "§9 Seeded"
tiers: {fast: stand-in}
claims:
  - id: B-T-SEEDED
    source: "§9.4"
    statement: "A stochastic claim decided from its seeds."
    paper_value: "10"
    threshold: "ratio ≥ 10"
    profiles: {fast: {seeds: [0, 1, 2]}}
    deviations: {fast: "scratch stand-in"}
"""

SEEDED_TEST = """
import pytest
from harness.claimkit.evidence import Condition

RATIOS = {0: 20.0, 1: 30.0, 2: 25.0, 1000: 2.0, 1001: 30.0, 1002: 25.0}

@pytest.mark.claim("B-T-SEEDED")
def test_seeded(verdict, settings):
    verdict.seeds = settings["seeds"]
    verdict.decide(Condition.at_least("ratio", [RATIOS[s] for s in settings["seeds"]], 10, log=True))
"""


@pytest.fixture
def seeded(pytester):
    return scratch_project(pytester, {"seeded.yaml": SEEDED_CLAIMS, "test_seeded.py": SEEDED_TEST})


def expect(pytester, entry: str) -> None:
    (pytester.path / "claims" / "expected_verdicts.yaml").write_text(entry, encoding="utf-8")


INCONCLUSIVE_ENTRY = ('- {claim: B-T-SEEDED, profiles: [fast], verdict: inconclusive, cause: profile, '
                      'measured: "2, 30, 25", reason: "one seed far below"}\n')


def test_seed_offset_redraws_and_an_inconclusive_verdict_fails_unless_expected(seeded, monkeypatch):
    result = seeded.runpytest("claims", "-m", "fast")
    result.assert_outcomes(passed=1)
    (rec,) = records(seeded)[0].values()
    assert (rec["verdict"], rec["tier"], rec["seed_offset"], rec["settings"]["seeds"]) == ("holds", "stand-in", 0, [0, 1, 2])
    # seeds 1000–1002 straddle the threshold: inconclusive, a failure while nobody expects it
    result = seeded.runpytest("claims", "-m", "fast", "--seed-offset", "1")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["B-T-SEEDED inconclusive at profile 'fast': ratio * (geometric mean of 3 seeds, 95% ?*?; needs >= 10)*"])
    (rec,) = records(seeded)[0].values()
    assert (rec["verdict"], rec["seed_offset"], rec["as_expected"]) == ("inconclusive", 1, False)
    expect(seeded, INCONCLUSIVE_ENTRY)
    monkeypatch.setenv("BNCLAIMS_SEED_OFFSET", "1")  # the environment variable works like the option
    result = seeded.runpytest("claims", "-m", "fast")
    result.assert_outcomes(xfailed=1)
    (rec,) = records(seeded)[0].values()
    assert (rec["verdict"], rec["cause"], rec["as_expected"]) == ("inconclusive", "profile", True)


def test_an_expected_inconclusive_that_turns_decided_fails(seeded):
    expect(seeded, INCONCLUSIVE_ENTRY)
    seeded.runpytest("claims", "-m", "fast").assert_outcomes(failed=1)  # XPASS(strict): the seeds now agree
    expect(seeded, INCONCLUSIVE_ENTRY.replace("verdict: inconclusive", "verdict: refuted"))
    # expected refuted, got inconclusive: a different outcome also fails
    seeded.runpytest("claims", "-m", "fast", "--seed-offset", "1").assert_outcomes(failed=1)


@pytest.mark.parametrize("value", ["-1", "abc", "1000001", "99999999999999999999999"])
def test_a_bad_seed_offset_is_one_usage_error(seeded, value):
    result = seeded.runpytest("claims", "--seed-offset", value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--seed-offset: expected a whole number from 0 to 1000000, got '{value}'*"])


def test_a_run_whose_images_stood_in_for_cifar10_counts_as_a_stand_in(project):
    (project.path / "claims" / "test_scratch.py").write_text(textwrap.dedent(TESTS).replace(
        '''    verdict.measure(value=settings["value"])
    verdict.conclude(holds=settings["value"] >= 1, summary=f"value {settings['value']}")''',
        '''    verdict.ran_on(*(("natural-patches-32px", "CIFAR-10") if settings["value"] == 2 else ("cifar10",)))
    verdict.conclude(holds=settings["value"] >= 1, summary=f"value {settings['value']}")''', 1), encoding="utf-8")
    project.runpytest("claims", "-m", "fast or slow").assert_outcomes(passed=4, xfailed=2)
    recs, _ = records(project)
    fast, slow = recs[("B-T-HOLDS", None, "fast")], recs[("B-T-HOLDS", None, "slow")]
    assert (fast["tier"], slow["tier"]) == ("stand-in", "paper")  # both declared paper
    assert any("stood in for CIFAR-10" in n for n in fast["notes"])


def test_the_report_is_a_store_a_subset_run_keeps_the_rest(project):
    project.runpytest("claims", "-m", "fast")
    full, _ = records(project)
    json_path = project.path / "reports" / "claims.json"
    before = json_path.read_bytes()
    project.runpytest("claims", "-m", "fast", "--collect-only")  # collects, runs nothing, writes nothing
    assert json_path.read_bytes() == before
    project.runpytest("claims", "-m", "fast", "-k", "B-T-HOLDS").assert_outcomes(passed=1, deselected=5)
    after, payload = records(project)
    assert set(after) == set(full)  # the four records that did not run are still there
    assert len(payload["runs"]) == 2 and all(r["commit"] is None for r in payload["runs"])  # not a git checkout
    held = after[("B-T-HOLDS", None, "fast")]["run_id"]
    assert held == payload["runs"][-1]["id"] and after[("B-T-REFUTED", None, "fast")]["run_id"] == payload["runs"][0]["id"]
    html = (project.path / "reports" / "claims.html").read_text(encoding="utf-8")
    assert html.count("from an earlier run") == 4
    project.runpytest("claims", "-m", "fast", "-k", "B-T-HOLDS", "--fresh-report")
    assert set(records(project)[0]) == {("B-T-HOLDS", None, "fast")}


def test_an_unreadable_report_is_set_aside_with_a_warning(project):
    (project.path / "reports").mkdir()
    (project.path / "reports" / "claims.json").write_bytes(b"\x00\x01 not json")
    result = project.runpytest("claims", "-m", "fast")
    result.assert_outcomes(passed=3, xfailed=2)
    result.stdout.fnmatch_lines(["WARNING claims report: *not valid JSON*moved it to *claims.json.unreadable*"])
    assert (project.path / "reports" / "claims.json.unreadable").read_bytes() == b"\x00\x01 not json"
    assert len(records(project)[0]) == 5


@pytest.mark.parametrize("value", ["abc", "0", "-1"])
def test_a_bad_thread_count_is_one_usage_error(project, monkeypatch, value):
    monkeypatch.setenv("BNCLAIMS_THREADS", value)
    result = project.runpytest_subprocess("claims")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*BNCLAIMS_THREADS must be a positive integer, got '{value}' (unset it for the default of 1)*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


SMOKE_CLAIMS = """
paper: bjorck2018
section: "§9 Smoke"
tiers: {fast: stand-in, slow: reduced, paper: paper}
shared:
  fast: {steps: 10, n: 1}
  slow: {steps: 1000, n: 2}
  paper: {steps: 100000, n: 3}
smoke:
  shared: {steps: 2}
  claims: {value: 0}
claims:
  - id: B-T-SMOKE
    source: "§9.5"
    statement: "A claim whose slow and paper runs are long."
    paper_value: "1"
    threshold: "≥ 1"
    seed_exempt: "exact"
    profiles: {fast: {value: 2, only_fast: 1}, slow: {value: 3}, paper: {value: 4}}
    deviations: {fast: "scratch", slow: "scratch"}
  - id: B-T-SMOKE-BOOM
    source: "§9.6"
    statement: "A claim whose slow code path is broken."
    paper_value: "1"
    threshold: "≥ 1"
    seed_exempt: "exact"
    profiles: {slow: {value: 1, boom: true}}
    deviations: {slow: "scratch"}
"""

SMOKE_TEST = """
import pytest

@pytest.fixture(scope="session")
def family(claims_registry, profile):
    return claims_registry.family_settings("smoke", profile)

@pytest.mark.claim("B-T-SMOKE")
def test_smoke(verdict, settings, family):
    verdict.measure(steps=family["steps"], n=family["n"], value=settings["value"])
    verdict.conclude(holds=settings["value"] >= 1, summary=f"value {settings['value']}")

@pytest.mark.claim("B-T-SMOKE-BOOM")
def test_boom(verdict, settings):
    if settings["boom"]:
        raise RuntimeError("the slow path is broken")
    verdict.conclude(holds=True, summary="fine")
"""


@pytest.fixture
def smoky(pytester):
    return scratch_project(pytester, {"smoke.yaml": SMOKE_CLAIMS, "test_smoke.py": SMOKE_TEST,
                                      "expected_verdicts.yaml": "- {claim: B-T-SMOKE, profiles: [slow], verdict: refuted, "
                                                                "cause: finding, measured: '0', reason: 'never applies to smoke'}\n"})


def test_smoke_runs_every_slow_and_paper_case_at_its_smoke_settings_and_only_errors_fail(smoky):
    result = smoky.runpytest("claims", "--smoke")
    # fast is deselected; the smoked value 0 refutes the claim, which passes (never a verdict, no
    # xfail from the expected-verdicts file); the broken slow path fails
    result.assert_outcomes(passed=2, failed=1, deselected=1)
    result.stdout.fnmatch_lines(["*SMOKE run*", "tier smoke: 1 error, 2 refuted", "smoke run: 3 slow/paper claim case(s)*"])
    assert not (smoky.path / "reports" / "claims.json").exists()  # the verdicts' report is untouched
    recs, _ = records(smoky, "smoke/claims.json")
    assert {k: (r["verdict"], r["tier"], r["smoke"], r["as_expected"]) for k, r in recs.items()} == {
        ("B-T-SMOKE", None, "slow"): ("refuted", "smoke", True, None),
        ("B-T-SMOKE", None, "paper"): ("refuted", "smoke", True, None),
        ("B-T-SMOKE-BOOM", None, "slow"): ("error", "smoke", True, None),
    }
    # the smoke settings replace the slow / paper ones; the rest stays as the profile has it
    assert recs[("B-T-SMOKE", None, "paper")]["measured"] == {"steps": 2, "n": 3, "value": 0}
    assert "the slow path is broken" in recs[("B-T-SMOKE-BOOM", None, "slow")]["error"]
    assert recs[("B-T-SMOKE", None, "slow")]["deviation"].startswith("--smoke: ran at the claims file's smoke settings")
    html = (smoky.path / "reports" / "smoke" / "claims.html").read_text(encoding="utf-8")
    assert "3 smoke record(s)" in html and "No verdict here bears directly on the papers" in html
    assert "smoke: code path only, not a verdict" in html and "expected: holds" not in html and "Every verdict matches" not in html
    # -m picks among slow and paper
    smoky.runpytest("claims", "--smoke", "-m", "paper").assert_outcomes(passed=1, deselected=3)


def test_without_smoke_the_same_project_runs_its_real_settings(smoky):
    smoky.runpytest("claims", "-m", "paper").assert_outcomes(passed=1, deselected=3)
    recs, _ = records(smoky)
    rec = recs[("B-T-SMOKE", None, "paper")]
    assert (rec["measured"], rec["tier"], rec["smoke"]) == ({"steps": 100000, "n": 3, "value": 4}, "paper", False)


@pytest.mark.parametrize("smoke, message", [
    ("smoke: {claims: {valu: 0}}", "field 'smoke': claims: unknown settings key 'valu'"),
    ("smoke: {shared: {n: 1}, claims: {boom: false}, slow: {}}", "field 'smoke': must map 'shared' and/or 'claims'"),
    ("smoke: {shared: {value: 0}}", "field 'smoke': shared: unknown settings key 'value' (ScratchShared has: dataset, n, steps)"),
    ("smoke: {claims: {value: zero}}", "field 'smoke': claims: 'value' must be int, got 'zero'"),
    ("smoke: {claims: {only_fast: 0}}", "field 'smoke': claims: 'only_fast' replaces no slow or paper setting"),
])
def test_bad_smoke_settings_stop_the_run_naming_the_key(smoky, smoke, message):
    path = smoky.path / "claims" / "smoke.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("smoke:\n  shared: {steps: 2}\n  claims: {value: 0}\n", smoke + "\n"), encoding="utf-8")
    result = smoky.runpytest("claims", "-m", "fast")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_smoke_needs_smoke_settings_for_every_slow_claim(smoky):
    path = smoky.path / "claims" / "smoke.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("smoke:\n  shared: {steps: 2}\n  claims: {value: 0}\n", ""),
                    encoding="utf-8")
    smoky.runpytest("claims", "-m", "fast").assert_outcomes(passed=1, deselected=3)  # only --smoke needs them
    result = smoky.runpytest("claims", "--smoke")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--smoke: *smoke.yaml declare(s) no 'smoke' settings*"])


def test_plan_records_no_verdict_and_an_error_still_fails(project):
    result = project.runpytest("claims", "--plan", "--plan-tflops", "1")
    result.assert_outcomes(passed=5)  # the refutations are not verdicts here (no xfail either)
    result.stdout.fnmatch_lines(["*plan (nothing was trained)*", "plan: 0 run(s): 0 stored, 0 to make",
                                 "plan: every selected claim case has declared all its runs"])
    assert not (project.path / "reports" / "claims.json").exists()
    plan = json.loads((project.path / "reports" / "plan.json").read_text(encoding="utf-8"))
    assert (plan["rate_source"], plan["flops_per_s"], plan["runs"]) == ("--plan-tflops", 1e12, [])
    tests = project.path / "claims" / "test_scratch.py"
    tests.write_text(tests.read_text(encoding="utf-8").replace('verdict.measure(value=settings["value"])',
                                                               'verdict.measure(value=settings["missing"])'), encoding="utf-8")
    project.runpytest("claims", "--plan", "--plan-tflops", "1").assert_outcomes(passed=3, failed=2)


SEQUENTIAL_CLAIMS = SEEDED_CLAIMS.replace('tiers: {fast: stand-in}', 'tiers: {fast: stand-in}\nlooks: {fast: [3, 6]}')

SEQUENTIAL_TEST = """
import pytest
from harness.claimkit.evidence import Condition

# seeds 0-2 straddle the threshold; seeds 0-5 clear it
RATIOS = {0: 30.0, 1: 300.0, 2: 100.0, 3: 60.0, 4: 200.0, 5: 90.0}
LOOKS = []

@pytest.mark.claim("B-T-SEEDED")
def test_seeded(verdict):
    LOOKS.append(list(verdict.seeds))
    verdict.decide(Condition.at_least("ratio", [RATIOS[s] for s in verdict.seeds], 10, log=True))
"""


def test_an_undecided_claim_runs_again_on_the_next_looks_seeds(pytester):
    project = scratch_project(pytester, {"seeded.yaml": SEQUENTIAL_CLAIMS, "test_seeded.py": SEQUENTIAL_TEST})
    project.runpytest("claims", "-m", "fast").assert_outcomes(passed=1)
    (rec,) = records(project)[0].values()
    assert rec["verdict"] == "holds" and rec["seeds"] == [0, 1, 2, 3, 4, 5]
    assert rec["seed_plan"] == {"used": 6, "cap": 6, "looks": [3, 6], "stop": "decided",
                                "history": [{"seeds": 3, "verdict": "inconclusive", "undecided": ["ratio"]},
                                            {"seeds": 6, "verdict": "holds", "undecided": []}]}
    assert rec["measured"]["evidence"]["ratio"]["n"] == 6  # only the last look's measurements are kept
    # --seed-cap 3: the first look only, at the whole error rate; undecided there
    result = project.runpytest("claims", "-m", "fast", "--seed-cap", "3", "--report-dir", str(project.path / "capped"))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*at most 3 seeds per claim (--seed-cap)*"])
    rec = json.loads((project.path / "capped" / "claims.json").read_text())["records"][0]
    assert rec["verdict"] == "inconclusive" and rec["seed_plan"]["cap"] == 3 and rec["seed_plan"]["stop"] == "cap reached"
    for bad in ("2", "x"):
        result = project.runpytest("claims", "-m", "fast", "--seed-cap", bad)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"*--seed-cap: expected a whole number of seeds ≥ 3, got '{bad}'*"])


def test_the_recorded_verdict_for_another_reason_fails(seeded):
    """An expected entry's ``why`` says what kept the claim from holding: the same verdict reached
    for another reason (another condition, a failed precondition, a run not judged) fails."""
    entry = INCONCLUSIVE_ENTRY.replace("reason: \"one seed far below\"}", "reason: \"one seed far below\", why: [\"undecided at the seed cap\"]}")
    expect(seeded, entry)
    result = seeded.runpytest("claims", "-m", "fast", "--seed-offset", "1")
    result.assert_outcomes(xfailed=1)
    (rec,) = records(seeded)[0].values()
    assert rec["why"] == ["undecided at the seed cap"]
    expect(seeded, entry.replace('why: ["undecided at the seed cap"]', 'why: ["precondition failed: none_learns"]'))
    result = seeded.runpytest("claims", "-m", "fast", "--seed-offset", "1")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*B-T-SEEDED is inconclusive at profile 'fast' as recorded, but for another reason: recorded why "
                                 "?'precondition failed: none_learns'?, now ?'undecided at the seed cap'?*"])
    expect(seeded, entry.replace('why: ["undecided at the seed cap"]', "why: []"))
    result = seeded.runpytest("claims", "-m", "fast")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*field 'why': must be a non-empty list of reasons*"])
