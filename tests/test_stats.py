"""Statistics helpers against hand-computed cases."""

import numpy as np
import pytest

from harness.stats import fitted_slope, strictly_decreasing, strictly_increasing, training_window


def test_orderings():
    assert strictly_increasing([1, 2, 3]) and not strictly_increasing([1, 2, 2])
    assert strictly_decreasing([3, 2, 1]) and not strictly_decreasing([3, 3, 1])
    assert strictly_increasing([5])


def test_fitted_slope_interval_has_its_nominal_coverage():
    x = np.arange(20.0)
    fits = [fitted_slope(x, 2.0 * x + 1 + np.random.default_rng(seed).normal(0, 1.0, 20)) for seed in range(400)]
    coverage = np.mean([f["low"] < 2.0 < f["high"] for f in fits])
    assert 0.92 <= coverage <= 0.98  # 95% nominal; binomial sd over 400 draws ≈ 1.1%
    assert np.mean([f["slope"] for f in fits]) == pytest.approx(2.0, abs=0.01)
    with pytest.raises(ValueError, match="at least 3 paired points"):
        fitted_slope([1, 2], [1, 2])


def _reference_window(runs, finals, within):
    """Check every checkpoint on its own: is every run below 90% of its start and above 110% of its end?"""
    inside = [k for k in range(min(map(len, runs)))
              if all(run[k] < (1 - within) * run[0] and run[k] > (1 + within) * final for run, final in zip(runs, finals))]
    return inside


@pytest.mark.parametrize("runs, finals, expected", [
    ([[100, 50, 20, 10, 10.5]], [10], (1, 3)),  # leaves its start at 1, within 10% of 10 from 3 on
    ([[100, 95, 50, 20, 10]], [10], (2, 4)),  # a plateau at the start (95 > 90)
    ([[100, 50, 20, 10], [8, 1.05, 1.0, 1.0]], [10, 1.0], (1, 1)),  # the second run converges at 1: empty
    ([[100, 90, 80]], [1.0], (2, 3)),  # still training at the end
    ([[1.0, 1.0]], [1.0], (2, 0)),  # never leaves its start, converged from the start: empty
])
def test_training_window_matches_a_check_of_every_checkpoint(runs, finals, expected):
    start, end = training_window(runs, finals, 0.1)
    assert (start, end) == expected
    assert list(range(start, end)) == _reference_window(runs, finals, 0.1)


def test_training_window_rejects_bad_input():
    with pytest.raises(ValueError, match="one final loss per run"):
        training_window([[1.0]], [1.0, 2.0], 0.1)
    with pytest.raises(ValueError, match="fraction in"):
        training_window([[1.0]], [1.0], 0)
    with pytest.raises(ValueError, match="finite final loss"):
        training_window([[1.0]], [float("nan")], 0.1)
