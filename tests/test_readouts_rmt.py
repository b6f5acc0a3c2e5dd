"""The RMT readouts (harness.readouts.rmt) decide on hand-made spectra, κ and errors.

Every claim of the family is seed-exempt: each readout turns its checks into single yes/no flags,
so it holds or is refuted and is never inconclusive (there is no seed interval to straddle). Each
readout gets measurements that hold, ones that break each check in turn (refuted), the values at
the threshold itself (the comparisons are inclusive or strict as the claim reads them), and bad
input. The thresholds are the claims' own, loaded from claims/bjorck2018_rmt.yaml. No claim of the
family credits BN over no BN, so there is no BN-made-identity case.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.claimkit.evidence import HOLDS, REFUTED
from harness.readouts import rmt as ro
from harness.claimkit.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = Registry.load(ROOT / "claims").claims
FACTORS = [1, 2, 4, 8]


def thresholds(claim):
    return CLAIMS[claim].thresholds


def edge(M):
    return (M + 1) ** (M + 1) / M**M


def single_flags(readout):
    """Seed-exempt: every condition is one yes/no flag, so the verdict is holds or refuted."""
    assert all(c.op is None and len(c.values) == 1 for c in readout.conditions)
    assert readout.verdict in (HOLDS, REFUTED)
    return readout.verdict


def failed(readout):
    """The checks that fail (their flag is false)."""
    return [c.name for c in readout.conditions if c.state() == REFUTED]


# --- B-RMT-DENSITY ------------------------------------------------------------------------------

def test_density():
    t = thresholds("B-RMT-DENSITY")
    limit = t["max_ks"]
    good = ro.density({1: 0.001, 2: 0.002, 4: 0.002, 8: 0.002}, t)
    assert single_flags(good) == HOLDS
    assert good.values == {"ks_by_factors": {1: 0.001, 2: 0.002, 4: 0.002, 8: 0.002}}
    assert good.summary == f"max KS over M = 0.002 (limit {limit}); M=1: 0.001, M=2: 0.002, M=4: 0.002, M=8: 0.002"
    assert single_flags(ro.density({1: 0.186, 2: 0.183, 4: 0.206, 8: 0.224}, t)) == REFUTED  # the singular reading
    assert single_flags(ro.density({1: 0.001, 8: limit * 1.01}, t)) == REFUTED  # one M off is enough
    assert single_flags(ro.density({1: 0.001, 8: limit}, t)) == HOLDS  # ≤ the limit
    with pytest.raises(ValueError, match="KS distances"):
        ro.density({}, t)


# --- B-RMT-EDGE ---------------------------------------------------------------------------------

def test_edge():
    t = thresholds("B-RMT-EDGE")
    assert not t  # it compares the measured gaps with each other only
    gaps = {M: {250: 0.02 * M, 500: 0.015 * M, 1000: 0.01 * M} for M in FACTORS}
    good = ro.edge(gaps, t)
    assert single_flags(good) == HOLDS
    assert good.values == {"relative_gap": gaps}
    assert good.summary.startswith("M=1: gap 0.020 (N=250) → 0.010 (N=1000); M=2: gap 0.040 (N=250)")
    away = {**gaps, 8: {250: 0.05, 500: 0.06, 1000: 0.07}}  # M = 8 moves away from the edge
    assert single_flags(ro.edge(away, t)) == REFUTED
    still = {**gaps, 4: {250: 0.05, 500: 0.01, 1000: 0.05}}  # no closer at the largest N: strict
    assert single_flags(ro.edge(still, t)) == REFUTED
    with pytest.raises(ValueError, match="same two or more sizes"):
        ro.edge({1: {250: 0.1, 1000: 0.05}, 2: {500: 0.1, 1000: 0.05}}, t)
    with pytest.raises(ValueError, match="same two or more sizes"):
        ro.edge({1: {1000: 0.05}}, t)
    with pytest.raises(ValueError, match="relative gaps"):
        ro.edge({}, t)


# --- B-RMT-KAPPA --------------------------------------------------------------------------------

def log_kappa(slope, runs=5, seed=0, offset=3.0):
    """log10 κ of ``runs`` products per M: ``offset + slope·(M − 1)`` with a little scatter."""
    r = np.random.default_rng(seed)
    return {M: offset + slope * (M - 1) + 0.05 * r.standard_normal(runs) for M in FACTORS}


def test_kappa():
    t = thresholds("B-RMT-KAPPA")
    good = ro.kappa(log_kappa(1.5), t)
    assert single_flags(good) == HOLDS
    assert list(good.values) == ["mean_log10_kappa", "std_log10_kappa"]
    assert list(good.values["mean_log10_kappa"]) == FACTORS
    assert good.summary.startswith("κ(M=1) = ") and good.summary.endswith("strictly increasing: True")
    assert single_flags(ro.kappa(log_kappa(0.0), t)) == REFUTED  # no growth: the products stay conditioned
    wobbly = {**log_kappa(1.5), 4: np.full(5, 20.0)}  # grows a lot, but not monotonically
    assert single_flags(ro.kappa(wobbly, t)) == REFUTED
    assert failed(ro.kappa(wobbly, t)) == ["mean log10 κ strictly increasing in M"]
    # strictly increasing but κ grows less than min_growth over the range (here one decade short)
    short = np.log10(t["min_growth"]) - 1
    mild = {M: np.full(3, short * i / 3) for i, M in enumerate(FACTORS)}
    assert single_flags(ro.kappa(mild, t)) == REFUTED
    assert failed(ro.kappa(mild, t)) == [f"κ grows ≥ {t['min_growth']}× over M"]
    exact = {1: np.zeros(3), 8: np.full(3, float(np.log10(t["min_growth"])))}  # κ grows by exactly min_growth: ≥
    assert single_flags(ro.kappa(exact, t)) == HOLDS
    with pytest.raises(ValueError, match="at least 2"):
        ro.kappa({1: [3.0, 3.1]}, t)
    with pytest.raises(ValueError, match="M=2"):
        ro.kappa({1: [3.0, 3.1], 2: []}, t)


# --- B-RMT-SMAX ---------------------------------------------------------------------------------

def test_sigma_max():
    t = thresholds("B-RMT-SMAX")
    edges = {M: edge(M) for M in FACTORS}
    sqrt_edge = {M: np.sqrt(edges[M]) * np.array([0.98, 0.99, 1.0]) for M in FACTORS}  # Eq. 5 read as σ²
    good = ro.sigma_max(sqrt_edge, edges, t)
    assert single_flags(good) == HOLDS
    assert set(good.values) == {"mean_sigma_max", "edge", "sigma_max_over_sqrt_edge", "slope_vs_edge"}
    assert good.values["slope_vs_edge"] == pytest.approx(0.5)  # √edge grows at half the edge's log–log rate
    assert np.allclose(list(good.values["sigma_max_over_sqrt_edge"].values()), 0.99)
    assert good.summary.startswith("σ_max 1.980 (M=1) → ") and "edge(M=8) = 23.1" in good.summary
    linear = {M: np.full(3, edges[M] * 0.2 * (1 + 0.01 * M)) for M in FACTORS}  # far below the edge, but as fast: fails
    assert failed(ro.sigma_max(linear, edges, t)) == ["σ_max grows more slowly than edge(M): log–log slope 1.038 < 1"]
    flat = {M: np.full(3, 2.0) for M in FACTORS}  # below the edge, but not growing
    assert failed(ro.sigma_max(flat, edges, t)) == ["mean σ_max strictly increasing in M"]


# --- B-RMT-TAILS --------------------------------------------------------------------------------

def test_tails():
    t = thresholds("B-RMT-TAILS")
    ratio = {1: 2.37, 2: 4.27, 4: 11.26, 8: 58.58}
    kurt = {1: 0.1, 2: 1.0, 4: 5.0, 8: 30.0}
    good = ro.tails(ratio, kurt, t)
    assert single_flags(good) == HOLDS
    assert good.values == {"q99_over_median": ratio, "excess_kurtosis": kurt}
    assert good.summary == "q99/median: M=1: 2.37, M=2: 4.27, M=4: 11.26, M=8: 58.58"
    assert single_flags(ro.tails({M: 2.37 for M in FACTORS}, kurt, t)) == REFUTED  # tails as light at every M
    assert single_flags(ro.tails({**ratio, 8: 11.26}, kurt, t)) == REFUTED  # strict
    with pytest.raises(ValueError, match="same M"):
        ro.tails(ratio, {1: 0.1}, t)


# --- B-RMT-UNIV ---------------------------------------------------------------------------------

def by_distribution(slopes, runs=6):
    return {d: log_kappa(s, runs=runs, seed=i) for i, (d, s) in enumerate(slopes.items())}


def test_universality():
    t = thresholds("B-RMT-UNIV")
    r = np.random.default_rng(5)
    xavier = {M: 10 ** (3 + 1.5 * M + r.standard_normal(3)) for M in FACTORS}
    same = {M: k * (1 + 1e-13) for M, k in xavier.items()}  # κ is scale invariant: rounding only
    rates = {"gaussian": 1.5, "uniform": 1.6, "rademacher": 1.45}
    good = ro.universality(xavier, same, by_distribution(rates), t)
    assert single_flags(good) == HOLDS
    assert set(good.values) == {"scale_max_relative_kappa_difference", "log10_kappa_slope_per_factor",
                                "relative_rate_difference", "growth", "mean_log10_kappa"}
    assert good.values["relative_rate_difference"]["gaussian"] == 0
    assert good.summary.startswith("Kaiming vs Xavier κ differ by ≤ ") and "; log10 κ per factor: gaussian 1.5" in good.summary
    # the Kaiming scale changes κ: not scale invariant
    scaled = {M: k * (1 + 10 * t["max_scale_difference"]) for M, k in xavier.items()}
    assert single_flags(ro.universality(xavier, scaled, by_distribution(rates), t)) == REFUTED
    assert len(failed(ro.universality(xavier, scaled, by_distribution(rates), t))) == 1
    # one distribution grows at a clearly different rate (beyond max_rate_difference of the Gaussian's)
    off = {**rates, "rademacher": 1.5 * (1 + 2 * t["max_rate_difference"])}
    assert failed(ro.universality(xavier, same, by_distribution(off), t)) == [
        f"growth rate within {t['max_rate_difference']:.0%} of the Gaussian's"]
    # the same rate everywhere, but too slow to grow by min_growth over M = 1..8
    slow = {d: 0.5 * np.log10(t["min_growth"]) / 7 for d in rates}
    assert failed(ro.universality(xavier, same, by_distribution(slow), t)) == [
        f"κ grows ≥ {t['min_growth']}× for every distribution"]
    with pytest.raises(ValueError, match="reference 'gaussian'"):
        ro.universality(xavier, same, by_distribution({"uniform": 1.5, "rademacher": 1.5}), t)
    uneven = by_distribution(rates)
    uneven["uniform"][8] = uneven["uniform"][8][:2]
    with pytest.raises(ValueError, match="same number of runs"):
        ro.universality(xavier, same, uneven, t)
    with pytest.raises(ValueError, match="same M"):
        ro.universality(xavier, {1: same[1]}, by_distribution(rates), t)


# --- B-LIN-PROP1 --------------------------------------------------------------------------------

def test_proposition_1():
    t = thresholds("B-LIN-PROP1")
    tiny = [2.6e-15, 1e-16, 5e-16]
    good = ro.proposition_1(tiny, [3.3e-14, 1e-15, 1e-15], tiny, t)
    assert single_flags(good) == HOLDS
    assert good.values == {"worst_relative_error": {"loss": 2.6e-15, "optimum": 3.3e-14, "gd_trajectory": 2.6e-15}, "problems": 3}
    assert good.summary == ("worst relative errors over 3 problems: loss 2.6e-15, optimum 3.3e-14, GD trajectory 2.6e-15")
    limits = {"max_loss_error": 0, "max_optimum_error": 1, "max_trajectory_error": 2}
    for name, which in limits.items():
        errors = [list(tiny), list(tiny), list(tiny)]
        errors[which][1] = t[name] * 10  # not the same problem: one problem breaks the equivalence
        assert single_flags(ro.proposition_1(*errors, t)) == REFUTED, name
        assert len(failed(ro.proposition_1(*errors, t))) == 1, name
        errors[which][1] = t[name]  # at the tolerance: ≤
        assert single_flags(ro.proposition_1(*errors, t)) == HOLDS, name
    with pytest.raises(ValueError, match="one error of each kind"):
        ro.proposition_1(tiny, tiny[:2], tiny, t)
    with pytest.raises(ValueError, match="one error of each kind"):
        ro.proposition_1([], [], [], t)


# --- B-LIN-KAPPA --------------------------------------------------------------------------------

def test_linear_conditioning():
    t = thresholds("B-LIN-KAPPA")
    depths = [1, 2, 4, 8]
    kappa = {d: [10.0 ** (3 + d / 2) * f for f in (0.5, 1, 2)] for d in depths}
    lr = {d: [0.5 / d * f for f in (0.9, 1, 1.1)] for d in depths}
    its = {k: 10 * k**2 for k in (2, 4, 8, 16, 32)}  # GD steps ∝ κ²
    good = ro.linear_conditioning(kappa, lr, its, t)
    assert single_flags(good) == HOLDS
    assert set(good.values) == {"kappa_by_depth", "max_stable_lr_by_depth", "gd_iterations_by_kappa",
                                "iterations_exponent_in_kappa"}
    assert good.values["kappa_by_depth"][1] == pytest.approx(10**3.5)  # geometric mean over seeds
    assert good.values["max_stable_lr_by_depth"][2] == pytest.approx(0.25)
    assert good.values["iterations_exponent_in_kappa"] == pytest.approx(2.0)
    assert good.summary.endswith("GD steps ∝ κ^2.00")
    same_kappa = {d: kappa[1] for d in depths}  # depth does not worsen the conditioning
    assert failed(ro.linear_conditioning(same_kappa, lr, its, t)) == ["κ strictly increasing with depth"]
    same_lr = {d: lr[1] for d in depths}  # the same usable LR at every depth
    assert failed(ro.linear_conditioning(kappa, same_lr, its, t)) == ["largest stable LR strictly decreasing with depth"]
    no_slower = {k: 100 for k in its}  # GD as fast at every κ
    assert failed(ro.linear_conditioning(kappa, lr, no_slower, t)) == ["GD iterations strictly increasing with κ"]
    with pytest.raises(ValueError, match="same depths"):
        ro.linear_conditioning(kappa, {1: lr[1]}, its, t)
    with pytest.raises(ValueError, match="positive"):
        ro.linear_conditioning(kappa, lr, {**its, 32: 0}, t)
    with pytest.raises(ValueError, match="at least 3"):
        ro.linear_conditioning(kappa, lr, {2: 40, 4: 160}, t)


def test_every_threshold_comes_from_the_yaml():
    """A readout asks for its numbers by name: a claim without them is an error naming the claim."""
    with pytest.raises(KeyError, match="B-RMT-EDGE declares no threshold 'max_ks'"):
        ro.density({1: 0.01}, thresholds("B-RMT-EDGE"))
