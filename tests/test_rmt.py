"""Random-matrix probes against independent references (Fuss–Catalan moments, explicit SVDs)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from harness.probes import rmt


@pytest.mark.parametrize("M", [1, 2, 3, 5, 8])
def test_eq5_is_a_density_with_fuss_catalan_moments(M):
    law = rmt.FussCatalan(M)
    assert law.mass == pytest.approx(1.0, abs=1e-6)
    assert law.moment(1) == pytest.approx(1.0, rel=1e-4)  # mean of σ² is 1 for entry variance 1/N
    assert law.moment(2) == pytest.approx(M + 1, rel=1e-4)  # Fuss–Catalan number FC_M(2) = M + 1
    assert law.upper == pytest.approx((M + 1) ** (M + 1) / M**M)
    assert law.cdf(0.0) == 0.0 and law.cdf(law.upper) == pytest.approx(1.0, abs=1e-12)
    assert np.all(np.diff(law.cdf(np.linspace(0, law.upper, 1000))) >= 0)


def test_eq5_for_one_factor_is_marchenko_pastur():
    x = np.linspace(0.05, 3.95, 50)
    assert np.allclose(rmt.FussCatalan(1).pdf(x), np.sqrt((4 - x) / x) / (2 * np.pi), rtol=1e-5)


def test_product_spectra_match_an_explicit_product():
    spectra = rmt.product_spectra(N=40, factors=[1, 3], seed=7)
    rng = np.random.default_rng(7)
    X = [rmt.random_factor(rng, 40) for _ in range(3)]
    for M, P in ((1, X[0]), (3, X[0] @ X[1] @ X[2])):
        assert np.allclose(spectra[M].singular_values, np.linalg.svd(P, compute_uv=False))
        assert spectra[M].kappa == pytest.approx(np.linalg.cond(P), rel=1e-6)  # well conditioned here


def test_entry_distributions_have_variance_one_over_n():
    rng = np.random.default_rng(0)
    for dist in rmt.ENTRY_DISTRIBUTIONS:
        X = rmt.random_factor(rng, 400, dist, variance=2.0)
        assert X.var() * 400 == pytest.approx(2.0, rel=0.02)


def test_ks_distance_matches_scipy():
    samples = np.random.default_rng(0).uniform(size=500)
    assert rmt.ks_distance(samples, scipy.stats.uniform.cdf) == pytest.approx(scipy.stats.kstest(samples, "uniform").statistic)


def test_tail_ratio():
    assert rmt.tail_ratio(np.arange(1, 101)) == pytest.approx(np.quantile(np.arange(1, 101), 0.99) / 50.5)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: rmt.edge(0), "positive integer"),
        (lambda: rmt.product_spectra(10, [], 0), "at least one"),
        (lambda: rmt.product_spectra(10, [0], 0), "positive integer"),
        (lambda: rmt.random_factor(np.random.default_rng(), 0), "positive"),
        (lambda: rmt.random_factor(np.random.default_rng(), 5, "cauchy"), "unknown entry distribution 'cauchy'"),
        (lambda: rmt.random_factor(np.random.default_rng(), 5, variance=-1), "variance must be positive"),
        (lambda: rmt.tail_ratio(np.ones(3), q=0.3), "quantile"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_cached_product_spectra_are_bit_identical(tmp_path, monkeypatch):
    from fixtures.rmt import product_runs
    from harness.cache import ModelCache

    fresh = product_runs(30, [1, 3], runs=2, seed=5, distribution="uniform")
    cold = product_runs(30, [1, 3], runs=2, seed=5, distribution="uniform", cache=ModelCache(tmp_path))
    monkeypatch.setattr("fixtures.rmt.product_spectra", lambda *a: pytest.fail("cached spectra were recomputed"))
    warm = product_runs(30, [1, 3], runs=2, seed=5, distribution="uniform", cache=ModelCache(tmp_path))
    for runs in (cold, warm):
        for M in (1, 3):
            assert np.array_equal(runs.singular_values(M), fresh.singular_values(M))
            assert np.array_equal(runs.per_run(M, "kappa"), fresh.per_run(M, "kappa"))


def test_spectra_without_kappa_have_the_same_singular_values():
    full = rmt.product_spectra(N=30, factors=[1, 2, 4], seed=3)
    light = rmt.product_spectra(N=30, factors=[1, 2, 4], seed=3, kappa=False)
    for M in (1, 2, 4):
        assert np.array_equal(light[M].singular_values, full[M].singular_values)
        assert light[M].kappa is None


def test_kappa_not_computed_is_a_clear_error(tmp_path):
    from fixtures.rmt import product_runs
    from harness.cache import ModelCache

    for cache in (None, ModelCache(tmp_path), ModelCache(tmp_path)):  # fresh, cold and warm
        runs = product_runs(20, [1, 2], runs=2, seed=1, cache=cache, kappa=False)
        assert runs.per_run(2, "sigma_max").shape == (2,)
        with pytest.raises(ValueError, match="kappa was not computed"):
            runs.per_run(2, "kappa")
