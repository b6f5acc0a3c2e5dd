"""bjorck2018 §4 and Apps. C–E: random-matrix products and linear networks, from measured spectra to verdicts.

Every claim of the family is seed-exempt: exact (Proposition 1's equivalence, scale invariance) or
self-averaging (spectra pooled over runs of N = 1000, means over runs). Each readout takes what the
test measured (KS distances, per-run log10 κ and σ_max, tail ratios, relative errors, per-seed
κ of linear nets) and the claim's thresholds (its YAML ``thresholds``), computes the statistics
the claim records, and returns a :class:`Readout` whose conditions are yes/no flags, one flag per
check, each true when the check passes. The claim holds when every flag is true and is refuted
otherwise; the test passes ``readout.verdict`` to ``verdict.conclude``, which records exactly the
verdict and summary that the inline check recorded before (``verdict.decide`` would add the
conditions to the summary).

Factors M, sizes N, depths and prescribed κ keep the order the test measured them in, which is
the order of the profile's settings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from harness.claimkit.evidence import Condition, Readout
from harness.claimkit.registry import Thresholds
from harness.stats import fitted_slope, strictly_decreasing, strictly_increasing


def _need(mapping: Mapping, what: str, at_least: int = 1) -> list:
    keys = list(mapping)
    if len(keys) < at_least:
        raise ValueError(f"{what}: needs at least {at_least} entr{'y' if at_least == 1 else 'ies'}, got {keys}")
    return keys


def _runs(values: Sequence[float], what: str) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{what}: needs a non-empty list of per-run values, got shape {x.shape}")
    return x


# --- §4, Theorem 1 / Eq. 5 ----------------------------------------------------------------------

def density(ks: Mapping[int, float], thresholds: Thresholds) -> Readout:
    """B-RMT-DENSITY: the KS distance between the pooled spectrum and the CDF of Eq. 5, one per M
    (``{M: distance}``); holds when the largest is at most ``max_ks``."""
    _need(ks, "KS distances by M")
    limit = thresholds["max_ks"]
    worst = max(ks.values())
    return Readout({"ks_by_factors": dict(ks)},
                   (Condition.exact(f"KS distance ≤ {limit} for every M", worst <= limit),),
                   f"max KS over M = {worst:.3f} (limit {limit}); " + ", ".join(f"M={M}: {d:.3f}" for M, d in ks.items()))


def edge(gaps: Mapping[int, Mapping[int, float]], thresholds: Thresholds) -> Readout:
    """B-RMT-EDGE: the mean relative gap 1 − λ_max/edge(M) by M and by N (``{M: {N: gap}}``, the
    same sizes for every M); holds when, for every M, the gap at the largest N is smaller than at
    the smallest. No number is compared with: ``thresholds`` is empty for this claim."""
    factors = _need(gaps, "relative gaps by M")
    sizes = sorted(gaps[factors[0]])
    if len(sizes) < 2 or any(sorted(g) != sizes for g in gaps.values()):
        raise ValueError(f"relative gaps: need the same two or more sizes N for every M, got "
                         f"{ {M: sorted(g) for M, g in gaps.items()} }")
    small, large = sizes[0], sizes[-1]
    return Readout({"relative_gap": {M: dict(g) for M, g in gaps.items()}},
                   tuple(Condition.exact(f"M={M}: gap smaller at N={large} than at N={small}", g[large] < g[small])
                         for M, g in gaps.items()),
                   "; ".join(f"M={M}: gap {g[small]:.3f} (N={small}) → {g[large]:.3f} (N={large})" for M, g in gaps.items()))


# --- App. E, Figs. 11 and 12; Fig. 8 ------------------------------------------------------------

def kappa(log10_kappa: Mapping[int, Sequence[float]], thresholds: Thresholds) -> Readout:
    """B-RMT-KAPPA: log10 κ of each run's product, by M. The mean over runs must increase strictly
    with M, and κ (10 to the mean) must grow by at least ``min_growth`` from the first M to the last."""
    factors = _need(log10_kappa, "log10 κ by M", 2)
    runs = {M: _runs(log10_kappa[M], f"log10 κ at M={M}") for M in factors}
    means = [float(runs[M].mean()) for M in factors]
    stds = [float(runs[M].std(ddof=1)) for M in factors]
    growth = 10 ** (means[-1] - means[0])
    monotone = strictly_increasing(means)
    return Readout({"mean_log10_kappa": dict(zip(factors, means)), "std_log10_kappa": dict(zip(factors, stds))},
                   (Condition.exact("mean log10 κ strictly increasing in M", monotone),
                    Condition.exact(f"κ grows ≥ {thresholds['min_growth']}× over M",
                                         growth >= thresholds["min_growth"])),
                   f"κ(M={factors[0]}) = {10 ** means[0]:.3g} → κ(M={factors[-1]}) = {10 ** means[-1]:.3g} "
                   f"(×{growth:.3g}); strictly increasing: {monotone}")


def sigma_max(per_run: Mapping[int, Sequence[float]], edges: Mapping[int, float], thresholds: Thresholds) -> Readout:
    """B-RMT-SMAX: σ_max of each run's product, by M, and the paper's linear expectation edge(M)
    (Eq. 5's right edge). The mean over runs must increase strictly with M, and grow "not at the
    linear rate" of edge(M): the log–log slope of mean σ_max against edge(M) over the factors,
    log(σ_max(M_last) / σ_max(M_first)) / log(edge(M_last) / edge(M_first)), below
    ``max_slope_vs_edge`` (1: as fast as the edge). (Staying below edge(M) itself cannot fail:
    σ_max is near √edge(M), a fifth of it at M = 8.) σ_max/√edge(M) is recorded as a diagnostic."""
    factors = _need(per_run, "σ_max by M", 2)
    if list(edges) != factors:
        raise ValueError(f"σ_max and edges must cover the same M in the same order, got {factors} and {list(edges)}")
    mean = np.array([_runs(per_run[M], f"σ_max at M={M}").mean() for M in factors])
    edge_ = np.array([edges[M] for M in factors])
    ratio = mean / np.sqrt(edge_)
    increasing = strictly_increasing(mean)
    slope = float(np.log(mean[-1] / mean[0]) / np.log(edge_[-1] / edge_[0]))
    limit = thresholds["max_slope_vs_edge"]
    return Readout({"mean_sigma_max": dict(zip(factors, mean)), "edge": dict(zip(factors, edge_)),
                    "sigma_max_over_sqrt_edge": dict(zip(factors, ratio)), "slope_vs_edge": slope},
                   (Condition.exact("mean σ_max strictly increasing in M", increasing),
                    Condition.exact(f"σ_max grows more slowly than edge(M): log–log slope {slope:.3f} < {limit:g}", slope < limit)),
                   f"σ_max {mean[0]:.3f} (M={factors[0]}) → {mean[-1]:.3f} (M={factors[-1]}), "
                   f"edge(M={factors[-1]}) = {edge_[-1]:.1f}; slope against edge(M) {slope:.3f}; "
                   f"σ_max/√edge ∈ [{ratio.min():.3f}, {ratio.max():.3f}]")


def tails(q99_over_median: Mapping[int, float], excess_kurtosis: Mapping[int, float], thresholds: Thresholds) -> Readout:
    """B-RMT-TAILS: the tail ratio q99/median of the pooled singular values, by M, must increase
    strictly with M; the excess kurtosis, by M, is recorded alongside. No number is compared with:
    ``thresholds`` is empty."""
    factors = _need(q99_over_median, "tail ratios by M", 2)
    if list(excess_kurtosis) != factors:
        raise ValueError(f"tail ratios and kurtosis must cover the same M, got {factors} and {list(excess_kurtosis)}")
    values = [q99_over_median[M] for M in factors]
    return Readout({"q99_over_median": dict(q99_over_median), "excess_kurtosis": dict(excess_kurtosis)},
                   (Condition.exact("q99/median strictly increasing in M", strictly_increasing(values)),),
                   "q99/median: " + ", ".join(f"M={M}: {q99_over_median[M]:.2f}" for M in factors))


# --- §4, universality ----------------------------------------------------------------------------

REFERENCE = "gaussian"  # the distribution the others' growth rates are compared with


def universality(xavier_kappa: Mapping[int, Sequence[float]], kaiming_kappa: Mapping[int, Sequence[float]],
                 log10_kappa: Mapping[str, Mapping[int, Sequence[float]]], thresholds: Thresholds) -> Readout:
    """B-RMT-UNIV, from per-run κ by M.

    Scale: κ of the same draws at the Xavier and the Kaiming variance (``{M: [κ per run]}``); their
    largest relative difference must be at most ``max_scale_difference``. Distribution: log10 κ per
    run by entry distribution and M (``{dist: {M: [...]}}``, the Gaussian among them, M ascending).
    For each distribution, κ (10 to the mean log10 κ) must grow by at least ``min_growth`` from the
    first M to the last, and its growth rate (least-squares slope of log10 κ on M over all runs)
    must differ from the Gaussian's by at most ``max_rate_difference``, relative."""
    factors = _need(xavier_kappa, "Xavier κ by M")
    if list(kaiming_kappa) != factors:
        raise ValueError(f"Xavier and Kaiming κ must cover the same M, got {factors} and {list(kaiming_kappa)}")
    xavier = {M: _runs(xavier_kappa[M], f"Xavier κ at M={M}") for M in factors}
    kaiming = {M: _runs(kaiming_kappa[M], f"Kaiming κ at M={M}") for M in factors}
    scale_diff = max(float(np.max(np.abs(kaiming[M] / xavier[M] - 1))) for M in factors)
    if REFERENCE not in log10_kappa:
        raise ValueError(f"log10 κ by distribution: needs the reference '{REFERENCE}', got {list(log10_kappa)}")
    rate, growth, mean_log = {}, {}, {}
    for dist, by_m in log10_kappa.items():
        Ms = _need(by_m, f"{dist}: log10 κ by M", 2)
        if Ms != sorted(Ms):
            raise ValueError(f"{dist}: M must be ascending, got {Ms}")
        logk = {M: _runs(by_m[M], f"{dist}: log10 κ at M={M}") for M in Ms}
        runs = {len(v) for v in logk.values()}
        if len(runs) != 1:
            raise ValueError(f"{dist}: needs the same number of runs at every M, got {sorted(runs)}")
        rate[dist] = fitted_slope(np.repeat(Ms, runs.pop()), np.concatenate([logk[M] for M in Ms]))
        mean_log[dist] = {M: float(logk[M].mean()) for M in Ms}
        growth[dist] = 10 ** (mean_log[dist][Ms[-1]] - mean_log[dist][Ms[0]])
    reference = rate[REFERENCE]["slope"]
    rel_rate = {d: abs(r["slope"] / reference - 1) for d, r in rate.items()}
    same_scale = scale_diff <= thresholds["max_scale_difference"]
    grows = min(growth.values()) >= thresholds["min_growth"]
    same_rate = max(rel_rate.values()) <= thresholds["max_rate_difference"]
    return Readout({"scale_max_relative_kappa_difference": scale_diff, "log10_kappa_slope_per_factor": rate,
                    "relative_rate_difference": rel_rate, "growth": growth, "mean_log10_kappa": mean_log},
                   (Condition.exact(f"Kaiming and Xavier κ agree to {thresholds['max_scale_difference']:g}", same_scale),
                    Condition.exact(f"κ grows ≥ {thresholds['min_growth']}× for every distribution", grows),
                    Condition.exact(f"growth rate within {thresholds['max_rate_difference']:.0%} of the Gaussian's",
                                         same_rate)),
                   f"Kaiming vs Xavier κ differ by ≤ {scale_diff:.1e}; log10 κ per factor: "
                   + ", ".join(f"{d} {r['slope']:.2f}±{r['stderr']:.2f}" for d, r in rate.items())
                   + f"; largest rate difference {max(rel_rate.values()):.0%}")


# --- App. C and §4: linear networks --------------------------------------------------------------

def proposition_1(loss_error: Sequence[float], optimum_error: Sequence[float], trajectory_error: Sequence[float],
                  thresholds: Thresholds) -> Readout:
    """B-LIN-PROP1: per random problem, the relative error between the direct and the column-wise
    loss at a random A_1, between the two optima, and the largest relative difference of the two GD
    trajectories. The worst over problems must be at most ``max_loss_error``,
    ``max_optimum_error`` and ``max_trajectory_error`` respectively."""
    errors = {"loss": list(loss_error), "optimum": list(optimum_error), "gd_trajectory": list(trajectory_error)}
    counts = {len(v) for v in errors.values()}
    if len(counts) != 1 or not counts.pop():
        raise ValueError(f"need one error of each kind per problem, got {({k: len(v) for k, v in errors.items()})}")
    problems = len(errors["loss"])
    worst = {k: max(v) for k, v in errors.items()}
    limits = {"loss": "max_loss_error", "optimum": "max_optimum_error", "gd_trajectory": "max_trajectory_error"}
    return Readout({"worst_relative_error": worst, "problems": problems},
                   tuple(Condition.exact(f"{k}: worst relative error ≤ {thresholds[name]:g}",
                                              worst[k] <= thresholds[name])
                         for k, name in limits.items()),
                   f"worst relative errors over {problems} problems: loss {worst['loss']:.1e}, "
                   f"optimum {worst['optimum']:.1e}, GD trajectory {worst['gd_trajectory']:.1e}")


def linear_conditioning(kappa_by_depth: Mapping[int, Sequence[float]], max_lr_by_depth: Mapping[int, Sequence[float]],
                        iterations_by_kappa: Mapping[float, int], thresholds: Thresholds) -> Readout:
    """B-LIN-KAPPA. By depth, κ of each seed's Xavier-initialized linear net and its largest
    non-diverging GD learning rate; by prescribed κ, GD iterations to the tolerance. The geometric
    mean of κ over seeds must increase strictly with depth, the mean largest LR decrease strictly
    with depth, and the iterations increase strictly with κ. The exponent of iterations in κ
    (log-log slope) is recorded. No number is compared with: ``thresholds`` is empty."""
    depths = _need(kappa_by_depth, "κ by depth", 2)
    if list(max_lr_by_depth) != depths:
        raise ValueError(f"κ and largest LR must cover the same depths, got {depths} and {list(max_lr_by_depth)}")
    kappas = _need(iterations_by_kappa, "GD iterations by κ", 3)
    kappa = {d: float(np.exp(np.mean(np.log(_runs(kappa_by_depth[d], f"κ at depth {d}"))))) for d in depths}
    max_lr = {d: float(np.mean(_runs(max_lr_by_depth[d], f"largest LR at depth {d}"))) for d in depths}
    its = np.array([iterations_by_kappa[k] for k in kappas], dtype=float)
    if not np.all(its > 0) or not all(k > 0 and math.isfinite(k) for k in kappas):
        raise ValueError(f"GD iterations by κ: needs positive κ and iteration counts, got {dict(iterations_by_kappa)}")
    exponent = fitted_slope(np.log(np.array(kappas, dtype=float)), np.log(its))["slope"]
    return Readout({"kappa_by_depth": kappa, "max_stable_lr_by_depth": max_lr,
                    "gd_iterations_by_kappa": dict(iterations_by_kappa), "iterations_exponent_in_kappa": exponent},
                   (Condition.exact("κ strictly increasing with depth", strictly_increasing([kappa[d] for d in depths])),
                    Condition.exact("largest stable LR strictly decreasing with depth",
                                         strictly_decreasing([max_lr[d] for d in depths])),
                    Condition.exact("GD iterations strictly increasing with κ", strictly_increasing(its))),
                   f"κ by depth {[f'{kappa[d]:.3g}' for d in depths]}; max LR by depth {[f'{max_lr[d]:.3g}' for d in depths]}; "
                   f"GD steps ∝ κ^{exponent:.2f}")
