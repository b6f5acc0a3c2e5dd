"""A claim test's outcome: the record built from its verdict (shipped to the controlling process),
the expected verdicts' strict xfails checked for their reason, and what --plan makes of a test."""


from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.claimkit.plan import Planned
from harness.claimkit.plugin.session import (CLAIM_KEY, PLAN_PROPERTY, RECORD_PROPERTY, SETUP_TIME_KEY, VERDICT_KEY,
                                             _state, environment)
from harness.claimkit.claims import STAND_IN
from harness.claimkit.registry import SMOKE_TIER, TIERS
from harness.claimkit.verdicts import (ERROR, HOLDS, INCONCLUSIVE, NOT_RUN, REFUTED, ClaimInconclusive, ClaimRefuted, Verdict,
                                       to_plain)


RAISES = {REFUTED: ClaimRefuted, INCONCLUSIVE: ClaimInconclusive}


def _error_text(call: pytest.CallInfo) -> str:
    if call.excinfo is None:
        return ""
    tb = call.excinfo.traceback
    where = f"{Path(str(tb[-1].path)).name}:{tb[-1].lineno + 1}: " if len(tb) else ""
    return where + call.excinfo.exconly()


def pytest_runtest_setup(item: pytest.Item) -> None:
    state = _state(item.config)
    if state.planner is not None and CLAIM_KEY in item.stash:
        state.planner.start_claim(item.callspec.id)


def _planned_stops(config: pytest.Config) -> tuple[type[BaseException], ...]:
    """What a test raises when it stops at runs its suite's store lacks under --plan: the plugin's
    :class:`Planned` and the types the suite declares (``pytest_claimkit_planned_stops``)."""
    return (Planned, *(t for types in config.hook.pytest_claimkit_planned_stops() for t in types))


def _plan_report(item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo) -> pytest.TestReport:
    """Under --plan: ship the runs this test noted; a test stopped for missing runs is skipped (it
    waits for them), a verdict is not recorded (nothing counts as one), an error stays an error."""
    state = _state(item.config)
    waiting = 0
    if call.excinfo is not None and call.excinfo.errisinstance(_planned_stops(item.config)):
        waiting = call.excinfo.value.missing
        report.outcome, report.longrepr = "skipped", (str(item.path), item.location[1] or 0, f"Skipped: {call.excinfo.value}")
    elif call.excinfo is not None and call.excinfo.errisinstance(tuple(RAISES.values())):
        report.outcome, report.longrepr = "passed", None
    runs = state.planner.take()
    if runs or waiting:
        report.user_properties.append((PLAN_PROPERTY, json.dumps({"case": item.callspec.id, "runs": runs,
                                                                   "waiting": waiting})))
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if CLAIM_KEY not in item.stash:
        return report
    if _state(item.config).planning:
        return _plan_report(item, report, call)
    if report.when == "setup":
        item.stash[SETUP_TIME_KEY] = report.duration
        if report.passed:
            return report
    elif report.when != "call":
        return report
    v = item.stash.get(VERDICT_KEY, None)
    if (report.when == "call" and report.failed and _state(item.config).registry.smoke and v is not None
            and v.verdict is not None and call.excinfo is not None and call.excinfo.errisinstance(tuple(RAISES.values()))):
        report.outcome, report.longrepr = "passed", None  # --smoke: any verdict reached is a pass, only errors fail
    if report.when == "call" and report.passed and (v is None or v.verdict is None):
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid}: the claim test ended without calling verdict.conclude()"
    _check_the_reason(item, report, v)
    record = _build_record(item, report, call, v)
    report.user_properties.append((RECORD_PROPERTY, json.dumps(record)))
    return report


def _check_the_reason(item: pytest.Item, report: pytest.TestReport, v: Verdict | None) -> None:
    """A verdict as recorded in the expected-verdicts file, reached for another reason than the
    entry's ``why`` (another failed condition, a precondition, a run that could not be judged), is
    not the recorded result: the test fails, saying what changed."""
    state = _state(item.config)
    claim, profile, case = item.stash[CLAIM_KEY]
    expected = None if state.registry.smoke else state.registry.expected_for(claim.id, case, profile)
    if expected is None or expected.why is None or v is None or v.verdict != expected.verdict or not hasattr(report, "wasxfail"):
        return
    why = v.why()
    if why != list(expected.why):
        del report.wasxfail
        report.outcome = "failed"
        report.longrepr = (f"{claim.id} is {v.verdict} at profile '{profile}' as recorded, but for another reason: "
                           f"recorded why {list(expected.why)}, now {why}. {v.summary}")


def _build_record(item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo, v: Verdict | None) -> dict:
    state = _state(item.config)
    claim, profile, case = item.stash[CLAIM_KEY]
    error = None
    if report.skipped and not hasattr(report, "wasxfail"):
        verdict_value = NOT_RUN
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        summary = reason.removeprefix("Skipped: ")
    elif v is not None and v.verdict is not None:
        verdict_value, summary = v.verdict, v.summary
    else:
        verdict_value, summary = ERROR, None
        error = _error_text(call) or str(report.longrepr)
    smoke = state.registry.smoke
    expected = None if smoke else state.registry.expected_for(claim.id, case, profile)
    expected_verdict = expected.verdict if expected else HOLDS
    tier = SMOKE_TIER if smoke else claim.tier(profile)
    if v is not None and v.stands_in_for and tier != SMOKE_TIER and TIERS.index(STAND_IN) > TIERS.index(tier):
        tier = STAND_IN  # the profile asked for the paper's data, and the data source says it stood in
        v.note(f"{v.dataset} stood in for {v.stands_in_for}, so this run counts as a stand-in.")
    setup_time = item.stash.get(SETUP_TIME_KEY, 0.0)
    deviation = claim.deviations.get(profile)
    if smoke:
        deviation = ("--smoke: ran at the claims file's smoke settings (tiny budgets, the same code), not the profile's"
                     + (f"; the profile itself departs from the paper: {deviation}" if deviation else ""))
    return {
        "nodeid": item.nodeid,
        "claim_id": claim.id,
        "case": case,
        "paper": claim.paper,
        "section": claim.section,
        "source": claim.source,
        "statement": claim.statement,
        "paper_value": claim.paper_value,
        "threshold": claim.threshold,
        "thresholds": claim.thresholds.as_record(),
        "figure": claim.figure,
        "deviation": deviation,
        "profile": profile,
        "tier": tier,
        "smoke": smoke,
        "seed_exempt": claim.seed_exempt,
        "seed_offset": state.registry.seed_offset,
        "settings": to_plain(v.settings if v else state.registry.settings(claim, profile)),
        "settings_hash": state.registry.settings_hash(claim, profile),
        "order": list(state.registry.claims).index(claim.id),  # the catalogue's (the papers') order
        "verdict": verdict_value,
        "tentative": v.tentative if v else None,
        "why": v.why() if v else [],
        "summary": summary,
        "expected": expected_verdict,
        "cause": expected.cause if expected else None,
        "expected_reason": expected.reason if expected else None,
        "expected_measured": expected.measured if expected else None,
        "as_expected": None if verdict_value == NOT_RUN or smoke else verdict_value == expected_verdict,
        "measured": v.measured if v else {},
        "figures": v.figures if v else [],
        "notes": v.notes if v else [],
        "dataset": v.dataset if v else "–",
        "seeds": v.seeds if v else [],
        "seed_plan": v.seed_record() if v else None,
        **environment(item.config),
        "wall_time_s": setup_time + (report.duration if report.when == "call" else 0.0),
        "error": error,
    }
