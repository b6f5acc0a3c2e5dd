"""Statistics helpers against hand-computed cases."""

import numpy as np
import pytest

from harness.stats import before_convergence, fitted_slope, strictly_decreasing, strictly_increasing


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
    """Walk the checkpoints one by one and stop at the first where some run is within ``within`` of its end."""
    n = 0
    while n < min(map(len, runs)) and all(run[n] > (1 + within) * final for run, final in zip(runs, finals)):
        n += 1
    return max(n, 1)


@pytest.mark.parametrize("runs, finals, expected", [
    ([[100, 50, 20, 10, 10.5]], [10], 3),  # within 10% of 10 from the fourth checkpoint on
    ([[100, 50, 20, 10], [8, 1.05, 1.0, 1.0]], [10, 1.0], 1),  # the second run converges at checkpoint 1
    ([[100, 90, 80]], [1.0], 3),  # still training at the end: every checkpoint
    ([[1.0, 1.0]], [1.0], 1),  # converged from the start: the start alone
])
def test_before_convergence_matches_a_walk_over_the_checkpoints(runs, finals, expected):
    assert before_convergence(runs, finals, 0.1) == expected == _reference_window(runs, finals, 0.1)


def test_before_convergence_rejects_bad_input():
    with pytest.raises(ValueError, match="one final loss per run"):
        before_convergence([[1.0]], [1.0, 2.0], 0.1)
    with pytest.raises(ValueError, match="positive fraction"):
        before_convergence([[1.0]], [1.0], 0)
    with pytest.raises(ValueError, match="finite final loss"):
        before_convergence([[1.0]], [float("nan")], 0.1)
