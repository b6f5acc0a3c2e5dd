"""santurkar2018 on the deep linear network: from the probed runs' numbers to verdicts.

Every claim but S-LR-RANGE reads one probed GD run per normalization and seed. The claim test
picks, per seed, the checkpoints of the window (harness.windows: every net compared is training)
and hands each net's per-checkpoint numbers over that window, seed by seed, to a function here.
The function computes the claim's statistic once per seed (a median, a geometric-mean ratio
standard / normalized over the window or its first half, a share of checkpoints, a final-loss
ratio) and returns a :class:`Readout`: the per-seed values, the conditions of the claim's
threshold over them (harness.claimkit.evidence: ratios on a log axis, decided on the seeds' interval;
S-LR-RANGE's count comparison as a yes/no per seed, decided by the share of seeds) and a summary. Every number compared with
comes from the claim's YAML ``thresholds``.

The landscape readouts (:func:`loss_range`, :func:`grad_change`, :func:`beta`,
:func:`random_direction`, :func:`lp_smooth`) and :func:`lp_perf` take only per-seed sequences,
whatever the net: the VGG half of these claims (``case: vgg``) computes the same statistics from
its own checkpoints and can call them with its own thresholds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from harness.claimkit.evidence import Condition, Readout
from harness.claimkit.registry import Thresholds
from harness.stats import geometric_mean_ratio
from harness.windows import early, share_quantile, weighted_median

LABELS = {"none": "standard", "batch": "BN", "l1": "ℓ1", "l2": "ℓ2", "linf": "ℓ∞"}
LP = ("l1", "l2", "linf")

Series = Sequence[Sequence[float]]  # per seed: one number per checkpoint of that seed's window


def _pairs(none: Series, other: Series, what: str) -> None:
    """The two nets' series cover the same seeds, and each seed's two series the same checkpoints."""
    if not none or len(none) != len(other):
        raise ValueError(f"{what}: need the same non-zero number of seeds for both nets, got {len(none)} and {len(other)}")
    for i, (a, b) in enumerate(zip(none, other)):
        if len(a) == 0 or len(a) != len(b):
            raise ValueError(f"{what}: seed #{i} needs the same non-empty window for both nets, got {len(a)} and {len(b)} checkpoints")


def _weights(weights: Series | None, none: Series) -> Series:
    """Per seed, each window checkpoint's training time (``harness.windows.checkpoint_weights``);
    without ``weights``, the same for every checkpoint."""
    if weights is None:
        return [[1.0] * len(a) for a in none]
    if len(weights) != len(none) or any(len(w) != len(a) for w, a in zip(weights, none)):
        raise ValueError(f"need one weight per checkpoint of every seed's window, got {[len(w) for w in weights]}")
    return weights


def window_ratios(none: Series, other: Series, what: str, first_half: bool = False, weights: Series | None = None) -> list[float]:
    """Per seed, the geometric-mean ratio none / other over the window's checkpoints, each counting
    for the training time it stands for (``weights``; even without), over the window's first half
    in time (``harness.windows.early``) with ``first_half``."""
    _pairs(none, other, what)
    out = []
    for a, b, w in zip(none, other, _weights(weights, none)):
        if first_half:
            a, b, w = early(a, w), early(b, w), early(w, w)
        out.append(geometric_mean_ratio(a, b, w))
    return out


def _times(values: Sequence[float]) -> str:
    return "×" + ", ×".join(f"{r:.3g}" for r in values)


# --- §2.2, Fig. 3: ICS ----------------------------------------------------------------------------

def ics(cos_none: Sequence[Sequence[Sequence[float]]], cos_bn: Sequence[Sequence[Sequence[float]]], layers: Sequence[int],
        thresholds: Thresholds, weights: Series | None = None) -> Readout:
    """S-ICS-DLN: per seed, cos(G, G′) of every probed layer at every checkpoint of the window
    (checkpoints × layers), each checkpoint counting for its training time (``weights``). The
    median over them must be ≥ ``min_median_cos_standard`` for the standard net ("≈ 1") and its
    absolute value ≤ ``max_abs_median_cos_bn`` for BN ("almost uncorrelated"), each on the seeds'
    interval. The summary is empty: the conditions say it all."""
    if not cos_none or len(cos_none) != len(cos_bn):
        raise ValueError(f"need the same non-zero number of seeds for both nets, got {len(cos_none)} and {len(cos_bn)}")
    if any(np.size(c) == 0 for c in (*cos_none, *cos_bn)):
        raise ValueError("a seed's window holds no cos(G, G′)")
    weights = _weights(weights, cos_none)

    def median(per_seed, w) -> float:
        cos = np.asarray(per_seed, dtype=float)  # checkpoints × layers
        return weighted_median(cos.ravel(), np.repeat(np.asarray(w, dtype=float), cos.shape[1]))

    median = {n: [median(per_seed, w) for per_seed, w in zip(cos, weights)] for n, cos in (("none", cos_none), ("batch", cos_bn))}
    return Readout({"median_cos": median, "layers": list(layers)},
                   (Condition.at_least("standard median cos(G, G′)", median["none"], thresholds["min_median_cos_standard"]),
                    Condition.at_most("BN median |cos(G, G′)|", np.abs(median["batch"]), thresholds["max_abs_median_cos_bn"])),
                   "")


# --- §3.2, Fig. 9 (DLN) / Fig. 4 (VGG): the landscape along the gradient -------------------------

def _early_ratio(none: Series, bn: Series, label: str, thresholds: Thresholds, weights: Series | None) -> Readout:
    early_ratio = window_ratios(none, bn, label, first_half=True, weights=weights)
    whole = window_ratios(none, bn, label, weights=weights)
    return Readout({"ratio_early": early_ratio, "ratio_window": whole},
                   (Condition.at_least(f"{label} standard/BN, early in the window", early_ratio, thresholds["min_ratio_early"], log=True),),
                   "over the whole window: " + _times(whole))


def loss_range(none: Series, bn: Series, thresholds: Thresholds, weights: Series | None = None) -> Readout:
    """S-LAND-LOSS: per seed, the range of the loss along the gradient at each checkpoint of the
    window, for the standard net and BN. The geometric-mean ratio standard / BN over the window's
    first half must be ≥ ``min_ratio_early`` on the seeds' interval (log scale); the ratio over the
    whole window is the summary."""
    return _early_ratio(none, bn, "loss range", thresholds, weights)


def grad_change(none: Series, bn: Series, thresholds: Thresholds, weights: Series | None = None) -> Readout:
    """S-LAND-GRAD: as :func:`loss_range`, on the largest ℓ2 change of the gradient along the
    gradient direction (gradient predictiveness)."""
    return _early_ratio(none, bn, "gradient change", thresholds, weights)


def consistent_ratio(none: Series, other: Series, what: str, thresholds: Thresholds, weights: Series | None = None) -> Readout:
    """"Consistently lower" over a window, as a margin per seed: the ratio standard / ``other`` at
    each checkpoint of the window, and the ratio that a share ``min_share_bn_lower`` of the
    window's training time exceeds (``harness.windows.share_quantile``, each checkpoint counting
    for its time, ``weights``). It must exceed ``beta_ratio_above`` (1: lower with BN) on the
    seeds' interval (log scale): above 1 exactly when BN's is lower for at least that share of
    the window. (The share itself takes few values on a short window and ties across seeds; the
    ratio there is continuous.) The share is recorded."""
    _pairs(none, other, what)
    share = thresholds["min_share_bn_lower"]
    ratios = [np.asarray(a, dtype=float) / np.asarray(b, dtype=float) for a, b in zip(none, other)]
    if not all(np.all(np.isfinite(r) & (r > 0)) for r in ratios):
        raise ValueError(f"{what}: the ratios standard / BN must be positive and finite")
    weights = _weights(weights, none)
    low = [share_quantile(r, w, share) for r, w in zip(ratios, weights)]
    lower = [float(np.sum(np.asarray(w) * (r > 1)) / np.sum(w)) for r, w in zip(ratios, weights)]
    return Readout({"fraction_of_window_bn_lower": lower, "ratio_exceeded_by_the_share": low},
                   (Condition.at_least(f"{what} standard/BN exceeded for {share:.3g} of the window", low,
                                       thresholds["beta_ratio_above"], log=True, strict=True),),
                   "")


def beta(none: Series, bn: Series, thresholds: Thresholds, weights: Series | None = None) -> Readout:
    """S-LAND-BETA: per seed, the effective β at each checkpoint of the window for the standard net
    and BN: :func:`consistent_ratio` ("consistently lower with BN")."""
    return consistent_ratio(none, bn, "effective β", thresholds, weights)


def random_direction(loss_none: Series, loss_bn: Series, grad_none: Series, grad_bn: Series, thresholds: Thresholds,
                     weights: Series | None = None) -> Readout:
    """S-LAND-RANDOM: per seed, the loss range and the gradient change along a random direction at
    each checkpoint of the window, for the standard net and BN. The geometric-mean ratios standard
    / BN over the window must exceed ``loss_range_ratio_above`` and ``grad_change_ratio_above``
    (BN smaller) on the seeds' interval (log scale). The summary is empty."""
    loss = window_ratios(loss_none, loss_bn, "loss range along a random direction", weights=weights)
    grad = window_ratios(grad_none, grad_bn, "gradient change along a random direction", weights=weights)
    return Readout({"loss_range_ratio": loss, "grad_change_ratio": grad},
                   (Condition.at_least("loss range standard/BN along a random direction", loss, thresholds["loss_range_ratio_above"],
                                       log=True, strict=True),
                    Condition.at_least("gradient change standard/BN along a random direction", grad, thresholds["grad_change_ratio_above"],
                                       log=True, strict=True)),
                   "")


# --- §3.3, Figs. 12–14: ℓp normalizations ---------------------------------------------------------

def lp_perf_ratios(final: Mapping[str, Sequence[float]]) -> dict[str, list[float]]:
    """The final-loss ratios S-LP-PERF decides on, by name, per seed: each ℓp over BN, then each ℓp
    over the standard net. The test checks them for finite values in this order (a diverged run
    makes the claim inconclusive) before calling :func:`lp_perf`."""
    out = {}
    for den in ("batch", "none"):
        for p in LP:
            out[f"{LABELS[p]}/{LABELS[den]} final loss"] = [x / y for x, y in zip(final[p], final[den])]
    return out


def lp_perf(final: Mapping[str, Sequence[float]], thresholds: Thresholds) -> Readout:
    """S-LP-PERF: per seed, the final training loss of every net (``none``, ``batch``, ``l1``,
    ``l2``, ``linf``). Each ℓp / BN must be ≤ ``max_lp_over_bn`` ("comparably"), each ℓp / standard
    below ``lp_over_standard_below``, and ℓ1 / BN below ``l1_over_bn_below`` ("even better"), on the
    seeds' interval (log scale). The summary is empty."""
    missing = [n for n in ("none", "batch", *LP) if n not in final]
    if missing:
        raise ValueError(f"final losses missing for {missing}")
    if len({len(v) for v in final.values()}) != 1 or not final["none"]:
        raise ValueError(f"need the same non-zero number of seeds for every net, got {({n: len(v) for n, v in final.items()})}")
    ratios = lp_perf_ratios(final)
    bad = [name for name, values in ratios.items() if not all(math.isfinite(v) and v > 0 for v in values)]
    if bad:
        raise ValueError(f"final-loss ratios must be positive and finite: {bad}")
    conditions = [Condition.at_most(f"{LABELS[p]}/BN final loss", ratios[f"{LABELS[p]}/BN final loss"], thresholds["max_lp_over_bn"],
                                    log=True) for p in LP]
    conditions += [Condition.at_most(f"{LABELS[p]}/standard final loss", ratios[f"{LABELS[p]}/standard final loss"],
                                     thresholds["lp_over_standard_below"], log=True, strict=True) for p in LP]
    conditions.append(Condition.at_most("ℓ1/BN final loss (even better)", ratios["ℓ1/BN final loss"], thresholds["l1_over_bn_below"],
                                        log=True, strict=True))
    return Readout({"final_loss": {n: list(v) for n, v in final.items()}}, tuple(conditions), "")


def lp_smooth(series: Mapping[tuple[str, str], tuple[Series, Series]], thresholds: Thresholds,
              weights: Mapping[str, Series] | None = None) -> Readout:
    """S-LP-SMOOTH: for each ℓp and metric (``grad_change``, ``beta``) along the gradient, per seed
    the standard net's and the ℓp net's values at each checkpoint of the window of those two nets
    (``series[(p, metric)] = (standard, ℓp)``). The geometric-mean ratio standard / ℓp over the
    window must exceed ``grad_change_ratio_above`` / ``beta_ratio_above`` on the seeds' interval
    (log scale), for every ℓp and both metrics. The summary is empty."""
    above = {"grad_change": ("gradient change", thresholds["grad_change_ratio_above"]), "beta": ("β", thresholds["beta_ratio_above"])}
    unknown = [m for _, m in series if m not in above]
    if unknown or not series:
        raise ValueError(f"metrics must be among {list(above)}, got {[m for _, m in series]}")
    ratios = {(p, m): window_ratios(a, b, f"standard/{LABELS[p]} {m}", weights=(weights or {}).get(p))
              for (p, m), (a, b) in series.items()}
    return Readout({"standard_over_lp": {f"{LABELS[p]} {m}": v for (p, m), v in ratios.items()}},
                   tuple(Condition.at_least(f"standard/{LABELS[p]} {above[m][0]}", v, above[m][1], log=True, strict=True)
                         for (p, m), v in ratios.items()),
                   "")


def lp_shift(shift_lp: Mapping[str, Sequence[float]], shift_standard: Mapping[str, Sequence[float]], layer: int,
             thresholds: Thresholds) -> Readout:
    """S-LP-SHIFT: per ℓp and seed, the mean shift of the shift layer's input (before
    normalization) over the window of the ℓp net and the standard net, for the ℓp net
    (``shift_lp[p]``) and for the standard net over the same window (``shift_standard[p]``). The
    ratio ℓp / standard must exceed ``lp_over_standard_above`` on the seeds' interval (log scale),
    for every ℓp. The summary is empty."""
    if not shift_lp or set(shift_lp) != set(shift_standard):
        raise ValueError(f"need the same ℓp nets on both sides, got {sorted(shift_lp)} and {sorted(shift_standard)}")
    shifts, ratios = {}, {}
    for p in shift_lp:
        a, b = list(shift_lp[p]), list(shift_standard[p])
        if not a or len(a) != len(b):
            raise ValueError(f"{LABELS[p]}: need one shift per seed on both sides, got {len(a)} and {len(b)}")
        shifts[p], shifts[f"none vs {p}"] = a, b
        ratios[p] = [x / y for x, y in zip(a, b)]
    return Readout({"mean_shift": shifts, "lp_over_standard": ratios, "layer": layer},
                   tuple(Condition.at_least(f"shift {LABELS[p]}/standard", r, thresholds["lp_over_standard_above"], log=True, strict=True)
                         for p, r in ratios.items()),
                   "")


# --- §3.1: the range of working learning rates ----------------------------------------------------

def works(losses: Sequence[float], thresholds: Thresholds) -> bool:
    """GD "works" at a learning rate on the regression: every loss is finite and below
    ``loss_over_initial_below`` × the initial loss, and the final loss is below
    ``final_over_initial_below`` × it."""
    if len(losses) == 0:
        raise ValueError("a run needs at least one loss")
    start = losses[0]
    return (all(math.isfinite(v) and v < thresholds["loss_over_initial_below"] * start for v in losses)
            and losses[-1] < thresholds["final_over_initial_below"] * start)


def lr_range(losses: Sequence[Mapping[str, Mapping[float, Sequence[float]]]], thresholds: Thresholds) -> Readout:
    """S-LR-RANGE: per seed, the loss curve of the standard net (``none``) and of BN (``batch``) at
    every learning rate of the grid. BN must work (:func:`works`) at more learning rates than the
    standard net for a typical seed (the share of seeds, against one half: a count on a grid has no
    continuous margin). The final / initial loss of the first seed's runs
    is recorded for the figure (inf for a run that diverged)."""
    if not losses:
        raise ValueError("no seeds given")
    for i, per_seed in enumerate(losses):
        if set(per_seed) != {"none", "batch"}:
            raise ValueError(f"seed #{i}: need the runs of 'none' and 'batch', got {sorted(per_seed)}")
    working = [{n: [lr for lr, curve in runs.items() if works(curve, thresholds)] for n, runs in per_seed.items()} for per_seed in losses]
    final = {n: [curve[-1] / curve[0] if math.isfinite(curve[-1]) else float("inf") for curve in runs.values()]
             for n, runs in losses[0].items()}
    return Readout({"working_lrs": working, "final_over_initial_loss_first_seed": final},
                   (Condition.most_seeds("BN works at more LRs than the standard net", [len(w["batch"]) > len(w["none"]) for w in working]),),
                   "working LRs per seed: " + "; ".join(f"standard {len(w['none'])}, BN {len(w['batch'])}" for w in working))


# --- §4, Fig. 8: the size of σ --------------------------------------------------------------------

def sigma(gamma_over_sigma: Sequence[Sequence[Sequence[float]]], thresholds: Thresholds) -> Readout:
    """S-SIGMA: per seed, γ_j/σ_j of every BN unit at every checkpoint of the BN DLN. The median
    over units at each checkpoint must stay below 1: its largest value over the checkpoints below
    ``largest_median_below`` on the seeds' interval (log scale). The summary is empty."""
    if not gamma_over_sigma or any(len(per_seed) == 0 for per_seed in gamma_over_sigma):
        raise ValueError("need at least one checkpoint per seed")
    medians = [[float(np.median(c)) for c in per_seed] for per_seed in gamma_over_sigma]
    return Readout({"median_gamma_over_sigma": medians},
                   (Condition.at_most("largest median γ/σ over the checkpoints", [max(m) for m in medians],
                                      thresholds["largest_median_below"], log=True, strict=True),),
                   "")
