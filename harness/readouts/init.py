"""bjorck2018 §3 at initialization: from captured passes (harness.probes.init_probe) to verdicts.

Each claim is measured once per seed: a seed is one freshly initialized network, and its passes
are its batches. Every function takes the passes grouped by seed (``{seed: [InitPass, ...]}``,
the same seeds for every variant), computes the claim's statistics separately for each seed
(the ``*_seed`` helpers), and returns a :class:`Readout`: the per-seed values, the conditions of
the claim's threshold over them (harness.claimkit.evidence: ratios and scales on a log axis, except
coefficients of variation, which can be exactly 0; orderings as margins per seed, e.g. none's
kurtosis minus BN's), and a one-line
summary of the per-seed values. The test hands the conditions to ``verdict.decide``.
Nothing is pooled across seeds: two seeds are two different networks (their favoured class j′,
for one, need not agree).

Every number a claim decides by comes from its ``thresholds`` (harness.claimkit.registry.Thresholds, the
claim's YAML ``thresholds`` in ``claims/bjorck2018_init.yaml``, fixed from the paper's words before
measuring), read by name; no readout holds a number of its own. Keeping the decision here, apart
from the test, lets the unit tests feed it hand-made and sabotaged statistics (BN replaced by
identities) with the claims' own thresholds and check what it decides. What stays here is the
measurement's own settings (200 shuffles for B-LOWRANK).

Layers are the paper's numbers: conv layers 1..6n+1 (1 = stem, then two per residual block),
fc = 6n+2.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import scipy.special
import scipy.stats

from harness.claimkit.evidence import Condition, Readout
from harness.probes.init_probe import InitPass
from harness.claimkit.registry import Thresholds
from harness.stats import fitted_slope

Passes = Sequence[InitPass]  # one seed's passes (its batches)
BySeed = Mapping[int, Passes]  # seed → that seed's passes


def _need(passes: Passes, what: str) -> None:
    if not passes:
        raise ValueError(f"{what}: no passes given")


def seeds_of(*variants: BySeed) -> list[int]:
    """The seeds, which must be the same for every variant, each with at least one pass."""
    if not variants or not variants[0]:
        raise ValueError("no seeds given")
    seeds = sorted(variants[0])
    for v in variants[1:]:
        if sorted(v) != seeds:
            raise ValueError(f"the variants cover different seeds: {seeds} and {sorted(v)}")
    for v in variants:
        for s in seeds:
            _need(v[s], f"seed {s}")
    return seeds


def all_passes(by_seed: BySeed) -> list[InitPass]:
    """Every pass of every seed, for figures (never for a decision)."""
    return [p for s in sorted(by_seed) for p in by_seed[s]]


def _ratio(a: float, b: float, what: str) -> float:
    if not (a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"{what}: needs two positive finite values, got {a!r} and {b!r}")
    return float(a / b)


def _per_seed(fn: Callable, seeds: Sequence[int], *variants: BySeed) -> list:
    return [fn(*(v[s] for v in variants)) for s in seeds]


def _fmt(values: Sequence[float], spec: str = ".3g", prefix: str = "") -> str:
    return ", ".join(f"{prefix}{v:{spec}}" for v in values)


def _seed_note(seeds: Sequence[int]) -> str:
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"


def _pooled_grad(passes: Passes, layer: int) -> np.ndarray:
    _need(passes, f"layer {layer}")
    return np.concatenate([p.weight_grad[layer].ravel() for p in passes])


# --- §3.1, Fig. 2 -------------------------------------------------------------------------------

def grad_scale_seed(none: Passes, bn: Passes, layer: int) -> dict:
    """One seed: none/BN ratio of the mean and of the median |∂L/∂K| over its batches."""
    g_none, g_bn = np.abs(_pooled_grad(none, layer)), np.abs(_pooled_grad(bn, layer))
    return {"mean": _ratio(g_none.mean(), g_bn.mean(), "mean |grad| ratio"),
            "median": _ratio(np.median(g_none), np.median(g_bn), "median |grad| ratio"),
            "mean_abs": {"none": float(g_none.mean()), "batch": float(g_bn.mean())}}


def grad_scale(none: BySeed, bn: BySeed, layer: int, thresholds: Thresholds) -> Readout:
    """B-GRAD-SCALE: |∂L/∂K| of one conv kernel, none / BN per seed, by mean and by median; each
    ratio must reach ``min_ratio`` ("about two orders of magnitude", read as at least one), on a log axis."""
    min_ratio = thresholds["min_ratio"]
    seeds = seeds_of(none, bn)
    per = _per_seed(lambda a, b: grad_scale_seed(a, b, layer), seeds, none, bn)
    mean, median = [r["mean"] for r in per], [r["median"] for r in per]
    return Readout({"layer": layer, "seeds": seeds, "ratio": {"mean": mean, "median": median},
                    "mean_abs": {n: [r["mean_abs"][n] for r in per] for n in ("none", "batch")}},
                   (Condition.at_least("none/BN mean |grad|", mean, min_ratio, log=True),
                    Condition.at_least("none/BN median |grad|", median, min_ratio, log=True)),
                   f"layer {layer}, {_seed_note(seeds)}: none/BN |grad| {_fmt(mean, prefix='×')} (mean), "
                   f"{_fmt(median, prefix='×')} (median)")


def excess_kurtosis(values: np.ndarray) -> float:
    return float(scipy.stats.kurtosis(np.asarray(values, dtype=float).ravel(), fisher=True))


def grad_tails(none: BySeed, bn: BySeed, layer: int, thresholds: Thresholds) -> Readout:
    """B-GRAD-TAILS: excess kurtosis of the kernel gradient (scale-free), mean over a seed's
    batches. Heavier tails without BN: the kurtosis (the fourth standardized moment, excess + 3,
    always ≥ 1) none / BN, paired by seed, above ``min_kurtosis_ratio`` (1) on the seeds' interval,
    on a log axis as every ratio of scales (tail statistics spread over orders of magnitude from
    seed to seed)."""
    seeds = seeds_of(none, bn)
    k_none = [float(np.mean([excess_kurtosis(p.weight_grad[layer]) for p in none[s]])) for s in seeds]
    k_bn = [float(np.mean([excess_kurtosis(p.weight_grad[layer]) for p in bn[s]])) for s in seeds]
    if not all(map(math.isfinite, k_none + k_bn)):
        raise ValueError(f"layer {layer}: kurtosis undefined (a constant gradient?)")
    ratio = [_ratio(a + 3, b + 3, "kurtosis none / BN") for a, b in zip(k_none, k_bn)]
    return Readout({"layer": layer, "seeds": seeds, "excess_kurtosis": {"none": k_none, "batch": k_bn}, "kurtosis_ratio": ratio},
                   (Condition.at_least("kurtosis none / BN", ratio, thresholds["min_kurtosis_ratio"], log=True, strict=True),),
                   f"layer {layer}, {_seed_note(seeds)}: excess kurtosis none {_fmt(k_none)} vs BN {_fmt(k_bn)}")


# --- §3.1, Fig. 3 -------------------------------------------------------------------------------

def layer_moments(passes: Passes) -> dict[str, np.ndarray]:
    """Per conv layer: the channel-average |mean| and variance of the conv output, averaged over
    passes, and mean/std over channels of their log10 (Fig. 3's points and error bars); the
    largest top-layer channel's |mean|, variance and standard deviation."""
    _need(passes, "moments")
    layers = passes[0].layers
    out = {"layers": np.array(layers)}
    for name, attr, f in (("abs_mean", "channel_mean", np.abs), ("var", "channel_var", lambda v: v)):
        per = [np.array([f(getattr(p, attr)[k]) for p in passes]) for k in layers]  # per layer: (passes, channels)
        logs = [np.log10(np.maximum(v, 1e-30)) for v in per]
        out[name] = np.array([v.mean() for v in per])
        out[f"log10_{name}_mean"], out[f"log10_{name}_std"] = np.array([v.mean() for v in logs]), np.array([v.std() for v in logs])
        out[f"{name}_max_last"] = float(per[-1].max())
    out["std_max_last"] = math.sqrt(out["var_max_last"])
    return out


def depth_growth(moments: dict) -> dict[str, dict]:
    """Log-linear fit of the layer averages against the layer number: slope per layer (log10),
    its 95% interval, the fitted growth factor over the whole depth, and last/first."""
    x = moments["layers"]
    out = {}
    for name in ("abs_mean", "var"):
        y = np.log10(np.maximum(moments[name], 1e-30))
        fit = fitted_slope(x, y)
        out[name] = {**fit, "fitted_growth": float(10 ** (fit["slope"] * (x[-1] - x[0]))),
                     "last_over_first": float(np.maximum(moments[name][-1], 1e-30) / np.maximum(moments[name][0], 1e-30))}
    return out


def decades_outside(value: float, band: tuple[float, float]) -> float:
    """Signed distance in decades of ``value`` from the band [lo, hi]: ≤ 0 inside, > 0 outside."""
    v = math.log10(max(value, 1e-300))
    return max(math.log10(band[0]) - v, v - math.log10(band[1]))


def growth_conditions(growth: Sequence[dict], who: str, min_growth: float, min_slope: float) -> tuple[Condition, ...]:
    """B-MOM-DEPTH's growth criterion for none, per seed: the log-linear fit's slope per layer
    (log10) above ``min_slope`` (0: growing) and last/first ≥ ``min_growth``, for |mean| and for
    the variance, each on the seeds' interval."""
    conds = []
    for name, label in (("abs_mean", "|mean|"), ("var", "variance")):
        conds.append(Condition.at_least(f"{who}: {label} fit slope per layer (log10)", [g[name]["slope"] for g in growth],
                                        min_slope, strict=True))
        conds.append(Condition.at_least(f"{who}: {label} last/first layer", [g[name]["last_over_first"] for g in growth],
                                        min_growth, log=True))
    return tuple(conds)


def moment_depth(none: BySeed, bn: BySeed, thresholds: Thresholds) -> Readout:
    """B-MOM-DEPTH: none grows roughly exponentially (fit slope > ``min_fit_slope`` and last/first ≥
    ``min_growth``, for |mean| and variance) up to the paper's ~1e2 at the top: the largest
    top-layer channel's |mean| or its standard deviation (magnitudes, so the std, not the variance)
    in the band ``top_scale``, decided on the smaller of the two signed distances in decades from
    the band, at most ``max_decades_outside`` (0: inside); BN stays roughly constant (fitted growth
    over the depth ≤ ``max_bn_growth`` for both)."""
    min_growth, max_bn_growth, top_scale = thresholds["min_growth"], thresholds["max_bn_growth"], thresholds["top_scale"]
    seeds = seeds_of(none, bn)
    m_none, m_bn = [layer_moments(none[s]) for s in seeds], [layer_moments(bn[s]) for s in seeds]
    g_none, g_bn = [depth_growth(m) for m in m_none], [depth_growth(m) for m in m_bn]
    top_mean, top_std = [m["abs_mean_max_last"] for m in m_none], [m["std_max_last"] for m in m_none]
    outside = [min(decades_outside(a, top_scale), decades_outside(b, top_scale)) for a, b in zip(top_mean, top_std)]
    band = f"[{top_scale[0]:g}, {top_scale[1]:g}]"
    conditions = (*growth_conditions(g_none, "none", min_growth, thresholds["min_fit_slope"]),
                  Condition.at_most(f"none: decades of the top channel's |mean| or std outside {band}", outside,
                                    thresholds["max_decades_outside"]),
                  *(Condition.at_most(f"BN: {label} fitted growth over the depth", [g[name]["fitted_growth"] for g in g_bn],
                                      max_bn_growth, log=True) for name, label in (("abs_mean", "|mean|"), ("var", "variance"))))
    return Readout({"seeds": seeds, "growth": {"none": g_none, "batch": g_bn},
                    "top_channel_none": {"abs_mean": top_mean, "std": top_std, "var": [m["var_max_last"] for m in m_none],
                                         "decades_outside": outside}},
                   conditions,
                   f"{_seed_note(seeds)}: none |mean| last/first {_fmt([g['abs_mean']['last_over_first'] for g in g_none], prefix='×')}, "
                   f"var {_fmt([g['var']['last_over_first'] for g in g_none], prefix='×')}; largest top channel |mean| "
                   f"{_fmt(top_mean)}, std {_fmt(top_std)}; BN fitted growth |mean| "
                   f"{_fmt([g['abs_mean']['fitted_growth'] for g in g_bn], prefix='×')}, "
                   f"var {_fmt([g['var']['fitted_growth'] for g in g_bn], prefix='×')}")


# --- §3.2, Fig. 4; App. L, Fig. 21 --------------------------------------------------------------

def output_gradients(p: InitPass) -> np.ndarray:
    """∂L_b/∂OUTPUT(b, j) with L_b the cross-entropy of image b: softmax − one-hot, (B, classes)."""
    z = np.asarray(p.logits, dtype=float)
    z = z - z.max(1, keepdims=True)
    prob = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    return prob - np.eye(z.shape[1])[p.labels]


def favoured_class(passes: Passes) -> int:
    """The class the network predicts most often over the passes (one seed's: one network)."""
    _need(passes, "favoured class")
    counts = sum(np.bincount(np.asarray(p.logits).argmax(1), minlength=np.asarray(p.logits).shape[1]) for p in passes)
    return int(np.argmax(counts))


def output_bias_seed(passes: Passes) -> dict:
    """One seed: its favoured class j′, the share of images predicted j′, and over its images
    whose label is not j′ the mean of ∂L_b/∂OUTPUT(b, j′) = p_b(j′) and its coefficient of
    variation. The spread is computed from 1 − p_b(j′) (the other classes' softmax mass, exact
    near p = 1). The CV can be exactly 0: an unnormalized net's logits can agree for every image
    to float32 precision."""
    j = favoured_class(passes)
    p_j, rest, shares = [], [], []
    for p in passes:
        z = np.asarray(p.logits, dtype=float)
        logp = z - scipy.special.logsumexp(z, axis=1, keepdims=True)
        keep = np.asarray(p.labels) != j
        p_j.append(np.exp(logp[keep, j]))
        rest.append(np.exp(np.delete(logp[keep], j, axis=1)).sum(1))
        shares.append(float(np.mean(z.argmax(1) == j)))
    p_j, rest = np.concatenate(p_j), np.concatenate(rest)
    if p_j.size < 2:
        raise ValueError(f"favoured class {j}: fewer than two images with another label")
    mean = float(p_j.mean())
    if not mean > 0:
        raise ValueError(f"favoured class {j}: its softmax mass underflows to 0, the CV is undefined")
    return {"favoured_class": j, "cv": float(rest.std() / mean), "mean_grad": mean,
            "share_predicted": float(np.mean(shares))}


def cv_share(cv_none: float, cv_other: float) -> float:
    """none's CV over another net's, capped at 1: above 1 (the other net no more input-dependent
    than none) fails "≥ 10× none's" whatever its size, and two zero CVs count as equal."""
    if not (cv_none >= 0 and cv_other >= 0):
        raise ValueError(f"CVs must be non-negative, got {cv_none!r} and {cv_other!r}")
    return 1.0 if cv_other == 0 else min(cv_none / cv_other, 1.0)


def output_bias(none: BySeed, bn: BySeed, thresholds: Thresholds) -> Readout:
    """B-OUT-BIAS: without BN, ∂L_b/∂OUTPUT(b, j′) is nearly the same for all b (CV ≤ ``max_cv``)
    and large (mean ≥ ``min_mean``, most of the softmax mass on j′); with BN it is input-dependent
    (CV ≥ ``min_cv_factor`` × none's). j′ is found per seed and per network.

    The unnormalized net's CV can be exactly 0 (see :func:`output_bias_seed`), which no log axis
    holds and which makes BN/none infinite, so both CV conditions are linear and bounded: none's
    CV ≤ ``max_cv``, and none's CV / BN's ≤ 1 / ``min_cv_factor`` (:func:`cv_share`), the same
    threshold written so that a zero CV stays finite."""
    max_cv, min_mean, cv_factor = thresholds["max_cv"], thresholds["min_mean"], thresholds["min_cv_factor"]
    seeds = seeds_of(none, bn)
    s_none, s_bn = [output_bias_seed(none[s]) for s in seeds], [output_bias_seed(bn[s]) for s in seeds]
    cv_none, cv_bn = [s["cv"] for s in s_none], [s["cv"] for s in s_bn]
    share = [cv_share(a, b) for a, b in zip(cv_none, cv_bn)]
    return Readout({"seeds": seeds, "none": s_none, "batch": s_bn, "none_over_bn_cv": share},
                   (Condition.at_most("none: CV of ∂L_b/∂z_j′", cv_none, max_cv),
                    Condition.at_least("none: mean ∂L_b/∂z_j′", [s["mean_grad"] for s in s_none], min_mean),
                    Condition.at_most("none CV / BN CV", share, 1 / cv_factor)),
                   f"{_seed_note(seeds)}: j′ none {_fmt([s['favoured_class'] for s in s_none], 'd')}, "
                   f"BN {_fmt([s['favoured_class'] for s in s_bn], 'd')}; CV none {_fmt(cv_none)} (mean "
                   f"{_fmt([s['mean_grad'] for s in s_none])}; {_fmt([s['share_predicted'] for s in s_none], '.0%')} "
                   f"predicted j′), BN {_fmt(cv_bn)} ({_fmt([s['share_predicted'] for s in s_bn], '.0%')} predicted j′)")


def class_mask_ratio(passes: Passes) -> dict:
    """One seed: favoured class's mean |kernel gradient| over the median of the other classes'
    (App. L), from the class gradients averaged over the seed's masked batches."""
    j = favoured_class(passes)
    if any(p.class_grad is None for p in passes):
        raise ValueError("these passes ran without class masking (mask_layer)")
    grad = np.mean([p.class_grad for p in passes], 0)
    return {"favoured_class": j, "ratio": _ratio(float(grad[j]), float(np.median(np.delete(grad, j))), "favoured / median class gradient"),
            "class_grad": grad}


def output_mask(none: BySeed, bn: BySeed, thresholds: Thresholds) -> Readout:
    """B-OUT-MASK: the favoured class's kernel gradient is ≥ ``min_ratio`` × the median other
    class's without BN ("at least one order of magnitude"), and not (strictly below ``min_ratio``)
    with BN, both on a log axis; j′ per seed and per network."""
    min_ratio = thresholds["min_ratio"]
    seeds = seeds_of(none, bn)
    r_none, r_bn = [class_mask_ratio(none[s]) for s in seeds], [class_mask_ratio(bn[s]) for s in seeds]
    return Readout({"seeds": seeds, "none": r_none, "batch": r_bn},
                   (Condition.at_least("none: favoured / median other class", [r["ratio"] for r in r_none], min_ratio, log=True),
                    Condition.at_most("BN: favoured / median other class", [r["ratio"] for r in r_bn], min_ratio, log=True, strict=True)),
                   f"{_seed_note(seeds)}: j′ none {_fmt([r['favoured_class'] for r in r_none], 'd')}, BN "
                   f"{_fmt([r['favoured_class'] for r in r_bn], 'd')}; favoured / median other none "
                   f"{_fmt([r['ratio'] for r in r_none], prefix='×')}, BN {_fmt([r['ratio'] for r in r_bn], prefix='×')}")


# --- §3.3, Table 1 ------------------------------------------------------------------------------

def table1(passes: Passes, layers: Sequence[int]) -> dict[int, dict[str, float]]:
    """Table 1 rows (mean over passes)."""
    _need(passes, "Table 1")
    return {k: {c: float(np.mean([p.table1[k][c] for p in passes])) for c in passes[0].table1[k]} for k in layers}


def alignment_ratios(rows: dict[int, dict[str, float]]) -> dict[str, dict]:
    """Σ_bxy|d| over each other column, per layer and as a geometric mean over the layers."""
    out = {}
    for col in next(iter(rows.values())):
        if col == "sum_bxy_abs":
            continue
        per = {k: _ratio(r["sum_bxy_abs"], r[col], f"layer {k}: Σ|d| / {col}") for k, r in rows.items()}
        out[col] = {"per_layer": per, "geometric_mean": float(np.exp(np.mean(np.log(list(per.values())))))}
    return out


def t1_align(none: BySeed, bn: BySeed, layers: Sequence[int], thresholds: Thresholds) -> Readout:
    """B-T1-ALIGN: Σ_bxy|d| / |Σ_bxy d| (geometric mean over the layers, one seed's Table 1) ≤
    ``max_none`` without BN ("within a factor 2 or less" to one significant figure: the paper's own
    rows give 2.13), ≥ ``min_bn`` with BN, on a log axis. The partial sums (over b, over xy, over
    b,i,j) are reported beside it; ``table`` (mean over every pass) is for the figure."""
    max_none, min_bn = thresholds["max_none"], thresholds["min_bn"]
    seeds = seeds_of(none, bn)
    a_none = [alignment_ratios(table1(none[s], layers)) for s in seeds]
    a_bn = [alignment_ratios(table1(bn[s], layers)) for s in seeds]
    r_none = [a["abs_sum_bxy"]["geometric_mean"] for a in a_none]
    r_bn = [a["abs_sum_bxy"]["geometric_mean"] for a in a_bn]
    where = ", ".join(map(str, layers))
    return Readout({"seeds": seeds, "ratios": {"none": a_none, "batch": a_bn}, "abs_sum_bxy": {"none": r_none, "batch": r_bn},
                    "table": {"none": table1(all_passes(none), layers), "batch": table1(all_passes(bn), layers)}},
                   (Condition.at_most("none: Σ|d| / |Σd|", r_none, max_none, log=True),
                    Condition.at_least("BN: Σ|d| / |Σd|", r_bn, min_bn, log=True)),
                   f"Σ|d| / |Σd|, geometric mean over layers {where}, {_seed_note(seeds)}: none {_fmt(r_none, prefix='×')}, "
                   f"BN {_fmt(r_bn, prefix='×')}")


def t1_trend(none: BySeed, layers: Sequence[int], column: str, thresholds: Thresholds) -> Readout:
    """R1-T1-TREND: one Table 1 column of the unnormalized net increases over the layers: per
    seed, its smallest step from one probed layer to the next, in decades (log10 of the ratio),
    above ``min_step_decades`` (0: strictly increasing) on the seeds' interval."""
    seeds = seeds_of(none)
    per = [[rows[k][column] for k in layers] for rows in (table1(none[s], layers) for s in seeds)]
    where = ", ".join(map(str, layers))
    steps = [min(math.log10(_ratio(b, a, f"{column} from layer to layer")) for a, b in zip(v, v[1:])) for v in per]
    return Readout({"column": column, "seeds": seeds, "per_seed": {s: dict(zip(layers, v)) for s, v in zip(seeds, per)},
                    "mean": dict(zip(layers, np.mean(per, 0).tolist())), "smallest_step_decades": steps},
                   (Condition.at_least(f"{column}: smallest step up over layers {where} (decades)", steps,
                                       thresholds["min_step_decades"], strict=True),),
                   f"{column} at layers {where}: " + "; ".join(f"seed {s} " + " → ".join(f"{v:.3g}" for v in vals)
                                                             for s, vals in zip(seeds, per)))


# --- §3.5, Fig. 7 -------------------------------------------------------------------------------

def channel_matrix(passes: Passes, layer: int) -> np.ndarray:
    """Σ_ij |Σ_bxy d| indexed by (co, ci), averaged over passes (Fig. 7)."""
    _need(passes, "channel matrix")
    return np.mean([np.abs(p.weight_grad[layer]).sum((2, 3)) for p in passes], 0)


def top_energy_share(m: np.ndarray) -> float:
    s = np.linalg.svd(m, compute_uv=False)
    return float(s[0] ** 2 / np.sum(s**2))


def low_rank_excess(m: np.ndarray, permutations: int = 200, seed: int = 0) -> dict:
    """Top singular value's energy share, and that of the same entries shuffled (which keeps
    their distribution and destroys row/column structure): a non-negative matrix always has a
    large first singular value, so the structure is the excess over the shuffled copies."""
    if not np.any(m):
        raise ValueError("low rank: the channel matrix is zero")
    rng = np.random.default_rng(seed)
    share = top_energy_share(m)
    null = np.array([top_energy_share(rng.permutation(m.ravel()).reshape(m.shape)) for _ in range(permutations)])
    return {"share": share, "null_mean": float(null.mean()), "null_max": float(null.max()), "excess": float(share - null.mean())}


def low_rank(none: BySeed, bn: BySeed, layer: int, thresholds: Thresholds) -> Readout:
    """B-LOWRANK: per seed, without BN the top-singular-value share of Fig. 7's matrix exceeds every
    shuffled copy (200, :func:`low_rank_excess`: how many to run, a setting); with BN its excess over
    the shuffled mean is at most ``max_bn_excess_share`` of none's ("disappears", read as halved).
    Both as margins per seed on the seeds' interval: none's share minus the largest shuffle's above
    ``min_share_over_shuffles`` (0), and BN's excess minus ``max_bn_excess_share`` × none's at most
    ``max_bn_excess_margin`` (0)."""
    bn_share = thresholds["max_bn_excess_share"]
    seeds = seeds_of(none, bn)
    s_none = [low_rank_excess(channel_matrix(none[s], layer)) for s in seeds]
    s_bn = [low_rank_excess(channel_matrix(bn[s], layer)) for s in seeds]
    return Readout({"layer": layer, "seeds": seeds, "none": s_none, "batch": s_bn},
                   (Condition.at_least("none: top-σ share − largest shuffled share", [s["share"] - s["null_max"] for s in s_none],
                                       thresholds["min_share_over_shuffles"], strict=True),
                    Condition.at_most(f"BN excess − {bn_share:g} × none's excess", [b["excess"] - a["excess"] * bn_share
                                                                                   for a, b in zip(s_none, s_bn)],
                                      thresholds["max_bn_excess_margin"])),
                   f"layer {layer} top-σ energy share, {_seed_note(seeds)}: none {_fmt([s['share'] for s in s_none], '.3f')} "
                   f"(shuffled ≤ {_fmt([s['null_max'] for s in s_none], '.3f')}, excess {_fmt([s['excess'] for s in s_none], '.3f')}), "
                   f"BN excess {_fmt([s['excess'] for s in s_bn], '.3f')}")
