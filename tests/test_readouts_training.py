"""The training readouts (harness.readouts.training) decide on hand-made runs, with the claims' own thresholds.

Every readout gets made-up measurements in three arrangements: as the claim says (holds), against
it (refuted), and seeds that disagree or an interval that straddles the threshold
(inconclusive). Numeric conditions get three seeds; a yes/no outcome per seed (an LR on the grid,
a divergence) decides by the share of seeds and needs six that agree (harness.claimkit.evidence), so its
arrangements have six seeds, and three that agree stay inconclusive. The claims that credit BN over no BN are also fed the unnormalized
net's numbers in place of BN's ("BN made the identity"), which must never hold. The thresholds are
read from claims/bjorck2018_training.yaml, so these are the numbers the claims decide by.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from harness.claimkit.evidence import HOLDS, INCONCLUSIVE, REFUTED, decide
from harness.lr_search import LRSearch, Trial
from harness.readouts import training as ro
from harness.claimkit.registry import Registry
from harness.train import DIVERGENCE_LOSS

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = Registry.load(ROOT / "claims")
GRID = (0.1, 0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001, 0.00003)


def thresholds(claim: str):
    return REGISTRY.claims[claim].thresholds


def search(max_lr: float | None, above: str = "diverged") -> LRSearch:
    """One seed's search: every LR above ``max_lr`` ends ``above`` (diverged or chance), ``max_lr`` learns."""
    trials = []
    for lr in GRID:
        if lr == max_lr:
            trials.append(Trial(lr, "learning", 100, None, 0.8))
            break
        trials.append(Trial(lr, above, 5 if above == "diverged" else 100, 5 if above == "diverged" else None,
                            None if above == "diverged" else 0.1))
    return LRSearch(GRID, tuple(trials))


def searches(*max_lrs: float | None, above: str = "diverged") -> list[LRSearch]:
    """One search per seed."""
    return [search(lr, above) for lr in max_lrs]


def verdict_of(readout) -> str:
    return decide(*readout.conditions).verdict


def six(values: list) -> list:
    """Three seeds' values, twice: six seeds, enough for a yes/no outcome to decide."""
    return list(values) * 2


# --- helpers ------------------------------------------------------------------------------------

@pytest.mark.parametrize("x, text", [(0.1, "0.1"), (0.003, "0.003"), (0.001, "0.001"), (1e-4, "1e-4"), (3e-5, "3e-5"),
                                     (100, "100"), (1000.0, "1e3"), (2, "2"), (0, "0")])
def test_paper_num_writes_numbers_as_the_paper(x, text):
    assert ro.paper_num(x) == text


def test_record_keys_and_lr_texts():
    assert ro._key(0.1) == "0_1" and ro._key(1e-4) == "1e_4"
    assert ro.fmt_lr(None) == "none on grid" and ro.fmt_lrs(searches(0.1, None, 0.003)) == "0.1, none on grid, 0.003"
    assert ro.rank(None) < min(GRID)


def test_thresholds_are_the_ones_the_claims_used_to_hold():
    """The YAML carries the numbers the tests held as literals before (a refactor: same verdicts)."""
    assert dict(thresholds("B-LR-MAX")) == {"bn_max_lr": 0.1, "min_lr_ratio": 100, "none_diverges_at": 0.1}
    assert thresholds("B-DIV-PATH")["divergence_loss"] == DIVERGENCE_LOSS  # the training loop's divergence
    assert thresholds("B-TOP-LR")["gain_share"] == 2 / 3
    assert thresholds("B-GEN-LOWLR")["max_difference"] == 0.02 and thresholds("X-SMALLBATCH")["min_difference"] == -0.02
    assert not REGISTRY.claims["B-ALT-LR"].thresholds  # orderings only: nothing to compare with


def test_a_readout_asks_for_a_declared_threshold():
    with pytest.raises(KeyError, match="declares no threshold 'min_step_ratio'"):
        ro.bn_decreasing_steps(lines_of({0: (0.1, 0.001)}), [0], [1], thresholds("B-DIV-MOMENTS"))


# --- B-LR-MAX, B-LR-EXTREME ---------------------------------------------------------------------

def test_lr_max():
    t = thresholds("B-LR-MAX")
    bn = searches(*six([0.1] * 3))
    held = ro.lr_max(bn, searches(*six([1e-4] * 3)), t)
    assert verdict_of(held) == HOLDS
    assert held.values["ratio"] == pytest.approx([1000] * 6) and held.values["none_at_0_1"] == ["diverged"] * 6
    assert held.summary == ("max LR per seed: BN 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, unnormalized 0.0001, 0.0001, 0.0001, 0.0001, "
                            "0.0001, 0.0001; unnormalized at 0.1: diverged, diverged, diverged, diverged, diverged, diverged")
    assert [c.name for c in held.conditions] == ["BN's max LR is 0.1", "BN/unnormalized max LR ≥ 100",
                                                 "unnormalized diverges at 0.1"]
    assert verdict_of(ro.lr_max(bn, searches(*six([None] * 3)), t)) == HOLDS  # below the grid: ratio ∞
    assert verdict_of(ro.lr_max(bn, bn, t)) == REFUTED  # BN made the identity
    assert verdict_of(ro.lr_max(bn, searches(*six([1e-4] * 3), above="chance"), t)) == REFUTED  # at chance is not diverging
    assert verdict_of(ro.lr_max(bn, searches(*six([1e-4, 0.003, 1e-4])), t)) == INCONCLUSIVE  # ratio 33 on two seeds of six
    assert verdict_of(ro.lr_max(bn[:3], searches(1e-4, 1e-4, 1e-4), t)) == INCONCLUSIVE  # 3 of 3 decides nothing
    with pytest.raises(ValueError, match="one value per seed"):
        ro.lr_max(bn, searches(1e-4, 1e-4), t)


def runs(*diverged_at: int | None) -> list[SimpleNamespace]:
    return [SimpleNamespace(diverged=d is not None, diverged_at=d, losses=[2.3, 2.0] if d is None else [2.3, math.inf])
            for d in diverged_at]


def test_extreme_lrs():
    t = thresholds("B-LR-EXTREME")
    held = ro.extreme_lrs({3.0: runs(*six([None] * 3)), 10.0: runs(*six([4, 4, 3]))}, 50, t)
    assert verdict_of(held) == HOLDS
    assert held.summary == ("divergence within 50 steps per seed: LR 3.0 none, none, none, none, none, none; "
                            "LR 10.0 step 4, step 4, step 3, step 4, step 4, step 3")
    assert set(held.values) == {"lr_3", "lr_10"} and held.values["lr_10"]["diverged_at"] == [4, 4, 3] * 2
    assert verdict_of(ro.extreme_lrs({3.0: runs(*six([2] * 3)), 10.0: runs(*six([None] * 3))}, 50, t)) == REFUTED
    assert verdict_of(ro.extreme_lrs({3.0: runs(*six([11, None, None])), 10.0: runs(*six([4] * 3))}, 50, t)) == INCONCLUSIVE
    with pytest.raises(ValueError, match="exactly two LRs"):
        ro.extreme_lrs({3.0: runs(None), 10.0: runs(4), 30.0: runs(1)}, 50, t)


# --- Fig. 1 -------------------------------------------------------------------------------------

def test_high_lr_generalization():
    t = thresholds("B-GEN-HIGHLR")
    none, best = [0.60, 0.62, 0.58], [0.003, 0.001, 0.003]
    held = ro.high_lr_generalization([0.90, 0.92, 0.91], none, best, 0.1, t)
    assert verdict_of(held) == HOLDS and held.conditions[0].name == "test acc BN@0.1 − unnormalized@best"
    assert held.values["difference"] == pytest.approx([0.30, 0.30, 0.33]) and "bn_at_0_1" in held.values
    assert verdict_of(ro.high_lr_generalization(none, none, best, 0.1, t)) != HOLDS  # BN made the identity: a difference of 0
    assert verdict_of(ro.high_lr_generalization([0.50, 0.50, 0.50], none, best, 0.1, t)) == REFUTED
    assert verdict_of(ro.high_lr_generalization([0.70, 0.57, 0.60], none, best, 0.1, t)) == INCONCLUSIVE
    nan = ro.high_lr_generalization([0.90, math.nan, 0.91], none, best, 0.1, t)  # a diverged run: the test concludes first
    with pytest.raises(ValueError, match="finite"):  # never decided on: no NaN reaches an interval
        verdict_of(nan)
    with pytest.raises(ValueError, match="one value per seed"):
        ro.high_lr_generalization([0.9, 0.9], none, best, 0.1, t)


def test_low_lr_no_better():
    t = thresholds("B-GEN-LOWLR")
    none = [0.20, 0.21, 0.19]
    held = ro.low_lr_no_better([0.205, 0.21, 0.20], none, 1e-4, t)
    assert verdict_of(held) == HOLDS and held.conditions[0].name == "test acc BN@1e-4 − unnormalized@1e-4"
    assert set(held.values) == {"bn_at_1e_4", "none_at_1e_4"} and held.summary.startswith("test acc at 1e-4: BN 0.205")
    assert verdict_of(ro.low_lr_no_better([0.50, 0.52, 0.49], none, 1e-4, t)) == REFUTED
    assert verdict_of(ro.low_lr_no_better([0.20, 0.26, 0.18], none, 1e-4, t)) == INCONCLUSIVE


def test_mid_lr_between():
    t = thresholds("B-GEN-MIDLR")
    low, mid = [0.20, 0.21, 0.19], [0.80, 0.82, 0.79]
    held = ro.mid_lr_between({1e-4: low, 0.003: mid, 0.1: [0.90, 0.91, 0.92]}, t)
    assert verdict_of(held) == HOLDS
    assert [c.name for c in held.conditions] == ["BN acc@0.003 − acc@1e-4", "BN acc@0.1 − acc@0.003"]
    assert held.summary == "BN test acc 0.200 (LR 0.0001) ≤ 0.803 (LR 0.003) ≤ 0.910 (LR 0.1)"
    assert list(held.values["test_acc"]) == ["0.0001", "0.003", "0.1"]
    assert verdict_of(ro.mid_lr_between({1e-4: low, 0.003: mid, 0.1: [0.50, 0.49, 0.52]}, t)) == REFUTED
    assert verdict_of(ro.mid_lr_between({1e-4: low, 0.003: mid, 0.1: [0.90, 0.60, 0.85]}, t)) == INCONCLUSIVE
    with pytest.raises(ValueError, match="three LRs"):
        ro.mid_lr_between({1e-4: low, 0.003: mid}, t)


def test_gap_larger_at_low_lr():
    t = thresholds("B-GEN-GAP")
    held = ro.gap_larger_at_low_lr({0.003: [0.10, 0.12, 0.09], 0.1: [0.02, 0.03, -0.01]}, t)
    assert verdict_of(held) == HOLDS and held.conditions[0].name == "gap(0.003) − max(gap(0.1), 2·gap(0.1))"
    assert held.values["margin"] == pytest.approx([0.06, 0.06, 0.10])  # twice a positive gap; a negative one as it is
    assert held.summary == "train−test gap (seed mean): LR 0.003 +0.103, LR 0.1 +0.013"
    same = [0.05, 0.04, 0.06]
    assert verdict_of(ro.gap_larger_at_low_lr({0.003: same, 0.1: same}, t)) == REFUTED  # margins −0.05, −0.04, −0.06
    assert verdict_of(ro.gap_larger_at_low_lr({0.003: [0.05, 0.10, 0.10], 0.1: [0.04, 0.02, 0.03]}, t)) == INCONCLUSIVE  # 1.25×
    with pytest.raises(ValueError, match="finite gap"):
        ro.gap_larger_at_low_lr({0.003: [0.1, math.nan, 0.1], 0.1: same}, t)
    with pytest.raises(ValueError, match="two LRs"):
        ro.gap_larger_at_low_lr({0.003: same}, t)


def test_low_lr_training_loss():
    t = thresholds("R1-LOWLR-LOSS")
    none = {"train_loss": [2.20, 2.25, 2.22], "test_loss": [2.3, 2.3, 2.3]}
    held = ro.low_lr_training_loss({"train_loss": [1.50, 1.60, 1.55], "test_loss": [2.0, 2.1, 2.0]}, none, 1e-4, t)
    assert verdict_of(held) == HOLDS and held.conditions[0].name == "train loss unnormalized − BN at 1e-4"
    assert set(held.values) == {"BN_train_loss", "BN_test_loss", "none_train_loss", "none_test_loss"}
    assert verdict_of(ro.low_lr_training_loss(none, none, 1e-4, t)) != HOLDS  # BN made the identity: a difference of 0
    assert verdict_of(ro.low_lr_training_loss({"train_loss": [2.5, 2.6, 2.55], "test_loss": [2.3] * 3}, none, 1e-4, t)) == REFUTED
    straddles = {"train_loss": [1.5, 2.6, 2.2], "test_loss": [2.0] * 3}
    assert verdict_of(ro.low_lr_training_loss(straddles, none, 1e-4, t)) == INCONCLUSIVE
    with pytest.raises(ValueError, match="train_loss"):
        ro.low_lr_training_loss({"train_loss": [1.5] * 3}, none, 1e-4, t)


# --- Eq. 2 --------------------------------------------------------------------------------------

def test_sgd_noise_exponents():
    """One exact computation (seed-exempt): a yes/no, never inconclusive; the test concludes on it."""
    t = thresholds("B-SGD-NOISE")
    held = ro.sgd_noise_exponents([-1.0000000003, -0.9999999998, -1.0], [2.0] * 7, [True] * 6 + [False], 400, t)
    assert verdict_of(held) == HOLDS
    assert held.summary == ("exact expectation: exponent of |B| -1.000000 (paper −1, review −2), exponent of α 2.000000; "
                            "Monte Carlo (400 draws per |B|): the exact value lies in the 99% BCa interval at 6 of 7 batch sizes")
    assert verdict_of(ro.sgd_noise_exponents([-2.0] * 3, [2.0] * 7, [True] * 7, 400, t)) == REFUTED  # review 1's |B|²
    assert verdict_of(ro.sgd_noise_exponents([-1.0, -1.00001, -1.0], [2.0] * 7, [True] * 7, 400, t)) == REFUTED  # off by 1e-5
    assert verdict_of(ro.sgd_noise_exponents([-1.0] * 3, [2.0, 1.9], [True] * 2, 400, t)) == REFUTED
    assert verdict_of(ro.sgd_noise_exponents([math.nan] * 3, [2.0] * 7, [True] * 7, 400, t)) == REFUTED
    with pytest.raises(ValueError, match="exponents"):
        ro.sgd_noise_exponents([], [2.0], [True], 400, t)


# --- §3.4, App. N -------------------------------------------------------------------------------

def update(early_rise: float = 1.0, end: float = 1e5, seed: int = 0, dip: float = 1.0) -> SimpleNamespace:
    """A diverging update: loss 100 at t = 0, × ``early_rise`` by t = ½ (after dipping to 100·``dip``
    at t = 0.05), ``end`` at t = 1."""
    t = np.linspace(0, 1, 21)
    loss = np.where(t <= 0.5, 100 * (1 + (early_rise - 1) * t / 0.5), 100 * early_rise)
    loss[1] = min(loss[1], 100 * dip)
    loss[-1] = end
    return SimpleNamespace(lr=0.002 * 2**seed, step=7 + seed, path={"t": t.tolist(), "loss": loss.tolist()})


def test_early_rise_is_measured_from_the_lowest_loss_so_far():
    path = update(1.5, dip=0.01).path  # dips to 1, then rises to 150 before t = ½
    assert ro.early_rise(path["t"], path["loss"], 0.5) == pytest.approx(150.0)
    assert ro.early_rise([0, 0.5, 1], [10.0, math.inf, 1.0], 0.5) == pytest.approx(ro.EXPLODED / 10)  # non-finite: exploded
    assert ro.early_rise(*update().path.values(), 0.5) == 1.0
    with pytest.raises(ValueError, match="positive losses"):
        ro.early_rise([0, 1], [0.0, 5.0], 0.5)


def test_diverging_path():
    t = thresholds("B-DIV-PATH")
    held = ro.diverging_path({s: u for s, u in enumerate(six([update(1.2), update(1.5, seed=1), update(1.1, end=math.inf, seed=2)]))}, t)
    assert verdict_of(held) == HOLDS
    assert [c.name for c in held.conditions] == ["loss(1) > 1e3", "largest rise of the loss for t ≤ ½ over its lowest so far"]
    assert held.summary.startswith("per seed loss(0) → lowest for t ≤ ½, its largest rise there → loss(1): 100 → 100, ×1.2 → 1e+05")
    assert held.values["per_seed"]["1"] == {"lr": 0.002 * 2, "step": 8, "loss_t0": 100.0, "loss_t1": 1e5,
                                            "min_loss_first_half": 100.0, "largest_rise_first_half": pytest.approx(1.5)}
    assert verdict_of(ro.diverging_path({s: update(5.0 + s, end=500.0) for s in range(6)}, t)) == REFUTED
    # a path that dips from loss(0) = 100 to 1 and rises 100× before t = ½: within 2·loss(0), but not flat
    dips = {s: update(1.5 + 0.1 * s, dip=0.01) for s in range(6)}
    assert verdict_of(ro.diverging_path(dips, t)) == REFUTED
    assert verdict_of(ro.diverging_path({0: update(1.1), 1: update(1.2), 2: update(3.0)}, t)) == INCONCLUSIVE
    with pytest.raises(ValueError, match="every seed"):
        ro.diverging_path({0: update(), 1: None}, t)


def moments_path(top_growth: float, layers: int = 9) -> dict:
    """Channel moments at t = 0 and 1 per layer: the top third grows × ``top_growth``, the rest stays."""
    grow = {k: (top_growth if k > 2 * layers // 3 else 1.0) for k in range(1, layers + 1)}
    return {"t": [0.0, 1.0], "mean": {k: [0.1, 0.1 * g] for k, g in grow.items()}, "var": {k: [1.0, g] for k, g in grow.items()}}


def test_diverging_moments():
    t = thresholds("B-DIV-MOMENTS")
    held = ro.diverging_moments([moments_path(1e3), moments_path(1e4), moments_path(5e2)], t)
    assert verdict_of(held) == HOLDS and held.summary == ""
    assert held.values["growth_ratio_top_over_bottom"]["var"] == pytest.approx([1e3, 1e4, 5e2])
    assert held.values["layers"] == "conv layers 1..9 (paper numbering); thirds of 9"
    assert verdict_of(ro.diverging_moments([moments_path(1.0), moments_path(1.1), moments_path(0.9)], t)) == REFUTED
    assert verdict_of(ro.diverging_moments([moments_path(1e3), moments_path(1.0), moments_path(1.0)], t)) == INCONCLUSIVE
    exploded = moments_path(1.0)
    exploded["var"][9][-1] = math.inf  # non-finite at t = 1: counts as exploded
    assert ro.moment_growth(exploded, "var") > 1e9
    with pytest.raises(ValueError, match="three conv layers"):
        ro.diverging_moments([moments_path(1e3, layers=2)], t)


def lines_of(until: dict[int, tuple[float | None, float | None]], batches=(1, 5)) -> dict:
    """{(net, seed): {batch: line}} with BN's and none's ``decreasing_until`` per seed."""
    return {(net, s): {b: {"decreasing_until": u[i], "largest_decreasing_eta": u[i], "loss0": 2.3} for b in batches}
            for s, u in until.items() for i, net in enumerate(("BN", "none"))}


def test_bn_decreasing_steps():
    t = thresholds("B-DIV-BN-STEP")
    seeds, batches = list(range(6)), [1, 5]
    held = ro.bn_decreasing_steps(lines_of(dict(enumerate(six([(0.1, 0.001), (0.3, None), (0.1, 0.01)])))), seeds, batches, t)
    assert verdict_of(held) == HOLDS
    assert held.conditions[0].name == "BN decreases the loss ≥ 10× further along −g at every probed batch"
    assert held.summary.startswith("η up to which the loss decreases, per seed: seed 0: batch 1 BN 0.1 / none 0.001, batch 5")
    assert "batch 1 BN 0.3 / none none on grid" in held.summary and held.values["decreasing_until"]["none seed 1 batch 5"] is None
    same = lines_of({s: (0.01, 0.01) for s in seeds})  # BN made the identity
    assert verdict_of(ro.bn_decreasing_steps(same, seeds, batches, t)) == REFUTED
    assert verdict_of(ro.bn_decreasing_steps(lines_of({s: (None, None) for s in seeds}), seeds, batches, t)) == REFUTED
    one_seed_short = lines_of(dict(enumerate(six([(0.1, 0.001), (0.1, 0.02), (0.1, None)]))))  # seeds 1, 4: only 5× further
    assert verdict_of(ro.bn_decreasing_steps(one_seed_short, seeds, batches, t)) == INCONCLUSIVE
    three = lines_of({0: (0.1, 0.001), 1: (0.3, None), 2: (0.1, 0.01)})
    assert verdict_of(ro.bn_decreasing_steps(three, [0, 1, 2], batches, t)) == INCONCLUSIVE  # 3 of 3 decides nothing
    with pytest.raises(ValueError, match="none seed 2"):
        ro.bn_decreasing_steps({**lines_of({0: (0.1, 0.001), 1: (0.1, 0.001)}), ("BN", 2): {}}, [0, 1, 2], batches, t)


# --- Tables 2, 3; App. G, H, J ------------------------------------------------------------------

def test_top_lr():
    t = thresholds("B-TOP-LR")
    search = {"BN": searches(*six([0.1] * 3)), "top only": searches(*six([0.03, 0.03, 0.01])),
              "none": searches(*six([1e-4, 1e-4, 0.001]))}
    acc = {"BN": six([0.90, 0.91, 0.92]), "top only": six([0.85, 0.86, 0.88]), "none": six([0.50, 0.52, 0.48])}
    held = ro.top_lr(search, acc, t)
    assert verdict_of(held) == HOLDS
    assert [c.name for c in held.conditions] == ["unnormalized < top only < BN (max LR)",
                                                 "top-only gain − ⅔ BN's gain (test accuracy)"]
    margins = [0.35 - 0.40 * 2 / 3, 0.34 - 0.39 * 2 / 3, 0.40 - 0.44 * 2 / 3]
    assert held.values["top_gain_minus_two_thirds_of_bn_gain"] == pytest.approx(six(margins))
    assert held.summary.startswith("max LR per seed: unnormalized 0.0001, 0.0001, 0.001, 0.0001")
    identity = {n: search["none"] for n in search}, {n: acc["none"] for n in acc}  # BN made the identity
    assert verdict_of(ro.top_lr(*identity, t)) == REFUTED
    straddles = {**acc, "top only": six([0.80, 0.70, 0.82])}  # margins 0.033, −0.08, 0.047
    assert verdict_of(ro.top_lr(search, straddles, t)) == INCONCLUSIVE
    with pytest.raises(ValueError, match="need exactly"):
        ro.top_lr({"BN": search["BN"], "none": search["none"]}, acc, t)


def test_alternating_lr():
    t = thresholds("B-ALT-LR")
    none, alt, bn = searches(*six([1e-4, 1e-4, None])), searches(*six([0.01, 0.01, 0.003])), searches(*six([0.1] * 3))
    held = ro.alternating_lr(none, alt, bn, t)
    assert verdict_of(held) == HOLDS and set(held.values) == {"unnormalized", "alternating", "BN"}
    assert held.summary.startswith("max LR per seed: unnormalized 0.0001, 0.0001, none on grid, 0.0001")
    assert verdict_of(ro.alternating_lr(none, none, none, t)) == REFUTED  # BN (and its alternating form) made the identity
    assert verdict_of(ro.alternating_lr(none, searches(*six([0.01, 0.1, 0.01])), bn, t)) == INCONCLUSIVE
    assert verdict_of(ro.alternating_lr(none[:3], alt[:3], bn[:3], t)) == INCONCLUSIVE  # 3 of 3 decides nothing
    with pytest.raises(ValueError, match="one value per seed"):
        ro.alternating_lr(none, alt[:2], bn, t)


def test_depth_lr():
    t = thresholds("B-DEPTH-LR")
    held = ro.depth_lr({56: searches(*six([1e-4] * 3)), 20: searches(*six([0.1, 0.1, 0.03])), 32: searches(*six([0.01] * 3))}, t)
    assert verdict_of(held) == HOLDS and held.summary.startswith("max LR per seed by depth: 20: 0.1, 0.1, 0.03, 0.1")
    assert held.values["max_lr"]["56"] == [1e-4] * 6 and "depth_20" in held.values
    assert verdict_of(ro.depth_lr({d: searches(*six([0.01] * 3)) for d in (20, 32, 56)}, t)) == REFUTED
    seed_2_rises = {20: searches(*six([0.1, 0.1, 0.01])), 32: searches(*six([0.01, 0.01, 0.03])), 56: searches(*six([1e-4] * 3))}
    assert verdict_of(ro.depth_lr(seed_2_rises, t)) == INCONCLUSIVE
    with pytest.raises(ValueError, match="two depths"):
        ro.depth_lr({20: searches(0.1)}, t)


def test_warm_start_lr():
    t = thresholds("B-WARM-LR")
    cold = searches(*six([1e-4, None, 1e-4]))
    held = ro.warm_start_lr(cold, searches(*six([0.01, 0.01, 0.003])), t)
    assert verdict_of(held) == HOLDS
    assert held.summary.startswith("max LR per seed: warm 0.01, 0.01, 0.003, 0.01")
    assert verdict_of(ro.warm_start_lr(cold, cold, t)) == REFUTED
    assert verdict_of(ro.warm_start_lr(cold, searches(*six([0.01, None, 1e-4])), t)) == INCONCLUSIVE


def test_parts_lr():
    t = thresholds("B-PARTS")
    table2 = {"γ, β, μ, σ²": 0.1, "γ, μ, σ²": 0.1, "β, μ, σ²": 0.1, "μ, σ²": 0.1, "σ²": 0.01, "μ": 0.003, "none": 1e-4}
    held = ro.parts_lr({row: searches(*six([lr] * 3)) for row, lr in table2.items()}, t)
    assert verdict_of(held) == HOLDS and held.summary.startswith("max LR per seed: γ, β, μ, σ²: 0.1, 0.1, 0.1, 0.1, 0.1, 0.1; ")
    identity = {row: searches(*six([1e-4] * 3)) for row in table2}  # every part of BN made the identity
    assert verdict_of(ro.parts_lr(identity, t)) == REFUTED
    one_off = {row: searches(*six([lr, lr, 1e-4 if row == "μ" else lr])) for row, lr in table2.items()}  # μ-only no better than none twice
    assert verdict_of(ro.parts_lr(one_off, t)) == INCONCLUSIVE
    with pytest.raises(ValueError, match="need exactly"):
        ro.parts_lr({row: searches(lr) for row, lr in table2.items() if row != "μ"}, t)


# --- beyond the paper ---------------------------------------------------------------------------

def test_small_batch():
    t = thresholds("X-SMALLBATCH")
    bn = [0.50, 0.49, 0.51]
    held = ro.small_batch([0.53, 0.52, 0.55], [0.80, 0.79, 0.82], bn, 4, 128, t)
    assert verdict_of(held) == HOLDS and held.conditions[0].name == "test acc unnormalized (α*/4, |B| 32) − BN at its best LR"
    assert held.values["small_batch"] == 32
    assert list(held.values["test_acc"]) == ["none (α*, 128)", "none (α*/4, 32)", "BN (best LR, 128)"]
    assert held.summary == "unnormalized at (α*/4, |B| 32) 0.803 vs BN at its best LR 0.500; at (α*, 128): 0.533"
    assert verdict_of(ro.small_batch(bn, [0.40, 0.41, 0.39], bn, 4, 128, t)) == REFUTED
    assert verdict_of(ro.small_batch(bn, [0.49, 0.40, 0.55], bn, 4, 128, t)) == INCONCLUSIVE
    with pytest.raises(ValueError, match="one value per seed"):
        ro.small_batch(bn, [0.8, 0.8], bn, 4, 128, t)


def test_alt_norms_lr():
    t = thresholds("X-ALTNORMS")
    bn = searches(*six([0.1] * 3))
    held = ro.alt_norms_lr(bn, searches(*six([0.1] * 3)), searches(*six([0.1] * 3)), t)
    assert verdict_of(held) == HOLDS and set(held.values) == {"BN", "GroupNorm", "LayerNorm"}
    assert verdict_of(ro.alt_norms_lr(bn, searches(*six([0.003] * 3)), searches(*six([0.003, 0.003, 0.1])), t)) == REFUTED
    assert verdict_of(ro.alt_norms_lr(bn, searches(*six([0.1, 0.1, 0.003])), searches(*six([0.1] * 3)), t)) == INCONCLUSIVE


def test_fixup_lr():
    t = thresholds("X-FIXUP")
    none = searches(*six([0.1, 0.003, 0.001]))
    held = ro.fixup_lr(searches(*six([0.1] * 3)), none, t)
    assert verdict_of(held) == HOLDS and held.conditions[0].name == "Fixup's max LR is 0.1"
    assert held.summary.startswith("Fixup max LR per seed 0.1, 0.1, 0.1, 0.1, 0.1, 0.1; plain unnormalized 0.1, 0.003, 0.001, 0.1")
    assert verdict_of(ro.fixup_lr(searches(*six([0.003, 0.003, 0.01])), none, t)) == REFUTED
    assert verdict_of(ro.fixup_lr(searches(*six([0.1, 0.03, 0.1])), none, t)) == INCONCLUSIVE
