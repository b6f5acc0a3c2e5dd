"""Verdict recorder: plain-data measurements, figures, conclude."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.claimkit.evidence import Condition, SeedPlan
from harness.claimkit.registry import Claim
from harness.claimkit.verdicts import ClaimInconclusive, ClaimRefuted, Preconditions, Verdict, to_plain

CLAIM = Claim("B-X-1", "bjorck2018", "§1", "§1", "s", "p", "t", {"fast": {}}, {}, None, "x.yaml",
              tiers={"fast": "paper"}, seed_exempt="exact")
SEEDED = Claim("B-X-2", "bjorck2018", "§1", "§1", "s", "p", "t", {"fast": {}}, {"fast": "stand-in"}, None, "x.yaml",
               tiers={"fast": "stand-in"})


def test_to_plain_converts_arrays_tensors_and_non_finite():
    assert to_plain(np.float32(1.5)) == 1.5
    assert to_plain(np.arange(3)) == [0, 1, 2]
    assert to_plain(torch.tensor([1.0, 2.0])) == [1.0, 2.0]
    assert to_plain({1: float("inf")}) == {"1": "inf"}
    assert to_plain((1, "a", None, True)) == [1, "a", None, True]
    with pytest.raises(TypeError, match="cannot record a measurement of type object"):
        to_plain(object())


def test_conclude_records_and_raises_when_refuted():
    v = Verdict(CLAIM, "fast", None, {})
    with pytest.raises(ClaimRefuted, match="B-X-1 refuted at profile 'fast': too small"):
        v.conclude(False, "too small")
    assert v.verdict == "refuted" and v.summary == "too small"
    with pytest.raises(RuntimeError, match="conclude\\(\\) called twice"):
        v.conclude(True, "again")


def test_figures_must_be_svg():
    v = Verdict(CLAIM, "fast", None, {})
    with pytest.raises(ValueError, match="not an SVG document"):
        v.add_figure("f", "<png>")
    v.add_figure("f", "<svg></svg>")
    assert v.figures == [{"title": "f", "svg": "<svg></svg>"}]


def test_a_stochastic_claim_with_fewer_than_three_seeds_is_inconclusive():
    v = Verdict(SEEDED, "fast", None, {}, seeds=[0])
    with pytest.raises(ClaimInconclusive, match=r"1 seed\(s\), needs ≥ 3: would be holds"):
        v.conclude(True, "ratio 12")
    assert (v.verdict, v.tentative) == ("inconclusive", "holds")
    v = Verdict(SEEDED, "fast", None, {}, seeds=[0, 1, 2])
    v.conclude(True, "ratio 12")
    assert (v.verdict, v.tentative) == ("holds", None)


def test_decide_records_the_evidence_and_raises_by_verdict():
    v = Verdict(SEEDED, "fast", None, {}, seeds=[0, 1, 2])
    v.decide(Condition.at_least("ratio", [20, 30, 25], 10, log=True))
    assert v.verdict == "holds" and v.measured["evidence"]["ratio"]["state"] == "holds"
    v = Verdict(SEEDED, "fast", None, {}, seeds=[0, 1, 2])
    with pytest.raises(ClaimInconclusive, match="inconclusive at profile 'fast'"):
        v.decide(Condition.at_least("ratio", [2, 30, 25], 10, log=True), summary="layer 55")
    assert v.summary.startswith("layer 55; ratio")
    v = Verdict(SEEDED, "fast", None, {}, seeds=[0, 1, 2])
    with pytest.raises(ClaimRefuted):
        v.decide(Condition.at_least("increase", [-2.0, -3.0, -2.5], 0))
    with pytest.raises(ValueError, match="unknown verdict 'maybe'"):
        Verdict(CLAIM, "fast", None, {}).conclude("maybe", "x")


REQUIRING = Claim("B-X-3", "bjorck2018", "§1", "§1", "s", "p", "t", {"fast": {}}, {"fast": "stand-in"}, None, "x.yaml",
                  tiers={"fast": "stand-in"}, preconditions={"none_learns": "the unnormalized net learns at some LR"})


def test_an_unmet_precondition_makes_any_verdict_inconclusive():
    v = Verdict(REQUIRING, "fast", None, {}, seeds=[0, 1, 2])
    v.check_precondition("none_learns", False, "at chance at every LR, 3/3 seeds")
    with pytest.raises(ClaimInconclusive, match=r"precondition failed: the unnormalized net learns at some LR \(at chance .*\); would be refuted"):
        v.conclude(False, "BN 0.9 vs 0.1")
    assert (v.verdict, v.tentative) == ("inconclusive", "refuted")
    assert v.measured["preconditions"]["none_learns"]["met"] is False
    v = Verdict(REQUIRING, "fast", None, {}, seeds=[0, 1, 2])
    v.check_precondition("none_learns", True, "learns at 0.01")
    v.conclude(True, "BN 0.9 vs 0.5")
    assert v.verdict == "holds"


def test_a_precondition_must_be_declared_and_every_declared_one_checked():
    v = Verdict(REQUIRING, "fast", None, {}, seeds=[0, 1, 2])
    with pytest.raises(ValueError, match=r"precondition 'bn_learns' is not in the claim's 'requires' \(declared: none_learns\)"):
        v.check_precondition("bn_learns", True, "")
    with pytest.raises(RuntimeError, match=r"concluded without checking its precondition\(s\) \['none_learns'\]"):
        v.conclude(True, "x")


def test_a_seed_without_a_finite_value_makes_the_claim_inconclusive():
    v = Verdict(SEEDED, "fast", None, {}, seeds=[0, 1, 2])
    assert v.finite("acc gap", [0.1, 0.2, 0.3]) == [0.1, 0.2, 0.3]
    with pytest.raises(ClaimInconclusive, match=r"acc gap: no finite value on seed\(s\) \[1\]"):
        v.finite("acc gap", [0.1, float("nan"), 0.3])
    assert v.verdict == "inconclusive"


def test_finite_refuses_a_value_list_that_does_not_match_the_seeds():
    with pytest.raises(ValueError, match=r"B-X-2: gap has 2 values for the seeds \[0, 1, 2\]"):
        Verdict(SEEDED, "fast", None, {}, seeds=[0, 1, 2]).finite("gap", [0.1, 0.2])


def test_tables_are_data_and_malformed_ones_are_refused():
    v = Verdict(CLAIM, "fast", None, {})
    v.add_table("Max LR", ["paper", "ours"], {"BN": [0.1, "0.1, 0.1"], "none <b>": ["1e-4", "0.01"]})
    assert v.figures == [{"title": "Max LR", "table": {"columns": ["paper", "ours"],
                                                       "rows": [["BN", "0.1", "0.1, 0.1"], ["none <b>", "1e-4", "0.01"]]}}]
    with pytest.raises(ValueError, match="rows of 2 cells each, got {'BN': 1}"):
        v.add_table("t", ["a", "b"], {"BN": [1]})
    with pytest.raises(ValueError, match="needs columns and rows"):
        v.add_table("t", ["a"], {})


# --- sequential seeds ---------------------------------------------------------------------------

def _plan(looks=(3, 6, 10)) -> SeedPlan:
    return SeedPlan.extend([0, 1, 2], looks)


def _run(verdict: Verdict, values) -> None:
    """Run a claim whose seed ``s`` measures ``values[s]``, as the plugin runs it (``Verdict.run``)."""
    def body():
        verdict.decide(Condition.at_least("ratio", [values[s] for s in verdict.seeds], 10, log=True))
    try:
        verdict.run(body)
    except (ClaimRefuted, ClaimInconclusive):
        pass


def test_a_claim_adds_seeds_only_while_undecided():
    decided = Verdict(SEEDED, "fast", None, {}, plan=_plan())
    _run(decided, {s: 1000.0 * (1 + 0.1 * s) for s in range(10)})
    assert decided.verdict == "holds" and decided.seeds == [0, 1, 2] and decided.stop == "decided"
    assert decided.seed_record() == {"used": 3, "cap": 10, "looks": [3, 6, 10], "stop": "decided",
                                     "history": [{"seeds": 3, "verdict": "holds", "undecided": []}]}
    straddles = Verdict(SEEDED, "fast", None, {}, plan=_plan())
    _run(straddles, {s: 10.0 * 3 ** ((-1) ** s) for s in range(10)})
    assert straddles.verdict == "inconclusive" and straddles.seeds == list(range(10)) and straddles.stop == "cap reached"
    assert [look["seeds"] for look in straddles.looks] == [3, 6, 10]
    assert "Leans:" in straddles.summary or straddles.measured["evidence"]["ratio"]["state"] == "inconclusive"
    later = Verdict(SEEDED, "fast", None, {}, plan=_plan())
    _run(later, {0: 30.0, 1: 300.0, 2: 100.0, 3: 60.0, 4: 200.0, 5: 90.0})  # wide at 3 seeds, clear at 6
    assert (later.verdict, len(later.seeds), later.stop) == ("holds", 6, "decided")


def test_a_look_starts_afresh_but_keeps_the_looks_before():
    v = Verdict(SEEDED, "fast", None, {}, plan=_plan())
    calls = []

    def body():
        calls.append(list(v.seeds))
        assert not v.measured and not v.figures and not v.notes  # nothing of the look before
        v.measure(n=len(v.seeds))
        v.note("a note")
        v.decide(Condition.at_least("ratio", [10.0 * 3 ** ((-1) ** s) for s in v.seeds], 10, log=True))

    with pytest.raises(ClaimInconclusive):
        v.run(body)
    assert calls == [[0, 1, 2], [0, 1, 2, 3, 4, 5], list(range(10))] and v.notes == ["a note"] and v.measured["n"] == 10


def test_the_seeds_of_a_look_come_from_the_plan():
    v = Verdict(SEEDED, "fast", None, {}, plan=SeedPlan.extend([1000, 1001, 1002], (3, 6)))
    assert v.seeds == [1000, 1001, 1002] and v.plan.sequence[3:] == (1003, 1004, 1005)
    v.seeds = [0, 1, 2]  # a test that still sets its seeds from the settings
    with pytest.raises(RuntimeError, match="its seeds come from its seed plan"):
        v.decide(Condition.at_least("ratio", [20, 30, 25], 10, log=True))
    v = Verdict(SEEDED, "fast", None, {}, plan=_plan())
    with pytest.raises(ValueError, match="every seed-level condition needs one value per seed"):
        v.decide(Condition.at_least("ratio", [20, 30], 10, log=True))
    with pytest.raises(ValueError, match="the first look takes 3 seeds, but the profile lists 2"):
        SeedPlan.extend([0, 1], (3, 6))


def test_a_failed_precondition_stops_the_looks():
    v = Verdict(REQUIRING, "fast", None, {}, plan=_plan())

    def body():
        v.check_precondition("none_learns", False, "at chance at every LR")
        v.stop_unless_preconditions_met()  # a claim about to make runs of its own stops here
        raise AssertionError("not reached")

    with pytest.raises(ClaimInconclusive, match="precondition failed: .* not measured at this profile"):
        v.run(body)
    assert (v.stop, v.seeds, v.tentative) == ("precondition failed", [0, 1, 2], None)
    v = Verdict(REQUIRING, "fast", None, {}, plan=_plan())

    def measured_anyway():
        v.check_precondition("none_learns", False, "at chance at every LR")
        v.decide(Condition.at_least("ratio", [10.0 * 3 ** ((-1) ** s) for s in v.seeds], 10, log=True))

    with pytest.raises(ClaimInconclusive, match="precondition failed"):
        v.run(measured_anyway)
    assert v.seeds == [0, 1, 2] and v.stop == "precondition failed"  # more seeds cannot help a lab that cannot show it


def test_an_inconclusive_claim_says_which_way_its_evidence_leans():
    v = Verdict(SEEDED, "fast", None, {}, plan=SeedPlan.extend([0, 1, 2], (3,)))
    with pytest.raises(ClaimInconclusive, match="Leans: 'cos excess' leans refuted \\(every seed on that side; ≈ \\d+ seeds"):
        v.decide(Condition.at_most("cos excess", [0.20, 0.12, 0.11], 0.1))
    assert v.measured["lean"].startswith("'cos excess' leans refuted")
    assert v.measured["evidence"]["cos excess"]["lean"]["all_seeds"] is True


def test_a_precondition_not_known_yet_does_not_stop_a_planning_claim():
    """Under --plan the lab's runs may not be stored yet: the claim still declares its own runs."""
    v = Verdict(REQUIRING, "fast", None, {}, plan=_plan())
    Preconditions({"none_learns": False}, {"none_learns": "not known: searches not stored"}, known=False).check(v)
    v.stop_unless_preconditions_met()  # does not stop
    assert v.verdict is None and v.preconditions["none_learns"]["known"] is False
    with pytest.raises(ClaimInconclusive, match="precondition failed"):  # and still never decides on it
        v.decide(Condition.at_least("ratio", [100.0, 120.0, 90.0], 10, log=True))


def test_why_names_what_kept_a_claim_from_holding():
    """``why`` is what the expected-verdicts file checks beside the verdict: the conditions that
    refuted, a failed precondition, a run that cannot be judged, or an undecided cap."""
    v = Verdict(SEEDED, "fast", None, {}, seeds=[0, 1, 2])
    v.decide(Condition.at_least("ratio", [20, 30, 25], 10, log=True))
    assert v.why() == []
    v = Verdict(SEEDED, "fast", None, {}, seeds=[0, 1, 2])
    with pytest.raises(ClaimRefuted):
        v.decide(Condition.at_least("increase", [-2.0, -3.0, -2.5], 0), Condition.at_least("ratio", [20, 30, 25], 10, log=True))
    assert v.why() == ["increase: refuted"]
    straddles = Verdict(SEEDED, "fast", None, {}, plan=_plan())
    _run(straddles, {s: 10.0 * 3 ** ((-1) ** s) for s in range(10)})
    assert straddles.why() == ["undecided at the seed cap"]
    v = Verdict(SEEDED, "fast", None, {}, seeds=[0, 1, 2])
    with pytest.raises(ClaimInconclusive):
        v.finite("acc gap", [0.1, float("nan"), 0.3])
    assert v.why() == ["cannot be judged"]
    v = Verdict(REQUIRING, "fast", None, {}, seeds=[0, 1, 2])
    v.check_precondition("none_learns", False, "at chance at every LR")
    with pytest.raises(ClaimInconclusive):
        v.conclude(False, "BN 0.9 vs 0.1")
    assert v.why() == ["precondition failed: none_learns"]
