"""Statistics helpers against hand-computed cases."""

import numpy as np
import pytest

from harness.stats import fitted_slope, strictly_decreasing, strictly_increasing


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
