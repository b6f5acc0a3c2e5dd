"""The VGG readouts (harness.readouts.vgg) decide on hand-made per-seed statistics.

Each readout gets three seeds of measurements that hold, that are refuted, and that straddle the
threshold or on which the seeds disagree (inconclusive), with the thresholds the claims use
(claims/santurkar2018_vgg.yaml); a yes/no outcome per seed decides by the share of seeds and gets
six seeds where it must decide. A readout of a claim that credits BN (or noisy BN, or an ℓp
normalization) over the standard net is also fed the standard net's numbers in place of the
normalized net's ("BN made the identity"), which must never hold: the same numbers give ratios of
exactly 1 (or differences of 0) on every seed, no spread, so nothing is decided. Bad input is a
clear error.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.claimkit.evidence import HOLDS, INCONCLUSIVE, REFUTED
from harness.lr_search import CHANCE
from harness.readouts import vgg as ro
from harness.claimkit.registry import Registry, Thresholds

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = Registry.load(ROOT / "claims")


def own(claim_id: str) -> Thresholds:
    """The thresholds of a claim whose main entry is the VGG family's."""
    return REGISTRY.claims[claim_id].thresholds


def half(claim_id: str) -> Thresholds:
    """The thresholds of a claim's VGG half (``case: vgg``)."""
    return REGISTRY.cases[(claim_id, "vgg")].thresholds


class Recorder:
    """A ``finite`` hook that records what it was asked and stops, like ``verdict.finite`` does."""

    def __init__(self):
        self.asked = []

    def __call__(self, name, values):
        values = [float(v) for v in values]
        if not all(map(math.isfinite, values)):
            self.asked.append((name, values))
            raise RuntimeError(f"stopped at {name}")
        return values


def test_every_vgg_claim_declares_its_thresholds():
    claims = [c for f in REGISTRY.files if Path(f.path).name == "santurkar2018_vgg.yaml" for c in f.claims]
    assert len(claims) == 14
    assert not [c.id for c in claims if not c.thresholds]


def test_a_missing_threshold_names_the_claim():
    with pytest.raises(KeyError, match="S-PERF.*test_accuracy_gain_above"):
        ro.performance({"none": [1, 1, 1], "batch": [0.5, 0.5, 0.5]}, {"none": [0.8] * 3, "batch": [0.9] * 3},
                       Thresholds({"loss_ratio_above": 1}, "S-PERF"))


# --- S-PERF -------------------------------------------------------------------------------------

NONE_LOSS, NONE_TEST = [1.0, 1.1, 0.9], [0.80, 0.82, 0.78]


def perf(batch_loss, batch_test):
    """S-PERF's readout with the standard net's numbers above and BN's given."""
    return ro.performance({"none": NONE_LOSS, "batch": batch_loss}, {"none": NONE_TEST, "batch": batch_test}, own("S-PERF"))


def test_performance_holds_when_bn_trains_lower_and_tests_higher():
    r = perf([0.1, 0.12, 0.09], [0.88, 0.9, 0.87])
    assert r.verdict == HOLDS
    assert r.values == {"final_training_loss": {"none": NONE_LOSS, "batch": [0.1, 0.12, 0.09]},
                        "test_accuracy": {"none": NONE_TEST, "batch": [0.88, 0.9, 0.87]}}
    assert r.summary == ""


def test_performance_bn_as_identity_never_holds():
    assert perf(NONE_LOSS, NONE_TEST).verdict == INCONCLUSIVE  # ratios of 1, differences of 0: no spread


def test_performance_worse_bn_is_refuted():
    assert perf([2.0, 2.1, 1.9], [0.5, 0.52, 0.49]).verdict == REFUTED


def test_performance_inconclusive_when_seeds_disagree_or_straddle():
    # loss ratio straddling 1 (lower on two seeds of three); test accuracy gain straddling 0
    r = perf([0.1, 1.2, 0.8], [0.85, 0.78, 0.80])
    assert r.verdict == INCONCLUSIVE
    assert [c.state() for c in r.conditions] == [INCONCLUSIVE, INCONCLUSIVE]


def test_performance_a_diverged_run_has_no_ratio():
    """The preconditions keep a diverged net out (it does not learn); a ratio with one is no number."""
    with pytest.raises(ValueError, match="positive values"):
        perf([math.inf] * 3, [0.9] * 3)


def test_performance_bad_input():
    with pytest.raises(ValueError, match="no values for batch"):
        ro.performance({"none": NONE_LOSS}, {"none": NONE_TEST, "batch": NONE_TEST}, own("S-PERF"))
    with pytest.raises(ValueError, match="same, non-zero number of seeds"):
        ro.performance({"none": NONE_LOSS, "batch": [0.1, 0.1]}, {"none": NONE_TEST, "batch": NONE_TEST}, own("S-PERF"))


# --- S-DIST -------------------------------------------------------------------------------------

def test_distribution_change_holds_within_the_band():
    t = own("S-DIST")
    r = ro.distribution_change({"none": [1.0, 1.3, 0.8], "batch": [1.0, 1.0, 1.0]}, t)
    assert r.verdict == HOLDS
    assert [c.name for c in r.conditions] == ["step change standard/BN", f"step change standard/BN (≤ {t['ratio_band'][1]:g})"]
    assert r.values == {"ratio_standard_over_bn": [1.0, 1.3, 0.8]}


def test_distribution_change_bn_as_identity_holds():
    """The claim is that BN changes distributional stability only marginally: about no change holds."""
    assert ro.distribution_change({"none": [1.0, 2.0, 3.0], "batch": [1.05, 1.9, 3.1]}, own("S-DIST")).verdict == HOLDS


@pytest.mark.parametrize("factor", [10.0, 0.1])
def test_distribution_change_refuted_outside_the_band(factor):
    r = ro.distribution_change({"none": [factor * v for v in (1.0, 1.1, 0.9)], "batch": [1.0, 1.0, 1.0]}, own("S-DIST"))
    assert r.verdict == REFUTED


def test_distribution_change_inconclusive_when_straddling_the_band():
    r = ro.distribution_change({"none": [1.5, 3.0, 2.2], "batch": [1.0, 1.0, 1.0]}, own("S-DIST"))
    assert r.verdict == INCONCLUSIVE


def test_distribution_change_non_finite_ratio():
    with pytest.raises(ValueError, match=r"step change standard/BN: no finite value for the seed\(s\) at position\(s\) \[1\]"):
        ro.distribution_change({"none": [1.0, 1.0, 1.0], "batch": [1.0, 0.0, 1.0]}, own("S-DIST"))
    hook = Recorder()
    with pytest.raises(RuntimeError):
        ro.distribution_change({"none": [1.0, math.nan, 1.0], "batch": [1.0, 1.0, 1.0]}, own("S-DIST"), finite=hook)
    assert hook.asked[0][0] == "step change standard/BN"


# --- S-NOISY-MATCH ------------------------------------------------------------------------------

def noisy(noisy_acc, batch=(0.95, 0.96, 0.94), none=(0.5, 0.55, 0.45)):
    """S-NOISY-MATCH's readout on final training accuracies."""
    return ro.noisy_match({"none": list(none), "batch": list(batch), "noisy_batch": list(noisy_acc)}, own("S-NOISY-MATCH"))


def test_noisy_match_holds():
    r = noisy([0.94, 0.95, 0.94])
    assert r.verdict == HOLDS
    assert [c.name for c in r.conditions] == ["|noisy BN − BN| training accuracy", "BN − standard", "noisy BN − standard"]


def test_noisy_match_bn_and_noisy_bn_as_identity_never_hold():
    acc = [0.5, 0.55, 0.45]
    assert noisy(acc, batch=acc, none=acc).verdict != HOLDS


def test_noisy_match_refuted_when_noise_costs_accuracy():
    r = noisy([0.7, 0.72, 0.69])
    assert r.verdict == REFUTED
    assert r.conditions[0].state() == REFUTED


def test_noisy_match_inconclusive_when_the_gap_straddles():
    r = noisy([0.94, 0.91, 0.91])
    assert r.verdict == INCONCLUSIVE


def test_noisy_match_bad_input():
    with pytest.raises(ValueError, match="noisy_batch"):
        ro.noisy_match({"none": [0.5] * 3, "batch": [0.9] * 3}, own("S-NOISY-MATCH"))
    with pytest.raises(ValueError, match="no finite value"):
        ro.noisy_match({"none": [0.5] * 3, "batch": [0.9] * 3, "noisy_batch": [0.9, math.nan, 0.9]}, own("S-NOISY-MATCH"))


# --- S-NOISY-UNSTABLE ---------------------------------------------------------------------------

def test_noisy_unstable_holds():
    assert ro.noisy_unstable({"none": [1.0, 1.1, 0.9], "noisy_batch": [5.0, 6.0, 4.5]}, own("S-NOISY-UNSTABLE")).verdict == HOLDS


def test_noisy_bn_as_the_standard_net_never_holds():
    same = [1.0, 1.1, 0.9]
    assert ro.noisy_unstable({"none": same, "noisy_batch": same}, own("S-NOISY-UNSTABLE")).verdict != HOLDS
    assert ro.noisy_unstable({"none": same, "noisy_batch": [1.05, 1.2, 0.95]}, own("S-NOISY-UNSTABLE")).verdict == REFUTED


def test_noisy_unstable_inconclusive():
    r = ro.noisy_unstable({"none": [1.0, 1.0, 1.0], "noisy_batch": [1.2, 4.0, 2.0]}, own("S-NOISY-UNSTABLE"))
    assert r.verdict == INCONCLUSIVE
    assert r.values == {"ratio_noisy_over_standard": [1.2, 4.0, 2.0]}


def test_noisy_unstable_non_finite():
    hook = Recorder()
    with pytest.raises(RuntimeError):
        ro.noisy_unstable({"none": [1.0, 0.0, 1.0], "noisy_batch": [2.0, 2.0, 2.0]}, own("S-NOISY-UNSTABLE"), finite=hook)
    assert hook.asked == [("step change noisy BN/standard", [2.0, math.inf, 2.0])]


# --- S-NOISE-STD --------------------------------------------------------------------------------

def test_noise_prevents_training_holds_near_chance_or_diverged():
    t = own("S-NOISE-STD")
    r = ro.noise_prevents_training([0.1, 0.9, t["max_train_accuracy"]] * 2, [None, 12, None] * 2, t)
    assert r.verdict == HOLDS
    assert r.conditions[0].name == "standard + noise diverges or stays ≤ 15% training accuracy"
    assert r.summary == "training accuracy per seed 10.0%, 90.0%, 15.0%, 10.0%, 90.0%, 15.0%; diverged at [None, 12, None, None, 12, None]"
    assert r.values == {"final_training_accuracy": [0.1, 0.9, 0.15] * 2, "diverged_at": [None, 12, None] * 2}
    assert ro.noise_prevents_training([0.1, 0.9, 0.15], [None, 12, None], t).verdict == INCONCLUSIVE  # 3 of 3 decides nothing


def test_noise_prevents_training_refuted_when_the_net_trains():
    assert ro.noise_prevents_training([0.8, 0.85, 0.9] * 2, [None] * 6, own("S-NOISE-STD")).verdict == REFUTED


def test_noise_prevents_training_inconclusive_when_seeds_disagree():
    assert ro.noise_prevents_training([0.1, 0.5, 0.12] * 2, [None] * 6, own("S-NOISE-STD")).verdict == INCONCLUSIVE


def test_noise_prevents_training_bad_input():
    with pytest.raises(ValueError, match="same, non-zero number of seeds"):
        ro.noise_prevents_training([0.1, 0.1], [None] * 3, own("S-NOISE-STD"))


# --- S-ICS-VGG ----------------------------------------------------------------------------------

def test_ics_holds_when_bn_is_similar_or_worse():
    assert ro.ics({"none": [0.6, 0.65, 0.62], "batch": [0.5, 0.6, 0.55]}, own("S-ICS-VGG")).verdict == HOLDS


def test_ics_bn_as_identity_holds():
    """The claim is that BN does not reduce ICS: about the same cosines hold."""
    assert ro.ics({"none": [0.6, 0.65, 0.62], "batch": [0.61, 0.63, 0.62]}, own("S-ICS-VGG")).verdict == HOLDS


def test_ics_refuted_when_bn_aligns_the_gradients():
    r = ro.ics({"none": [0.3, 0.35, 0.32], "batch": [0.9, 0.92, 0.91]}, own("S-ICS-VGG"))
    assert r.verdict == REFUTED
    assert r.values == {"median_cos": {"none": [0.3, 0.35, 0.32], "batch": [0.9, 0.92, 0.91]}}


def test_ics_inconclusive():
    assert ro.ics({"none": [0.5, 0.5, 0.5], "batch": [0.5, 0.7, 0.6]}, own("S-ICS-VGG")).verdict == INCONCLUSIVE


# --- S-LAND-LOSS, S-LAND-GRAD (VGG halves) ------------------------------------------------------

LANDSCAPE = [(ro.landscape_loss, "S-LAND-LOSS", "loss range"), (ro.landscape_grad, "S-LAND-GRAD", "gradient change")]


@pytest.mark.parametrize("readout,claim,what", LANDSCAPE)
def test_landscape_holds_an_order_of_magnitude_early(readout, claim, what):
    r = readout([30.0, 50.0, 40.0], [3.0, 4.5, 2.25], half(claim))
    assert r.verdict == HOLDS
    assert r.conditions[0].name == f"{what} standard/BN, early in the window"
    assert r.summary == "over the whole window: ×3, ×4.5, ×2.25"
    assert r.values == {"ratio_early": [30.0, 50.0, 40.0], "ratio_window": [3.0, 4.5, 2.25]}


@pytest.mark.parametrize("readout,claim,what", LANDSCAPE)
def test_landscape_bn_as_identity_never_holds(readout, claim, what):
    assert readout([1.0, 1.0, 1.0], [1.0, 1.0, 1.0], half(claim)).verdict != HOLDS
    assert readout([1.1, 0.9, 1.0], [1.0, 1.0, 1.0], half(claim)).verdict == REFUTED


@pytest.mark.parametrize("readout,claim,what", LANDSCAPE)
def test_landscape_inconclusive(readout, claim, what):
    assert readout([3.0, 30.0, 100.0], [1.0, 1.0, 1.0], half(claim)).verdict == INCONCLUSIVE


@pytest.mark.parametrize("readout,claim,what", LANDSCAPE)
def test_landscape_bad_input(readout, claim, what):
    with pytest.raises(ValueError, match="same, non-zero number of seeds"):
        readout([30.0, 50.0], [3.0, 4.0, 5.0], half(claim))
    with pytest.raises(ValueError, match="positive"):
        readout([30.0, 0.0, 40.0], [3.0, 4.0, 5.0], half(claim))


# --- S-LAND-BETA (VGG half) ---------------------------------------------------------------------

def test_landscape_beta_holds():
    beta = {"none": [[5.0, 4.0, 3.0], [6.0, 4.0, 3.0], [5.0, 5.0, 3.0]], "batch": [[1.0, 1.0, 1.0]] * 3}
    r = ro.landscape_beta(beta, half("S-LAND-BETA"))
    assert r.verdict == HOLDS
    assert r.values["fraction_of_window_bn_lower"] == [1.0, 1.0, 1.0]
    assert r.conditions[0].name == "effective β standard/BN exceeded for 0.667 of the window"


def test_landscape_beta_two_of_three_checkpoints_is_the_threshold():
    """The YAML's 0.6666666666666666 is 2/3 exactly: lower at two of three evenly spaced checkpoints
    is lower for ⅔ of the window, and the ratio that share meets is the second lowest."""
    beta = {"none": [[5.0, 4.0, 3.0]] * 3, "batch": [[1.0, 1.0, 9.0], [1.0, 1.2, 9.0], [1.0, 1.1, 9.0]]}
    assert ro.landscape_beta(beta, half("S-LAND-BETA")).verdict == HOLDS
    assert half("S-LAND-BETA")["min_share_bn_lower"] == 2 / 3
    low = ro.landscape_beta({"none": [[5.0, 4.0, 3.0]] * 3, "batch": [[1.0, 9.0, 9.0], [1.0, 8.0, 9.0], [1.0, 9.0, 7.0]]},
                            half("S-LAND-BETA"))
    assert low.verdict == REFUTED  # lower at one checkpoint of three


def test_landscape_beta_bn_as_identity_never_holds():
    beta = {"none": [[5.0, 4.0, 3.0]] * 3, "batch": [[5.0, 4.0, 3.0]] * 3}
    assert ro.landscape_beta(beta, half("S-LAND-BETA")).verdict != HOLDS


def test_landscape_beta_inconclusive():
    beta = {"none": [[5.0, 4.0], [5.0, 4.0], [5.0, 4.0, 3.0]], "batch": [[1.0, 1.0], [1.0, 9.0], [1.0, 1.0, 9.0]]}
    r = ro.landscape_beta(beta, half("S-LAND-BETA"))
    assert r.values["fraction_of_window_bn_lower"] == [1.0, 0.5, 2 / 3]
    assert r.verdict == INCONCLUSIVE


def test_landscape_beta_bad_input():
    with pytest.raises(ValueError, match="seed #1 needs the same non-empty window for both nets, got 2 and 3 checkpoints"):
        ro.landscape_beta({"none": [[5.0, 4.0, 3.0], [5.0, 4.0], [5.0]], "batch": [[1.0] * 3, [1.0] * 3, [1.0]]},
                          half("S-LAND-BETA"))


# --- S-LAND-RANDOM (VGG half) -------------------------------------------------------------------

def test_landscape_random_holds():
    assert ro.landscape_random([2.0, 3.0, 2.5], [4.0, 5.0, 3.0], half("S-LAND-RANDOM")).verdict == HOLDS


def test_landscape_random_bn_as_identity_never_holds():
    assert ro.landscape_random([1.0, 1.0, 1.0], [1.0, 1.0, 1.0], half("S-LAND-RANDOM")).verdict != HOLDS
    assert ro.landscape_random([0.5, 0.6, 0.55], [4.0, 5.0, 3.0], half("S-LAND-RANDOM")).verdict == REFUTED


def test_landscape_random_inconclusive():
    r = ro.landscape_random([0.8, 1.5, 2.0], [4.0, 5.0, 3.0], half("S-LAND-RANDOM"))
    assert [c.state() for c in r.conditions] == [INCONCLUSIVE, HOLDS]
    assert r.verdict == INCONCLUSIVE


def test_landscape_random_bad_input():
    with pytest.raises(ValueError, match="same, non-zero number of seeds"):
        ro.landscape_random([], [], half("S-LAND-RANDOM"))


# --- S-LP-PERF (VGG half) -----------------------------------------------------------------------

def lp_accuracy(none, batch, lp):
    return {"none": none, "batch": batch, **{p: lp for p in ro.LP}}


NONE_ACC, BN_ACC = [0.60, 0.65, 0.55], [0.95, 0.96, 0.94]


def test_lp_performance_holds():
    r = ro.lp_performance(lp_accuracy(NONE_ACC, BN_ACC, [0.95, 0.965, 0.94]), half("S-LP-PERF"))
    assert r.verdict == HOLDS
    assert [c.name for c in r.conditions] == [name for p in ("ℓ1", "ℓ2", "ℓ∞")
                                              for name in (f"{p} − BN training accuracy", f"{p} − standard training accuracy")]
    assert r.values == {"final_training_accuracy": {"none": NONE_ACC, "batch": BN_ACC, **{p: [0.95, 0.965, 0.94] for p in ro.LP}}}


def test_lp_performance_better_than_bn_holds():
    assert ro.lp_performance(lp_accuracy(NONE_ACC, [0.80, 0.82, 0.79], [0.95, 0.96, 0.94]), half("S-LP-PERF")).verdict == HOLDS


def test_lp_performance_normalizations_as_identity_never_hold():
    assert ro.lp_performance(lp_accuracy(NONE_ACC, NONE_ACC, NONE_ACC), half("S-LP-PERF")).verdict != HOLDS


def test_lp_performance_refuted_when_lp_trains_much_worse_than_bn():
    r = ro.lp_performance(lp_accuracy(NONE_ACC, BN_ACC, [0.80, 0.82, 0.79]), half("S-LP-PERF"))
    assert r.conditions[0].state() == REFUTED
    assert r.verdict == REFUTED


def test_lp_performance_inconclusive():
    r = ro.lp_performance(lp_accuracy(NONE_ACC, BN_ACC, [0.95, 0.90, 0.93]), half("S-LP-PERF"))
    assert r.verdict == INCONCLUSIVE


def test_lp_performance_a_seed_without_a_value_stops_at_its_difference():
    hook = Recorder()
    acc = lp_accuracy(NONE_ACC, BN_ACC, [0.95, 0.965, 0.94])
    acc["l2"] = [0.95, math.nan, 0.94]
    with pytest.raises(RuntimeError):
        ro.lp_performance(acc, half("S-LP-PERF"), finite=hook)
    assert hook.asked[0][0] == "ℓ2 − BN training accuracy"
    with pytest.raises(ValueError, match="ℓ2 − BN training accuracy: no finite value"):
        ro.lp_performance(acc, half("S-LP-PERF"))


def test_lp_performance_bad_input():
    with pytest.raises(ValueError, match="no values for l1, l2, linf"):
        ro.lp_performance({"none": [0.5] * 3, "batch": [0.9] * 3}, half("S-LP-PERF"))


# --- S-LP-SMOOTH (VGG half) ---------------------------------------------------------------------

def smooth(ratio):
    return {(p, m): list(ratio) for p in ro.LP for m in ("grad_change", "beta")}


def test_lp_smoothing_holds():
    r = ro.lp_smoothing(smooth([3.0, 4.0, 5.0]), half("S-LP-SMOOTH"))
    assert r.verdict == HOLDS
    assert [c.name for c in r.conditions][:2] == ["standard/ℓ1 gradient change", "standard/ℓ1 β"]
    assert set(r.values["standard_over_lp"]) == {f"{ro.LABELS[p]} {m}" for p in ro.LP for m in ("grad_change", "beta")}


def test_lp_smoothing_normalizations_as_identity_never_hold():
    assert ro.lp_smoothing(smooth([1.0, 1.0, 1.0]), half("S-LP-SMOOTH")).verdict != HOLDS
    assert ro.lp_smoothing(smooth([0.5, 0.6, 0.55]), half("S-LP-SMOOTH")).verdict == REFUTED


def test_lp_smoothing_inconclusive():
    assert ro.lp_smoothing(smooth([0.7, 2.0, 3.0]), half("S-LP-SMOOTH")).verdict == INCONCLUSIVE


def test_lp_smoothing_bad_input():
    ratios = smooth([3.0, 4.0, 5.0])
    del ratios[("linf", "beta")]
    with pytest.raises(ValueError, match="needs ratios for"):
        ro.lp_smoothing(ratios, half("S-LP-SMOOTH"))


# --- S-LP-SHIFT (VGG half) ----------------------------------------------------------------------

def shift(none, lp):
    return {"none": none, "batch": [1.0, 1.0, 1.0], **{p: lp for p in ro.LP}}


def test_lp_shift_holds():
    r = ro.lp_shift(shift([1.0, 1.1, 0.9], [3.0, 3.5, 2.5]), half("S-LP-SHIFT"))
    assert r.verdict == HOLDS
    assert [c.name for c in r.conditions] == [f"step change {p}/standard" for p in ("ℓ1", "ℓ2", "ℓ∞")]
    assert set(r.values["mean_step_change"]) == {"none", "batch", *ro.LP}


def test_lp_shift_normalizations_as_identity_never_hold():
    assert ro.lp_shift(shift([1.0, 1.1, 0.9], [1.0, 1.1, 0.9]), half("S-LP-SHIFT")).verdict != HOLDS
    assert ro.lp_shift(shift([1.0, 1.1, 0.9], [0.3, 0.4, 0.35]), half("S-LP-SHIFT")).verdict == REFUTED


def test_lp_shift_inconclusive():
    assert ro.lp_shift(shift([1.0, 1.0, 1.0], [0.8, 1.5, 2.0]), half("S-LP-SHIFT")).verdict == INCONCLUSIVE


def test_lp_shift_non_finite():
    with pytest.raises(ValueError, match="step change ℓ1/standard: no finite value"):
        ro.lp_shift(shift([1.0, 0.0, 1.0], [3.0, 3.5, 2.5]), half("S-LP-SHIFT"))


# --- S-LR-RANGE (VGG half) ----------------------------------------------------------------------

LRS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


def run(acc, diverged_at=None):
    return SimpleNamespace(diverged_at=diverged_at, final={"train_acc": acc})


def grid(n_working, diverged_from=None):
    """One net's runs over the LR grid: the first ``n_working`` train, the rest stay at chance (or
    diverge from ``diverged_from`` on)."""
    return {lr: run(0.9) if i < n_working else run(0.5, 3) if diverged_from is not None and i >= diverged_from else run(0.1)
            for i, lr in enumerate(LRS)}


def test_lr_range_holds():
    r = ro.lr_range([{"none": grid(2, 2), "batch": grid(5)}] * 6, half("S-LR-RANGE"))
    assert r.verdict == HOLDS
    assert r.summary == "achievable LRs per seed: " + "; ".join(["standard 2, BN 5"] * 6)
    assert ro.lr_range([{"none": grid(2, 2), "batch": grid(5)}] * 3, half("S-LR-RANGE")).verdict == INCONCLUSIVE  # 3 of 3
    assert r.values["working_lrs"][0] == {"none": [0.01, 0.03], "batch": [0.01, 0.03, 0.1, 0.3, 1.0]}


def test_lr_range_bn_as_identity_is_refuted():
    per_seed = {"none": grid(3), "batch": grid(3)}
    assert ro.lr_range([per_seed] * 6, half("S-LR-RANGE")).verdict == REFUTED


def test_lr_range_inconclusive_when_seeds_disagree():
    seeds = [{"none": grid(2), "batch": grid(5)}, {"none": grid(3), "batch": grid(3)}, {"none": grid(2), "batch": grid(4)}] * 2
    assert ro.lr_range(seeds, half("S-LR-RANGE")).verdict == INCONCLUSIVE


def test_lr_trains_means_no_divergence_and_train_accuracy_above_twice_chance():
    t = half("S-LR-RANGE")
    assert t["train_accuracy_above"] == 2 * CHANCE
    expected = [(run(0.9), True), (run(0.2000001), True), (run(0.2), False), (run(0.1), False), (run(0.9, 5), False),
                (SimpleNamespace(diverged_at=None, final={}), False)]  # above twice chance, not at it; a diverged run never
    for r, trains in expected:
        assert ro.lr_trains(r, t) is trains


def test_lr_range_bad_input():
    with pytest.raises(ValueError, match="no seeds"):
        ro.lr_range([], half("S-LR-RANGE"))
    with pytest.raises(ValueError, match="seed 0: no runs of batch"):
        ro.lr_range([{"none": grid(2)}], half("S-LR-RANGE"))
