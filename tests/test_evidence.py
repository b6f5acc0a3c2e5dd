"""Seed-level decisions (harness.claimkit.evidence) against hand-computed intervals."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.stats

from harness.claimkit.evidence import ALPHA, Condition, Design, decide, mean_interval


def test_mean_interval_is_the_student_t_interval():
    values = [1.0, 2.0, 4.0]
    mean, low, high = mean_interval(values)
    # reference by hand: t(0.975, 2) · s / √3
    half = scipy.stats.t.ppf(0.975, 2) * np.std(values, ddof=1) / math.sqrt(3)
    assert (mean, low, high) == pytest.approx((7 / 3, 7 / 3 - half, 7 / 3 + half))
    assert mean_interval([5.0]) == (5.0, 5.0, 5.0)
    with pytest.raises(ValueError, match="non-empty"):
        mean_interval([])
    with pytest.raises(ValueError, match="finite"):
        mean_interval([1.0, float("nan")])


@pytest.mark.parametrize("values, state", [
    ([20.0, 30.0, 25.0], "holds"),         # every seed far above 10
    ([2.0, 3.0, 2.5], "refuted"),          # every seed far below
    ([2.0, 30.0, 25.0], "inconclusive"),   # the interval straddles 10
], ids=["above", "below", "straddles"])
def test_numeric_condition_states(values, state):
    assert Condition.at_least("ratio", values, 10, log=True).state() == state


def test_log_condition_uses_the_geometric_mean():
    c = Condition.at_least("ratio", [10.0, 1000.0], 1, log=True)
    assert c.interval()[0] == pytest.approx(100.0)
    assert "geometric mean of 2 seeds" in c.describe()


def test_yes_no_condition_decides_by_the_share_of_seeds():
    # three seeds never decide a yes/no outcome: (½)³ = ⅛ is far above the error rate
    assert Condition.most_seeds("grows", [True, True, True]).state() == "inconclusive"
    assert Condition.most_seeds("grows", [True] * 6).state() == "holds"         # (½)⁶ = 1/64 ≤ 2.5%
    assert Condition.most_seeds("grows", [False] * 6).state() == "refuted"
    assert Condition.most_seeds("grows", [True] * 5 + [False]).state() == "inconclusive"
    looks = Design((3, 6, 10))
    assert Condition.most_seeds("grows", [True] * 9 + [False]).state(looks) == "holds"
    assert Condition.most_seeds("grows", [True] * 8 + [False] * 2).state(looks) == "inconclusive"
    assert Condition.most_seeds("grows", [True, False, True]).describe() == "grows: 2/3 seeds (no count of 3 decides)"
    assert Condition.most_seeds("grows", [True] * 6).describe() == "grows: 6/6 seeds (decides at 6 of 6)"


def test_an_exact_check_is_one_yes_no():
    assert Condition.exact("identity to 1e-8", True).state() == "holds"
    assert Condition.exact("identity to 1e-8", False).state() == "refuted"
    assert Condition.exact("identity to 1e-8", True).describe() == "identity to 1e-8: yes"
    with pytest.raises(ValueError, match="an exact check is one measurement"):
        Condition("a", (True, True), kind="exact")


def test_decide_combines_conditions():
    up = Condition.at_least("a", [5.0, 6.0, 5.5], 1)
    down = Condition.at_most("b", [5.0, 6.0, 5.5], 1)
    mixed = Condition.most_seeds("c", [True, False, True])
    assert decide(up).verdict == "holds"
    assert decide(up, down).verdict == "refuted"        # one clearly failed condition refutes
    assert decide(up, mixed).verdict == "inconclusive"  # none failed, one undecided
    assert decide(down, mixed).verdict == "refuted"


def test_values_without_spread_decide_by_the_share_of_seeds():
    """Identical values on every seed come from a capped or discrete measure: a t-interval of zero
    width would claim a certainty it does not have, so the seeds count as yes/no outcomes."""
    assert Condition.at_most("share", [0.0, 0.0, 0.0], 0.05).state() == "inconclusive"  # 3 of 3 decides nothing
    assert Condition.at_most("share", [0.0] * 6, 0.05).state() == "holds"
    assert Condition.at_least("ratio", [1.0] * 6, 10, log=True).state() == "refuted"  # BN made the identity
    assert Condition.at_least("share", [1.0, 0.9, 1.0], 0.5).state() == "holds"
    assert Condition.at_least("one value", [1.0], 0.5).state() == "holds"  # a single (exempt) measurement is compared as it is
    assert Condition.at_most("share", [0.0] * 3, 0.05).lean(Design((3, 6, 10)))["side"] == "holds"


# --- looks and the error they spend -------------------------------------------------------------

def test_the_design_spends_half_the_error_at_the_first_look():
    assert Design((3,)).spend() == (ALPHA,)
    assert Design((3, 6, 10)).spend() == pytest.approx((0.025, 0.0125, 0.0125))
    assert sum(Design((3, 6, 10, 15, 20)).spend()) == pytest.approx(ALPHA)
    assert Design((3, 6, 10)).next_look(6) == 10 and Design((3, 6, 10)).next_look(10) is None
    for bad in ((), (3, 3), (6, 3), (0, 3)):
        with pytest.raises(ValueError, match="strictly increasing seed counts"):
            Design(bad)
    with pytest.raises(ValueError, match="decisions are made at \\[3, 6, 10\\] seeds only"):
        Design((3, 6, 10)).alpha_at(4)


def test_an_interval_at_a_later_look_spends_its_share():
    values = [1.0, 2.0, 4.0]
    looks = Design((3, 6, 10))
    c = Condition.at_least("x", values, 0.0)
    _, low, high = c.interval(looks)
    half = scipy.stats.t.ppf(1 - 0.025 / 2, 2) * np.std(values, ddof=1) / math.sqrt(3)
    assert (low, high) == pytest.approx((7 / 3 - half, 7 / 3 + half))
    assert c.confidence(looks) == pytest.approx(0.975)
    assert "97.5% [" in c.describe(looks)


def _sign_test_reference(looks, spend):
    """Boundaries by brute force: every sequence of yes/no outcomes up to the cap, each with
    probability (½)^cap, and at each look the smallest count that keeps the probability of having
    crossed by then within half the error spent by then."""
    cap = looks[-1]
    paths = list(itertools.product((0, 1), repeat=cap))
    bounds, budget = [], 0.0
    for k, (n, a) in enumerate(zip(looks, spend)):
        budget += a / 2
        chosen = None
        for c in range(n // 2 + 1, n + 1):
            trial = bounds + [c]
            crossed = sum(any(b is not None and sum(p[:m]) >= b for m, b in zip(looks, trial)) for p in paths) / len(paths)
            if crossed <= budget * (1 + 1e-12):
                chosen = c
                break
        bounds.append(chosen)
    return tuple(bounds)


@pytest.mark.parametrize("looks", [(3, 6, 10), (3, 5, 7, 10), (4, 8, 12)], ids=str)
def test_sign_boundaries_match_a_brute_force_count(looks):
    design = Design(looks)
    assert design.sign_boundaries() == _sign_test_reference(looks, design.spend())


def test_an_undecided_condition_says_which_way_it_leans():
    against = Condition.at_most("cos excess", [0.20, 0.12, 0.11], 0.1)  # every seed above the margin
    lean = against.lean(Design((3, 6, 10)))
    assert lean["side"] == "refuted" and lean["all_seeds"] is True and lean["seeds_to_decide"] > 3
    assert Condition.at_most("x", [0.01, 0.02, 0.03], 0.1).lean() is None  # decided: nothing to lean
    mixed = Condition.at_least("x", [1.0, -0.5, 0.3], 0.0).lean()
    assert mixed["side"] == "holds" and mixed["all_seeds"] is False
    flags = Condition.most_seeds("event", [False, False, False]).lean(Design((3, 6, 10)))
    assert flags == {"side": "refuted", "all_seeds": True, "seeds_to_decide": 8}  # (½)⁸ ≤ 0.0125 / 2
    decision = decide(against, design=Design((3, 6, 10)))
    assert decision.lean().startswith("'cos excess' leans refuted (every seed on that side; ≈ ")


def test_bad_conditions_say_what_is_wrong():
    with pytest.raises(ValueError, match="no seed-level values"):
        Condition.at_least("a", [], 1)
    with pytest.raises(ValueError, match="log-scale condition needs positive values"):
        Condition.at_least("a", [0.0, 1.0], 1, log=True)
    with pytest.raises(ValueError, match="unknown operator"):
        Condition("a", (1.0,), 1.0, "=>")
    with pytest.raises(ValueError, match="yes/no condition takes booleans"):
        Condition("a", (1.0,), kind="share")
    with pytest.raises(ValueError, match="seed-level values must be numbers"):
        Condition("a", (1.0, "x"), 0.0, ">=")
    with pytest.raises(ValueError, match="seed-level values must be finite"):  # a diverged seed: the claim test concludes first
        Condition.at_least("a", [1.0, float("nan")], 0).state()
    with pytest.raises(ValueError, match="distinct"):
        decide(Condition.at_least("a", [1.0], 0), Condition.at_least("a", [1.0], 0))
    with pytest.raises(ValueError, match="at least one condition"):
        decide()
