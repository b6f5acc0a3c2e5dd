"""The DLN readouts (harness.readouts.dln) decide per seed, on hand-made per-checkpoint numbers.

Every readout gets three seeds in three arrangements: every seed as the claim says (holds), no
seed (refuted), and seeds that disagree or straddle the threshold (inconclusive); S-LR-RANGE's
yes/no per seed decides by the share of seeds and gets six. The readouts of claims that credit BN
over the standard net are also fed the standard net's numbers in place of BN's ("BN made the
identity"), which must never hold (ratios of exactly 1 on every seed: no spread, nothing decided). The thresholds are the claims' own, read
from claims/santurkar2018_dln.yaml.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from harness.claimkit.evidence import HOLDS, INCONCLUSIVE, REFUTED
from harness.readouts import dln as ro
from harness.claimkit.registry import Registry, Thresholds

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = Registry.load(ROOT / "claims")


def th(claim: str) -> Thresholds:
    return REGISTRY.claims[claim].thresholds


def series(levels, n=6, wobble=0.02, salt=0):
    """Per seed, ``n`` checkpoint values around ``levels[i]`` (a little noise, positive)."""
    out = []
    for i, level in enumerate(levels):
        r = np.random.default_rng(100 * salt + i)
        out.append(list(level * (1 + wobble * r.standard_normal(n))))
    return out


def test_thresholds_are_the_claims():
    assert th("S-LAND-LOSS")["min_ratio_early"] == 10
    assert th("S-LAND-BETA")["min_share_bn_lower"] == 2 / 3
    assert dict(th("S-LR-RANGE")) == {"loss_over_initial_below": 10, "final_over_initial_below": 0.5}


# --- S-ICS-DLN ------------------------------------------------------------------------------------

def cos_series(levels, layers=7, n=5, salt=0):
    """Per seed, cos(G, G′) at ``n`` checkpoints × ``layers`` layers, around ``levels[i]``."""
    return [list(np.clip(level + 0.01 * np.random.default_rng(10 * salt + i).standard_normal((n, layers)), -1, 1))
            for i, level in enumerate(levels)]


@pytest.mark.parametrize("none, bn, expected", [
    ((0.99, 0.98, 0.99), (0.05, -0.1, 0.02), HOLDS),
    ((0.2, 0.1, 0.3), (0.9, 0.8, 0.95), REFUTED),
    ((0.99, 0.2, 0.98), (0.05, 0.0, 0.1), INCONCLUSIVE),
])
def test_ics(none, bn, expected):
    r = ro.ics(cos_series(none), cos_series(bn, salt=1), [2, 5, 9], th("S-ICS-DLN"))
    assert r.verdict == expected
    assert set(r.values) == {"median_cos", "layers"} and len(r.values["median_cos"]["batch"]) == 3
    assert r.summary == ""


@pytest.mark.parametrize("level", [0.99, 0.5, 0.05])
def test_ics_bn_identity_never_holds(level):
    cos = cos_series((level,) * 3)
    assert ro.ics(cos, cos, [2], th("S-ICS-DLN")).verdict != HOLDS


def test_ics_bad_input():
    with pytest.raises(ValueError, match="same non-zero number of seeds"):
        ro.ics(cos_series((0.9, 0.9)), cos_series((0.1,)), [2], th("S-ICS-DLN"))
    with pytest.raises(ValueError, match="no cos"):
        ro.ics([[]] * 3, cos_series((0.1,) * 3), [2], th("S-ICS-DLN"))


# --- S-LAND-LOSS / S-LAND-GRAD ----------------------------------------------------------------------

@pytest.mark.parametrize("readout, claim", [(ro.loss_range, "S-LAND-LOSS"), (ro.grad_change, "S-LAND-GRAD")])
@pytest.mark.parametrize("factors, expected", [
    ((100, 200, 80), HOLDS),
    ((1, 2, 0.5), REFUTED),
    ((1000, 2, 1.5), INCONCLUSIVE),
])
def test_early_ratio(readout, claim, factors, expected):
    bn = series((1.0, 2.0, 0.5))
    none = [[f * v for v in s] for f, s in zip(factors, bn)]
    r = readout(none, bn, th(claim))
    assert r.verdict == expected
    assert r.values["ratio_early"] == pytest.approx(factors)
    assert r.summary.startswith("over the whole window: ×")


def test_early_ratio_reads_the_first_half_only():
    """The early ratio is over the first ⌈n/2⌉ checkpoints; the whole window is reported."""
    bn = [[1.0] * 5] * 3
    none = [[f, f, f, 1.0, 1.0] for f in (100.0, 120.0, 90.0)]
    r = ro.loss_range(none, bn, th("S-LAND-LOSS"))
    assert r.values["ratio_early"] == pytest.approx([100.0, 120.0, 90.0])
    assert r.values["ratio_window"] == pytest.approx([100 ** 0.6, 120 ** 0.6, 90 ** 0.6])
    assert r.verdict == HOLDS


@pytest.mark.parametrize("readout, claim", [(ro.loss_range, "S-LAND-LOSS"), (ro.grad_change, "S-LAND-GRAD")])
def test_early_ratio_bn_identity_never_holds(readout, claim):
    none = series((5.0, 3.0, 8.0))
    assert readout(none, none, th(claim)).verdict != HOLDS


def test_early_ratio_bad_input():
    with pytest.raises(ValueError, match="same non-empty window"):
        ro.loss_range(series((1, 1, 1), n=4), series((1, 1, 1), n=5), th("S-LAND-LOSS"))
    with pytest.raises(ValueError, match="same non-zero number of seeds"):
        ro.grad_change(series((1, 1)), series((1, 1, 1)), th("S-LAND-GRAD"))
    with pytest.raises(ValueError, match="positive"):
        ro.loss_range([[1.0, 0.0]] * 3, [[1.0, 1.0]] * 3, th("S-LAND-LOSS"))


# --- S-LAND-BETA -----------------------------------------------------------------------------------

def betas(lower_at, n=6):
    """(standard, BN) over ``n`` checkpoints, BN lower at the first ``lower_at[i]`` of seed i (by a
    factor 2, 2.2, 1.8 on seeds 0, 1, 2; higher by the same factor after)."""
    none = [[2.0] * n for _ in lower_at]
    bn = [[2.0 / f] * k + [2.0 * f] * (n - k) for k, f in zip(lower_at, (2.0, 2.2, 1.8))]
    return none, bn


@pytest.mark.parametrize("lower_at, expected", [((6, 6, 6), HOLDS), ((0, 1, 0), REFUTED), ((6, 6, 1), INCONCLUSIVE)])
def test_beta(lower_at, expected):
    r = ro.beta(*betas(lower_at), th("S-LAND-BETA"))
    assert r.verdict == expected
    assert r.values["fraction_of_window_bn_lower"] == pytest.approx([k / 6 for k in lower_at])


def test_beta_reads_the_ratio_that_two_thirds_of_the_window_exceed():
    """Lower at 4 of 6 checkpoints: exactly the share ⅔ is lower, so the ratio that ⅔ of the window
    meets is BN's factor 2 (above 1); at 3 of 6 it is the inverse factor, below 1."""
    edge = ro.beta(*betas((4, 4, 4)), th("S-LAND-BETA"))
    assert edge.verdict == HOLDS
    assert edge.values["ratio_exceeded_by_the_share"] == pytest.approx([2.0, 2.2, 1.8])
    half = ro.beta(*betas((3, 3, 3)), th("S-LAND-BETA"))
    assert half.verdict == REFUTED
    assert half.values["ratio_exceeded_by_the_share"] == pytest.approx([1 / 2.0, 1 / 2.2, 1 / 1.8])


def test_beta_weighs_checkpoints_by_training_time():
    """BN lower at the first 4 of 6 checkpoints, but those are dense (1 step each) and the last two
    stand for 10 steps each: lower for 4/24 of the time, so not consistently lower."""
    none, bn = betas((4, 4, 4))
    w = [[1.0, 1.0, 1.0, 1.0, 10.0, 10.0]] * 3
    r = ro.beta(none, bn, th("S-LAND-BETA"), w)
    assert r.verdict == REFUTED
    assert r.values["fraction_of_window_bn_lower"] == pytest.approx([4 / 24] * 3)
    with pytest.raises(ValueError, match="one weight per checkpoint"):
        ro.beta(none, bn, th("S-LAND-BETA"), [[1.0] * 5] * 3)


def test_window_ratios_with_even_weights_match_the_unweighted_ones():
    none, bn = series((2.0, 3.0, 1.5)), series((1.0, 1.0, 1.0))
    even = [[7.0] * len(a) for a in none]
    for first_half in (False, True):
        assert ro.window_ratios(none, bn, "x", first_half, even) == pytest.approx(ro.window_ratios(none, bn, "x", first_half))


def test_beta_bn_identity_never_holds():
    none = series((2.0, 3.0, 1.0))
    assert ro.beta(none, none, th("S-LAND-BETA")).verdict != HOLDS  # equal is not lower


def test_beta_bad_input():
    with pytest.raises(ValueError, match="same non-empty window"):
        ro.beta([[]] * 3, [[]] * 3, th("S-LAND-BETA"))


# --- S-LAND-RANDOM ---------------------------------------------------------------------------------

@pytest.mark.parametrize("loss, grad, expected", [
    ((3, 5, 4), (10, 20, 8), HOLDS),
    ((0.3, 0.35, 0.4), (10, 20, 8), REFUTED),
    ((3, 5, 4), (50, 0.5, 1.2), INCONCLUSIVE),
])
def test_random_direction(loss, grad, expected):
    bn_loss, bn_grad = series((1.0, 1.0, 1.0)), series((2.0, 2.0, 2.0), salt=1)
    r = ro.random_direction([[f * v for v in s] for f, s in zip(loss, bn_loss)], bn_loss,
                            [[f * v for v in s] for f, s in zip(grad, bn_grad)], bn_grad, th("S-LAND-RANDOM"))
    assert r.verdict == expected
    assert r.values["loss_range_ratio"] == pytest.approx(loss)


def test_random_direction_bn_identity_never_holds():
    loss, grad = series((1.0, 2.0, 3.0)), series((5.0, 4.0, 6.0))
    assert ro.random_direction(loss, loss, grad, grad, th("S-LAND-RANDOM")).verdict != HOLDS


# --- S-LP-PERF ------------------------------------------------------------------------------------

SEED_NOISE = {"none": (1.0, 1.1, 0.9), "batch": (1.0, 0.95, 1.05), "l1": (1.05, 1.0, 0.95), "l2": (0.9, 1.0, 1.1),
              "linf": (1.0, 1.05, 1.0)}  # each net's own seed-to-seed wobble


def finals(l1=1.0, l2=1.0, linf=1.0, none=100.0, batch=1.0):
    """Final losses of three seeds; a number is a per-net factor (times the net's seed wobble), a tuple per seed."""
    given = {"none": none, "batch": batch, "l1": l1, "l2": l2, "linf": linf}
    return {n: list(v) if isinstance(v, tuple) else [v * f for f in SEED_NOISE[n]] for n, v in given.items()}


@pytest.mark.parametrize("final, expected", [
    (finals(l1=0.5, l2=1.5, linf=1.2), HOLDS),
    (finals(l1=0.5, l2=1.5, linf=5.0), REFUTED),  # ℓ∞ not within 2× of BN
    (finals(l1=2.0), REFUTED),  # ℓ1 not better than BN
    (finals(l1=0.5, none=0.1), REFUTED),  # no ℓp beats the standard net
    (finals(l1=(0.5, 0.5, 1.5)), INCONCLUSIVE),  # ℓ1 better than BN on two seeds only
])
def test_lp_perf(final, expected):
    r = ro.lp_perf(final, th("S-LP-PERF"))
    assert r.verdict == expected
    assert [c.name for c in r.conditions] == ["ℓ1/BN final loss", "ℓ2/BN final loss", "ℓ∞/BN final loss", "ℓ1/standard final loss",
                                              "ℓ2/standard final loss", "ℓ∞/standard final loss", "ℓ1/BN final loss (even better)"]


def test_lp_perf_ratios_in_the_tests_order():
    assert list(ro.lp_perf_ratios(finals())) == ["ℓ1/BN final loss", "ℓ2/BN final loss", "ℓ∞/BN final loss",
                                                 "ℓ1/standard final loss", "ℓ2/standard final loss", "ℓ∞/standard final loss"]


def test_lp_perf_bad_input():
    with pytest.raises(ValueError, match="missing"):
        ro.lp_perf({k: v for k, v in finals().items() if k != "linf"}, th("S-LP-PERF"))
    with pytest.raises(ValueError, match="positive and finite"):
        ro.lp_perf(finals(l2=(1.0, math.inf, 1.0)), th("S-LP-PERF"))
    with pytest.raises(ValueError, match="same non-zero number of seeds"):
        ro.lp_perf({**finals(), "l1": [1.0]}, th("S-LP-PERF"))


# --- S-LP-SMOOTH ----------------------------------------------------------------------------------

def smooth(factor):
    """{(ℓp, metric): (standard, ℓp)} with standard = factor(ℓp, metric) × ℓp per seed."""
    out = {}
    for p in ro.LP:
        for m in ("grad_change", "beta"):
            lp = series((1.0, 2.0, 3.0), salt=len(out))
            out[(p, m)] = ([[f * v for v in s] for f, s in zip(factor(p, m), lp)], lp)
    return out


@pytest.mark.parametrize("factor, expected", [
    (lambda p, m: (10, 20, 5), HOLDS),
    (lambda p, m: (0.3, 0.35, 0.4) if (p, m) == ("l2", "beta") else (10, 20, 5), REFUTED),
    (lambda p, m: (100, 0.5, 2) if p == "linf" else (10, 20, 5), INCONCLUSIVE),
])
def test_lp_smooth(factor, expected):
    r = ro.lp_smooth(smooth(factor), th("S-LP-SMOOTH"))
    assert r.verdict == expected
    assert "standard/ℓ2 β" in [c.name for c in r.conditions] and "standard/ℓ∞ gradient change" in [c.name for c in r.conditions]
    assert set(r.values["standard_over_lp"]) == {f"{ro.LABELS[p]} {m}" for p in ro.LP for m in ("grad_change", "beta")}


def test_lp_smooth_no_smoothing_never_holds():
    assert ro.lp_smooth(smooth(lambda p, m: (1, 1, 1)), th("S-LP-SMOOTH")).verdict != HOLDS


def test_lp_smooth_bad_input():
    with pytest.raises(ValueError, match="metrics"):
        ro.lp_smooth({("l1", "loss_range"): (series((1, 1, 1)), series((1, 1, 1)))}, th("S-LP-SMOOTH"))


# --- S-LP-SHIFT -----------------------------------------------------------------------------------

@pytest.mark.parametrize("factors, expected", [
    ({"l1": (3, 4, 5), "l2": (2, 3, 2), "linf": (10, 8, 9)}, HOLDS),
    ({"l1": (3, 4, 5), "l2": (0.2, 0.3, 0.2), "linf": (10, 8, 9)}, REFUTED),
    ({"l1": (3, 4, 5), "l2": (20, 0.5, 1.1), "linf": (10, 8, 9)}, INCONCLUSIVE),
])
def test_lp_shift(factors, expected):
    standard = {p: [0.1, 0.2, 0.15] for p in factors}
    r = ro.lp_shift({p: [f * s for f, s in zip(fs, standard[p])] for p, fs in factors.items()}, standard, 13, th("S-LP-SHIFT"))
    assert r.verdict == expected
    assert list(r.values["mean_shift"]) == ["l1", "none vs l1", "l2", "none vs l2", "linf", "none vs linf"]
    assert r.values["lp_over_standard"]["linf"] == pytest.approx(factors["linf"]) and r.values["layer"] == 13


def test_lp_shift_same_shift_never_holds():
    same = {p: [0.1, 0.2, 0.15] for p in ro.LP}
    assert ro.lp_shift(same, same, 13, th("S-LP-SHIFT")).verdict != HOLDS


def test_lp_shift_bad_input():
    with pytest.raises(ValueError, match="same ℓp nets"):
        ro.lp_shift({"l1": [1.0]}, {"l2": [1.0]}, 13, th("S-LP-SHIFT"))
    with pytest.raises(ValueError, match="one shift per seed"):
        ro.lp_shift({"l1": [1.0, 2.0]}, {"l1": [1.0]}, 13, th("S-LP-SHIFT"))


# --- S-LR-RANGE -----------------------------------------------------------------------------------

LRS = (1e-7, 1e-6, 1e-5, 1e-4, 1e-3)
GOOD, SLOW, BLOWUP, DIVERGED = [1.0, 0.6, 0.2], [1.0, 0.9, 0.8], [1.0, 20.0, 0.1], [1.0, 5.0, math.inf]


def lr_runs(working):
    """A seed's curves: ``working[n]`` LRs where net n works (the lowest ones), the rest diverge."""
    return {n: {lr: GOOD if i < k else DIVERGED for i, lr in enumerate(LRS)} for n, k in working.items()}


def test_works_reads_its_thresholds():
    t = th("S-LR-RANGE")
    assert ro.works(GOOD, t) and not ro.works(SLOW, t) and not ro.works(BLOWUP, t) and not ro.works(DIVERGED, t)
    assert not ro.works([1.0, 0.5], t)  # the final loss must be strictly below half
    assert ro.works([1.0, 9.9, 0.1], t) and not ro.works([1.0, 10.0, 0.1], t)  # and every loss strictly below 10×
    with pytest.raises(ValueError):
        ro.works([], t)


@pytest.mark.parametrize("per_seed, expected", [
    (({"none": 2, "batch": 4}, {"none": 1, "batch": 3}, {"none": 2, "batch": 5}) * 2, HOLDS),
    (({"none": 2, "batch": 2}, {"none": 3, "batch": 1}, {"none": 2, "batch": 2}) * 2, REFUTED),
    (({"none": 2, "batch": 4}, {"none": 2, "batch": 2}, {"none": 2, "batch": 5}) * 2, INCONCLUSIVE),
    (({"none": 2, "batch": 4}, {"none": 1, "batch": 3}, {"none": 2, "batch": 5}), INCONCLUSIVE),  # 3 of 3 decides nothing
])
def test_lr_range(per_seed, expected):
    r = ro.lr_range([lr_runs(w) for w in per_seed], th("S-LR-RANGE"))
    assert r.verdict == expected
    assert [len(w["batch"]) for w in r.values["working_lrs"]] == [w["batch"] for w in per_seed]
    first = per_seed[0]
    assert r.values["final_over_initial_loss_first_seed"]["none"] == [0.2] * first["none"] + [math.inf] * (5 - first["none"])
    assert r.summary.startswith(f"working LRs per seed: standard {first['none']}, BN {first['batch']}")


def test_lr_range_bn_identity_never_holds():
    runs = lr_runs({"none": 3, "batch": 3})
    assert ro.lr_range([runs] * 6, th("S-LR-RANGE")).verdict == REFUTED


def test_lr_range_bad_input():
    with pytest.raises(ValueError, match="'none' and 'batch'"):
        ro.lr_range([{"none": {1e-3: GOOD}}], th("S-LR-RANGE"))
    with pytest.raises(ValueError, match="no seeds"):
        ro.lr_range([], th("S-LR-RANGE"))


# --- S-SIGMA --------------------------------------------------------------------------------------

def ratios(peaks, n=4, units=50):
    """Per seed, γ/σ of ``units`` units at ``n`` checkpoints, the median rising to ``peaks[i]``."""
    out = []
    for i, peak in enumerate(peaks):
        r = np.random.default_rng(i)
        out.append([list(np.exp(r.normal(0, 0.3, units)) / np.exp(np.median(r.normal(0, 0.3, units))) * peak * (k + 1) / n)
                    for k in range(n)])
    return out


@pytest.mark.parametrize("peaks, expected", [((0.3, 0.2, 0.4), HOLDS), ((2.0, 3.0, 2.5), REFUTED), ((0.3, 3.0, 0.5), INCONCLUSIVE)])
def test_sigma(peaks, expected):
    r = ro.sigma(ratios(peaks), th("S-SIGMA"))
    assert r.verdict == expected
    assert len(r.values["median_gamma_over_sigma"]) == 3 and len(r.values["median_gamma_over_sigma"][0]) == 4


def test_sigma_bad_input():
    with pytest.raises(ValueError, match="checkpoint"):
        ro.sigma([[], [[1.0]], [[1.0]]], th("S-SIGMA"))
