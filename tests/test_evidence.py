"""Seed-level decisions (harness.evidence) against hand-computed intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from harness.evidence import Condition, decide, mean_interval


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


def test_yes_no_condition_is_unanimity():
    assert Condition.every_seed("grows", [True, True, True]).state() == "holds"
    assert Condition.every_seed("grows", [False, False, False]).state() == "refuted"
    assert Condition.every_seed("grows", [True, False, True]).state() == "inconclusive"
    assert Condition.every_seed("grows", [True, False, True]).describe() == "grows: 2/3 seeds"


def test_decide_combines_conditions():
    up = Condition.at_least("a", [5.0, 6.0, 5.5], 1)
    down = Condition.at_most("b", [5.0, 6.0, 5.5], 1)
    mixed = Condition.every_seed("c", [True, False, True])
    assert decide(up).verdict == "holds"
    assert decide(up, down).verdict == "refuted"        # one clearly failed condition refutes
    assert decide(up, mixed).verdict == "inconclusive"  # none failed, one undecided
    assert decide(down, mixed).verdict == "refuted"


def test_bad_conditions_say_what_is_wrong():
    with pytest.raises(ValueError, match="no seed-level values"):
        Condition.at_least("a", [], 1)
    with pytest.raises(ValueError, match="log-scale condition needs positive values"):
        Condition.at_least("a", [0.0, 1.0], 1, log=True)
    with pytest.raises(ValueError, match="unknown operator"):
        Condition("a", (1.0,), 1.0, "=>")
    with pytest.raises(ValueError, match="yes/no condition takes booleans"):
        Condition("a", (1.0,))
    with pytest.raises(ValueError, match="distinct"):
        decide(Condition.at_least("a", [1.0], 0), Condition.at_least("a", [1.0], 0))
    with pytest.raises(ValueError, match="at least one condition"):
        decide()
