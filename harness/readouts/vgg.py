"""santurkar2018 on VGG (App. A): from the probed runs' per-seed statistics to verdicts.

Every claim but S-LR-RANGE reads one probed SGD run per normalization and seed
(harness.vgg_runs), so every readout here takes per-seed values, in the seeds' order (index i is
the i-th seed of the profile): end-of-training losses and accuracies, distribution-change means,
median ICS cosines, and the landscape ratios standard / normalized over each seed's window
(harness.windows; the claim test computes them). It compares them with the claim's
``thresholds`` and returns a :class:`Readout`: ratios on a log axis, differences and shares on
their own, orderings as yes/no per seed, each decided on the seeds' 95% interval
(harness.claimkit.evidence). S-LR-RANGE reads the unprobed runs over the LR grid and counts, per seed,
the learning rates each net trains at.

A seed whose ratio or difference is not finite (a run diverged, so it has no final loss) cannot
be judged: those readouts take ``finite``, which the claim test sets to ``verdict.finite`` (the
claim concludes inconclusive, naming the seeds); by default it is an error. Condition names are
the claim tests' own, and a readout's summary is empty where the conditions' own description
is the whole summary.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from harness.claimkit.evidence import Condition, Readout
from harness.readouts.dln import consistent_ratio
from harness.claimkit.registry import Thresholds

LABELS = {"none": "standard", "batch": "BN", "noisy_batch": "noisy BN", "noise": "standard + noise",
          "l1": "ℓ1", "l2": "ℓ2", "linf": "ℓ∞"}
LP = ("l1", "l2", "linf")
PerNorm = Mapping[str, Sequence[float]]  # normalization → one value per seed
Finite = Callable[[str, Sequence[float]], list]  # (name, per-seed values) → the values, or raises


def require_finite(name: str, values: Sequence[float]) -> list[float]:
    """The default ``finite``: every seed's value must be finite."""
    values = [float(v) for v in values]
    bad = [i for i, v in enumerate(values) if not math.isfinite(v)]
    if bad:
        raise ValueError(f"{name}: no finite value for the seed(s) at position(s) {bad}: {values}")
    return values


def _seeds(name: str, *series: Sequence) -> int:
    """The number of seeds, which every series must share (at least one)."""
    n = {len(s) for s in series}
    if len(n) != 1 or 0 in n:
        raise ValueError(f"{name}: needs the same, non-zero number of seeds in every series, got {[len(s) for s in series]}")
    return n.pop()


def _norms(values: Mapping, norms: Sequence[str], what: str) -> None:
    missing = [n for n in norms if n not in values]
    if missing:
        raise ValueError(f"{what}: no values for {', '.join(missing)} (given: {', '.join(values) or 'none'})")
    _seeds(what, *(values[n] for n in norms))


def _ratio(num: Sequence[float], den: Sequence[float]) -> list[float]:
    with np.errstate(divide="ignore", invalid="ignore"):
        return [float(v) for v in np.divide(np.asarray(num, dtype=float), np.asarray(den, dtype=float))]


def _difference(a: Sequence[float], b: Sequence[float]) -> list[float]:
    return [float(v) for v in np.subtract(np.asarray(a, dtype=float), np.asarray(b, dtype=float))]


# --- §1, Fig. 1 ---------------------------------------------------------------------------------

def performance(final_loss: PerNorm, test_accuracy: PerNorm, thresholds: Thresholds) -> Readout:
    """S-PERF: reads the final training loss (mean mini-batch loss over the last 10% of steps; the
    preconditions keep diverged runs out) and the eval-mode test accuracy of the standard net
    ("none") and BN per seed. The ratio standard / BN of the training loss must exceed
    ``loss_ratio_above`` (1: BN's lower; log scale) and BN − standard test accuracy
    ``test_accuracy_gain_above``, each on the seed-level interval."""
    _norms(final_loss, ("none", "batch"), "final training loss")
    _norms(test_accuracy, ("none", "batch"), "test accuracy")
    gain = _difference(test_accuracy["batch"], test_accuracy["none"])
    return Readout({"final_training_loss": {n: list(final_loss[n]) for n in ("none", "batch")},
                    "test_accuracy": {n: list(test_accuracy[n]) for n in ("none", "batch")}},
                   (Condition.at_least("final training loss standard/BN", _ratio(final_loss["none"], final_loss["batch"]),
                                       thresholds["loss_ratio_above"], log=True, strict=True),
                    Condition.at_least("test accuracy BN − standard", gain, thresholds["test_accuracy_gain_above"],
                                       strict=True)),
                   "")


# --- §1 and §2.1: distributional stability, noisy BN ---------------------------------------------

def distribution_change(step_change: PerNorm, thresholds: Thresholds, finite: Finite = require_finite) -> Readout:
    """S-DIST: reads the mean step-to-step change of the sampled units' distributions (|Δμ|/σ +
    |Δσ²|/σ²) of the standard net and BN per seed. "Marginal": the ratio standard / BN must lie
    in ``ratio_band`` (low and high end, log scale) on the seed-level interval."""
    _norms(step_change, ("none", "batch"), "step change")
    low, high = thresholds["ratio_band"]
    name = "step change standard/BN"
    ratio = finite(name, _ratio(step_change["none"], step_change["batch"]))
    return Readout({"ratio_standard_over_bn": ratio},
                   (Condition.at_least(name, ratio, low, log=True),
                    Condition.at_most(f"{name} (≤ {high:g})", ratio, high, log=True)),
                   "")


def noisy_match(final_accuracy: PerNorm, thresholds: Thresholds, finite: Finite = require_finite) -> Readout:
    """S-NOISY-MATCH: reads the final training accuracy (mean mini-batch accuracy over the last 10%
    of steps, as trained) of the standard net, BN and noisy BN per seed. |noisy BN − BN| must be
    at most ``max_accuracy_gap``, and BN − standard and noisy BN − standard above
    ``accuracy_gain_above``, each on the seed-level interval."""
    _norms(final_accuracy, ("none", "batch", "noisy_batch"), "final training accuracy")
    acc = {n: np.asarray(final_accuracy[n], dtype=float) for n in ("none", "batch", "noisy_batch")}
    gap = finite("|noisy BN − BN|", np.abs(acc["noisy_batch"] - acc["batch"]))
    gain = thresholds["accuracy_gain_above"]
    return Readout({"final_training_accuracy": {n: [float(v) for v in a] for n, a in acc.items()}},
                   (Condition.at_most("|noisy BN − BN| training accuracy", gap, thresholds["max_accuracy_gap"]),
                    Condition.at_least("BN − standard", acc["batch"] - acc["none"], gain, strict=True),
                    Condition.at_least("noisy BN − standard", acc["noisy_batch"] - acc["none"], gain, strict=True)),
                   "")


def noisy_unstable(step_change: PerNorm, thresholds: Thresholds, finite: Finite = require_finite) -> Readout:
    """S-NOISY-UNSTABLE: reads the mean step-to-step distribution change of the standard net and
    noisy BN per seed. The ratio noisy BN / standard must be at least ``min_ratio`` ("significantly
    higher") on the seed-level interval (log scale)."""
    _norms(step_change, ("none", "noisy_batch"), "step change")
    name = "step change noisy BN/standard"
    ratio = finite(name, _ratio(step_change["noisy_batch"], step_change["none"]))
    return Readout({"ratio_noisy_over_standard": ratio},
                   (Condition.at_least(name, ratio, thresholds["min_ratio"], log=True),),
                   "")


def noise_prevents_training(final_accuracy: Sequence[float], diverged_at: Sequence[int | None],
                            thresholds: Thresholds) -> Readout:
    """S-NOISE-STD: reads, per seed, the final training accuracy of the standard net with Algorithm
    1's noise and the step it diverged at (None: it did not). On every seed it must diverge or
    stay at most ``max_train_accuracy`` (within 5 points of chance), for a typical seed (the share
    of seeds, against one half: a divergence is a yes/no event, so there is no common margin)."""
    _seeds("standard + noise", final_accuracy, diverged_at)
    cut = thresholds["max_train_accuracy"]
    acc, diverged = [float(a) for a in final_accuracy], list(diverged_at)
    return Readout({"final_training_accuracy": acc, "diverged_at": diverged},
                   (Condition.most_seeds(f"standard + noise diverges or stays ≤ {cut:.0%} training accuracy",
                                         [d is not None or a <= cut for d, a in zip(diverged, acc)]),),
                   "training accuracy per seed " + ", ".join(f"{a:.1%}" for a in acc) + f"; diverged at {diverged}")


# --- §2.2: ICS ----------------------------------------------------------------------------------

def ics(median_cos: PerNorm, thresholds: Thresholds) -> Readout:
    """S-ICS-VGG: reads, per seed, the median of cos(G, G′) over the probed layers and the window's
    checkpoints for the standard net and BN. BN's minus the standard net's must be at most
    ``max_cos_excess`` ("similar, or even worse") on the seed-level interval."""
    _norms(median_cos, ("none", "batch"), "median cos(G, G′)")
    return Readout({"median_cos": {n: list(median_cos[n]) for n in ("none", "batch")}},
                   (Condition.at_most("median cos(G, G′) BN − standard", _difference(median_cos["batch"], median_cos["none"]),
                                      thresholds["max_cos_excess"]),),
                   "")


# --- §3.2: the landscape ------------------------------------------------------------------------

def _window_summary(window: Sequence[float]) -> str:
    return "over the whole window: ×" + ", ×".join(f"{r:.3g}" for r in window)


def landscape_loss(early: Sequence[float], window: Sequence[float], thresholds: Thresholds) -> Readout:
    """S-LAND-LOSS (VGG): reads, per seed, the geometric-mean ratio standard / BN of the loss range
    along the gradient over the first half of the window (``early``) and over the whole window.
    The early ratio must be at least ``min_ratio_early`` on the seed-level interval (log scale);
    the whole window's is reported."""
    _seeds("loss range ratio", early, window)
    return Readout({"ratio_early": list(early), "ratio_window": list(window)},
                   (Condition.at_least("loss range standard/BN, early in the window", early, thresholds["min_ratio_early"],
                                       log=True),),
                   _window_summary(window))


def landscape_grad(early: Sequence[float], window: Sequence[float], thresholds: Thresholds) -> Readout:
    """S-LAND-GRAD (VGG): as :func:`landscape_loss` for the maximum ℓ2 change of the gradient along
    the gradient: the early ratio standard / BN must be at least ``min_ratio_early``."""
    _seeds("gradient change ratio", early, window)
    return Readout({"ratio_early": list(early), "ratio_window": list(window)},
                   (Condition.at_least("gradient change standard/BN, early in the window", early, thresholds["min_ratio_early"],
                                       log=True),),
                   _window_summary(window))


def landscape_beta(beta: Mapping[str, Sequence[Sequence[float]]], thresholds: Thresholds) -> Readout:
    """S-LAND-BETA (VGG): reads, per seed, the effective β along the gradient at each checkpoint of
    the seed's window, for the standard net and BN; decided as the DLN half
    (:func:`harness.readouts.dln.consistent_ratio`): the ratio standard / BN that a share
    ``min_share_bn_lower`` of the window meets above ``beta_ratio_above``, on the seed-level
    interval (the VGG's checkpoints are evenly spaced, so each counts the same)."""
    _norms(beta, ("none", "batch"), "effective β")
    return consistent_ratio(beta["none"], beta["batch"], "effective β", thresholds)


def landscape_random(loss_range: Sequence[float], grad_change: Sequence[float], thresholds: Thresholds) -> Readout:
    """S-LAND-RANDOM (VGG): reads, per seed, the geometric-mean ratios standard / BN over the window
    of the loss range and of the gradient change along a random direction. They must exceed
    ``loss_range_ratio_above`` and ``grad_change_ratio_above`` on the seed-level interval (log
    scale)."""
    _seeds("random-direction ratios", loss_range, grad_change)
    return Readout({"loss_range_ratio": list(loss_range), "grad_change_ratio": list(grad_change)},
                   (Condition.at_least("loss range standard/BN along a random direction", loss_range,
                                       thresholds["loss_range_ratio_above"], log=True, strict=True),
                    Condition.at_least("gradient change standard/BN along a random direction", grad_change,
                                       thresholds["grad_change_ratio_above"], log=True, strict=True)),
                   "")


# --- §3.3: ℓp normalizations --------------------------------------------------------------------

def lp_performance(final_accuracy: PerNorm, thresholds: Thresholds, finite: Finite = require_finite) -> Readout:
    """S-LP-PERF (VGG): reads the final training accuracy (mean mini-batch accuracy over the last
    10% of steps, as trained; the measure of S-NOISY-MATCH's "performance") of the standard net, BN
    and ℓ1, ℓ2, ℓ∞ per seed. For each ℓp, ℓp − BN must be at least −``max_accuracy_deficit``
    ("comparably or even better": at most that far below BN) and ℓp − standard above
    ``accuracy_gain_above`` ("improved performance over standard training"), on the seed-level
    interval. (A ratio of training losses near zero says little about comparable performance.)"""
    _norms(final_accuracy, ("none", "batch", *LP), "final training accuracy")
    acc = {n: np.asarray(final_accuracy[n], dtype=float) for n in ("none", "batch", *LP)}
    conditions = []
    for p in LP:
        name = f"{LABELS[p]} − BN training accuracy"
        conditions.append(Condition.at_least(name, finite(name, acc[p] - acc["batch"]), -thresholds["max_accuracy_deficit"]))
        name = f"{LABELS[p]} − standard training accuracy"
        conditions.append(Condition.at_least(name, finite(name, acc[p] - acc["none"]), thresholds["accuracy_gain_above"],
                                             strict=True))
    return Readout({"final_training_accuracy": {n: [float(v) for v in a] for n, a in acc.items()}}, tuple(conditions), "")


def lp_smoothing(ratios: Mapping[tuple[str, str], Sequence[float]], thresholds: Thresholds) -> Readout:
    """S-LP-SMOOTH (VGG): reads, per (ℓp, metric) with metric ``grad_change`` or ``beta``, the
    per-seed geometric-mean ratio standard / ℓp along the gradient over the window of the two
    nets. Each must exceed ``grad_change_ratio_above`` or ``beta_ratio_above`` on the seed-level
    interval (log scale)."""
    expected = {(p, m) for p in LP for m in ("grad_change", "beta")}
    if set(ratios) != expected:
        raise ValueError(f"ℓp smoothing: needs ratios for {sorted(expected)}, got {sorted(ratios)}")
    _seeds("ℓp smoothing ratios", *ratios.values())
    cut = {"grad_change": thresholds["grad_change_ratio_above"], "beta": thresholds["beta_ratio_above"]}
    what = {"grad_change": "gradient change", "beta": "β"}
    return Readout({"standard_over_lp": {f"{LABELS[p]} {m}": list(v) for (p, m), v in ratios.items()}},
                   tuple(Condition.at_least(f"standard/{LABELS[p]} {what[m]}", v, cut[m], log=True, strict=True)
                         for (p, m), v in ratios.items()),
                   "")


def lp_shift(step_change: PerNorm, thresholds: Thresholds, finite: Finite = require_finite) -> Readout:
    """S-LP-SHIFT (VGG): reads the mean step-to-step distribution change of the standard net and
    ℓ1, ℓ2, ℓ∞ per seed. Each ratio ℓp / standard must exceed ``lp_over_standard_above`` on the
    seed-level interval (log scale)."""
    _norms(step_change, ("none", *LP), "step change")
    conditions = []
    for p in LP:
        name = f"step change {LABELS[p]}/standard"
        conditions.append(Condition.at_least(name, finite(name, _ratio(step_change[p], step_change["none"])),
                                             thresholds["lp_over_standard_above"], log=True, strict=True))
    return Readout({"mean_step_change": {n: list(v) for n, v in step_change.items()}}, tuple(conditions), "")


# --- §3.1: the range of learning rates ----------------------------------------------------------

def lr_trains(run, thresholds: Thresholds) -> bool:
    """"Achievable" LR (bjorck2018 App. J, as harness.lr_search.trains_above_chance): the run did not
    diverge (training stops at a mini-batch loss above 1e3 or not finite), and its eval-mode
    training accuracy at the end is above ``train_accuracy_above`` (twice chance)."""
    return run.diverged_at is None and run.final.get("train_acc", 0.0) > thresholds["train_accuracy_above"]


def lr_range(runs: Sequence[Mapping[str, Mapping[float, object]]], thresholds: Thresholds) -> Readout:
    """S-LR-RANGE (VGG): reads, per seed, ``{norm: {lr: run}}`` for the standard net and BN (a run
    has ``diverged_at`` and ``final``), and counts the LRs each trains at (:func:`lr_trains`). BN's
    count must exceed the standard net's for a typical seed (the share of seeds, against one half:
    a count on a grid has no continuous margin)."""
    if not runs:
        raise ValueError("LR range: no seeds given")
    for i, per_seed in enumerate(runs):
        missing = [n for n in ("none", "batch") if n not in per_seed]
        if missing:
            raise ValueError(f"LR range, seed {i}: no runs of {', '.join(missing)}")
    works = [{n: [lr for lr, run in r.items() if lr_trains(run, thresholds)] for n, r in per_seed.items()} for per_seed in runs]
    return Readout({"working_lrs": works},
                   (Condition.most_seeds("BN achieves more LRs than the standard net",
                                         [len(w["batch"]) > len(w["none"]) for w in works]),),
                   "achievable LRs per seed: " + "; ".join(f"standard {len(w['none'])}, BN {len(w['batch'])}" for w in works))
