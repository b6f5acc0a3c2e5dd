"""The decision rule's error rate, checked on simulated measurements whose truth is known.

Each case draws seed-level values from a distribution whose side of the threshold is known, runs
them through the claims' own decision code — ``Verdict.run`` calling ``Verdict.decide`` look by
look, exactly as the pytest plugin runs a claim — thousands of times, and counts how often the
decided verdict is wrong: ``holds`` when the truth is on the refuted side of the threshold or at it,
``refuted`` when it is on the holding side or at it. The rule promises at most 5% per condition
over all looks together (harness.claimkit.evidence). The power — how often the right verdict is reached by
the cap — is checked at spreads like the ones the claims measure: a landscape ratio a factor 10–100
above its threshold with a seed-to-seed spread of about half a decade is 2–4 standard deviations
away (log scale).

The random draws are seeded: the rates are fixed numbers, not flaky ones. With 4,000 repetitions
a rate's standard error is at most 0.8 points, and the design's rate at the threshold is 4.4%
(numeric) and 4.3% (yes/no).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from harness.claimkit.evidence import ALPHA, HOLDS, INCONCLUSIVE, REFUTED, Condition, Design, SeedPlan
from harness.claimkit.registry import Claim
from harness.claimkit.verdicts import ClaimInconclusive, ClaimRefuted, Verdict

REPS = 4000
FAST = (3, 6, 10)  # the fast profile's looks
SLOW = (3, 6, 10, 15, 20)
CLAIM = Claim("S-SIM-1", "santurkar2018", "§0", "§0", "simulated", "-", "-", {"fast": {}}, {"fast": "simulated"}, None,
              "simulated.yaml", tiers={"fast": "stand-in"})


def run_claim(draw: Callable[[int], object], build: Callable[[object], Condition], looks=FAST) -> tuple[str, int]:
    """One simulated claim: a value per seed from ``draw(seed)``, a condition ``build(values)`` at every
    look, decided by the claims' own code. Returns (verdict, seeds used)."""
    plan = SeedPlan.extend([0, 1, 2], looks)
    verdict = Verdict(CLAIM, "fast", None, {}, plan=plan)
    values = [draw(seed) for seed in plan.sequence]  # the seeds a claim may use, drawn once

    def body():
        verdict.decide(build(values[: len(verdict.seeds)]))

    try:
        verdict.run(body)
    except (ClaimRefuted, ClaimInconclusive):
        pass
    return verdict.verdict, len(verdict.seeds)


def rates(draw_factory, build, looks=FAST, reps=REPS, seed=0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    outcomes = [run_claim(draw_factory(rng), build, looks) for _ in range(reps)]
    verdicts = [v for v, _ in outcomes]
    return {v: verdicts.count(v) / reps for v in (HOLDS, REFUTED, INCONCLUSIVE)} | {
        "seeds": float(np.mean([n for _, n in outcomes]))}


def normal(mean: float, sd: float = 1.0):
    return lambda rng: (lambda seed: float(rng.normal(mean, sd)))


def lognormal(median: float, sd_decades: float):
    return lambda rng: (lambda seed: float(10 ** rng.normal(np.log10(median), sd_decades)))


def bernoulli(p: float):
    return lambda rng: (lambda seed: bool(rng.random() < p))


def at_least_zero(values):
    return Condition.at_least("margin", values, 0.0)


def ratio_at_least_ten(values):
    return Condition.at_least("ratio", values, 10.0, log=True)


def typical_seed(flags):
    return Condition.most_seeds("event", flags)


# --- the error rate: at the threshold every decision is wrong --------------------------------------

@pytest.mark.parametrize("looks", [FAST, SLOW], ids=["fast-looks", "slow-looks"])
def test_numeric_condition_at_its_threshold_decides_at_most_five_percent(looks):
    r = rates(normal(0.0), at_least_zero, looks)
    assert r[HOLDS] + r[REFUTED] <= ALPHA, r
    assert r[HOLDS] <= ALPHA / 2 + 0.008 and r[REFUTED] <= ALPHA / 2 + 0.008, r  # each side about half of it


def test_lognormal_ratios_at_their_threshold_decide_at_most_five_percent():
    r = rates(lognormal(10.0, 0.5), ratio_at_least_ten)  # a factor 10 with half a decade of seed-to-seed spread
    assert r[HOLDS] + r[REFUTED] <= ALPHA, r


@pytest.mark.parametrize("looks", [FAST, SLOW], ids=["fast-looks", "slow-looks"])
def test_yes_no_condition_with_p_one_half_decides_at_most_five_percent(looks):
    r = rates(bernoulli(0.5), typical_seed, looks)
    assert r[HOLDS] + r[REFUTED] <= ALPHA, r


# --- clearly on one side: wrong decisions stay rare, right ones come ----------------------------

@pytest.mark.parametrize("mean, right, wrong", [(3.0, HOLDS, REFUTED), (-3.0, REFUTED, HOLDS)], ids=["above", "below"])
def test_numeric_condition_three_deviations_away_is_decided_right(mean, right, wrong):
    r = rates(normal(mean), at_least_zero)
    assert r[wrong] <= ALPHA / 2 and r[right] >= 0.99, r
    assert r["seeds"] < 5.5, r  # mostly at the first or second look


def test_power_at_the_spreads_the_claims_measure():
    """A ratio ×100 against a threshold of 10 with half a decade of spread (2 standard deviations on
    the log axis) is decided by the cap almost always; ×30 (one deviation) more often than not."""
    strong, moderate = rates(lognormal(100.0, 0.5), ratio_at_least_ten), rates(lognormal(30.0, 0.5), ratio_at_least_ten)
    assert strong[HOLDS] >= 0.99 and strong[REFUTED] <= 0.001, strong
    assert moderate[HOLDS] >= 0.5 and moderate[REFUTED] <= 0.001, moderate


def test_yes_no_condition_with_p_nine_tenths():
    """A yes/no outcome that nine seeds in ten show: never refuted, and held by the cap about three
    times in four (6 of 6, or 9 of 10, must show it); three seeds never decide it."""
    r = rates(bernoulli(0.9), typical_seed)
    assert r[REFUTED] == 0.0 and 0.70 <= r[HOLDS] <= 0.82, r
    assert run_claim(lambda seed: True, typical_seed, (3,))[0] == INCONCLUSIVE  # 3 of 3 is no evidence of "always"


def test_a_claim_uses_more_seeds_only_while_undecided():
    assert run_claim(lambda seed: 5.0 + 0.1 * seed, at_least_zero) == (HOLDS, 3)  # decided at the first look
    assert run_claim(lambda seed: (-1) ** seed * 1.0 + 0.2, at_least_zero)[1] == 10  # straddles: the cap
    assert Design(FAST).sign_boundaries() == (None, 6, 9)
