"""bjorck2018 §3 at initialization: from captured passes (harness.probes.init_probe) to verdicts.

Each function reads one claim off lists of :class:`InitPass` (one per seed × batch) and returns a
:class:`Readout`: the measured values, whether the claim's threshold is met, and a one-line
summary. The thresholds are the ones written in ``claims/bjorck2018_init.yaml`` (fixed from the
paper's words before measuring); keeping the decision here, apart from the test, lets the unit
tests feed it sabotaged statistics (BN replaced by identities) and check that it says "refuted".

Layers are the paper's numbers: conv layers 1..6n+1 (1 = stem, then two per residual block),
fc = 6n+2.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import scipy.stats

from harness.probes.init_probe import InitPass, pre_relu_source
from harness.stats import fitted_slope, strictly_increasing

Passes = Sequence[InitPass]


@dataclasses.dataclass
class Readout:
    values: dict
    holds: bool
    summary: str


def _need(passes: Passes, what: str) -> None:
    if not passes:
        raise ValueError(f"{what}: no passes given")


def _pooled_grad(passes: Passes, layer: int) -> np.ndarray:
    _need(passes, f"layer {layer}")
    return np.concatenate([p.weight_grad[layer].ravel() for p in passes])


# --- §3.1, Fig. 2 -------------------------------------------------------------------------------

def grad_scale(none: Passes, bn: Passes, layer: int, min_ratio: float = 10.0) -> Readout:
    """B-GRAD-SCALE: |∂L/∂K| of one conv kernel, none / BN, by mean and by median."""
    g_none, g_bn = np.abs(_pooled_grad(none, layer)), np.abs(_pooled_grad(bn, layer))
    ratios = {"mean": float(g_none.mean() / g_bn.mean()), "median": float(np.median(g_none) / np.median(g_bn))}
    holds = min(ratios.values()) >= min_ratio
    return Readout({"layer": layer, "ratio": ratios, "mean_abs": {"none": float(g_none.mean()), "batch": float(g_bn.mean())}},
                   holds, f"layer {layer}: none/BN |grad| ×{ratios['mean']:.3g} (mean), ×{ratios['median']:.3g} (median); needs ≥ {min_ratio:g} each")


def excess_kurtosis(values: np.ndarray) -> float:
    return float(scipy.stats.kurtosis(np.asarray(values, dtype=float).ravel(), fisher=True))


def grad_tails(none: Passes, bn: Passes, layer: int) -> Readout:
    """B-GRAD-TAILS: excess kurtosis of the kernel gradient (scale-free), none vs BN, per pass."""
    k_none = [excess_kurtosis(p.weight_grad[layer]) for p in none]
    k_bn = [excess_kurtosis(p.weight_grad[layer]) for p in bn]
    _need(k_none, "none"), _need(k_bn, "batch")
    holds = float(np.mean(k_none)) > float(np.mean(k_bn))
    return Readout({"layer": layer, "excess_kurtosis": {"none": k_none, "batch": k_bn}}, holds,
                   f"layer {layer}: excess kurtosis none {np.mean(k_none):.3g} vs BN {np.mean(k_bn):.3g} (none must be larger)")


# --- §3.1, Fig. 3 -------------------------------------------------------------------------------

def layer_moments(passes: Passes) -> dict[str, np.ndarray]:
    """Per conv layer: the channel-average |mean| and variance of the conv output, averaged over
    passes, and mean/std over channels of their log10 (Fig. 3's points and error bars)."""
    _need(passes, "moments")
    layers = passes[0].layers
    out = {"layers": np.array(layers)}
    for name, attr, f in (("abs_mean", "channel_mean", np.abs), ("var", "channel_var", lambda v: v)):
        per = [np.array([f(getattr(p, attr)[k]) for p in passes]) for k in layers]  # per layer: (passes, channels)
        logs = [np.log10(np.maximum(v, 1e-30)) for v in per]
        out[name] = np.array([v.mean() for v in per])
        out[f"log10_{name}_mean"], out[f"log10_{name}_std"] = np.array([v.mean() for v in logs]), np.array([v.std() for v in logs])
        out[f"{name}_max_last"] = float(per[-1].max())
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
                     "last_over_first": float(moments[name][-1] / moments[name][0])}
    return out


def moment_depth(none: Passes, bn: Passes, min_growth: float = 10.0, max_bn_growth: float = 10.0,
                 top_scale: tuple[float, float] = (10.0, 1e3)) -> Readout:
    """B-MOM-DEPTH: none grows roughly exponentially (slope CI > 0 and last/first ≥ 10, for |mean|
    and variance) up to the paper's ~1e2 at the top (largest channel |mean| or variance within
    [10, 1e3]); BN stays roughly constant (fitted growth over the depth ≤ 10 for both)."""
    m_none, m_bn = layer_moments(none), layer_moments(bn)
    g_none, g_bn = depth_growth(m_none), depth_growth(m_bn)
    grows = all(g["low"] > 0 and g["last_over_first"] >= min_growth for g in g_none.values())
    flat = all(g["fitted_growth"] <= max_bn_growth for g in g_bn.values())
    top = max(m_none["abs_mean_max_last"], m_none["var_max_last"])
    reaches = top_scale[0] <= top <= top_scale[1]
    summary = (f"none: |mean| ×{g_none['abs_mean']['last_over_first']:.3g}, var ×{g_none['var']['last_over_first']:.3g} "
               f"last/first (fit slopes {g_none['abs_mean']['slope']:.3g}, {g_none['var']['slope']:.3g} log10/layer), "
               f"largest top channel {top:.3g}; BN fitted growth |mean| ×{g_bn['abs_mean']['fitted_growth']:.3g}, "
               f"var ×{g_bn['var']['fitted_growth']:.3g} (needs ≤ {max_bn_growth:g})")
    return Readout({"growth": {"none": g_none, "batch": g_bn}, "top_channel_scale_none": top,
                    "none_grows": grows, "bn_flat": flat, "top_reaches_1e2": reaches},
                   grows and flat and reaches, summary)


# --- §3.2, Fig. 4; App. L, Fig. 21 --------------------------------------------------------------

def output_gradients(p: InitPass) -> np.ndarray:
    """∂L_b/∂OUTPUT(b, j) with L_b the cross-entropy of image b: softmax − one-hot, (B, classes)."""
    z = p.logits - p.logits.max(1, keepdims=True)
    prob = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    return prob - np.eye(p.logits.shape[1])[p.labels]


def favoured_class(passes: Passes) -> int:
    """The class the network predicts most often over the passes."""
    _need(passes, "favoured class")
    counts = sum(np.bincount(p.logits.argmax(1), minlength=p.logits.shape[1]) for p in passes)
    return int(np.argmax(counts))


def output_bias_stats(passes: Passes) -> dict:
    """For the favoured class j′: share of images predicted j′, and the coefficient of variation
    across images (whose label is not j′) of ∂L_b/∂OUTPUT(b, j′), with its mean."""
    j = favoured_class(passes)
    cvs, means, shares = [], [], []
    for p in passes:
        g = output_gradients(p)[p.labels != j, j]
        means.append(float(g.mean()))
        cvs.append(float(g.std() / abs(g.mean())) if g.mean() != 0 else math.inf)
        shares.append(float(np.mean(p.logits.argmax(1) == j)))
    return {"favoured_class": j, "cv": float(np.mean(cvs)), "mean_grad": float(np.mean(means)), "share_predicted": float(np.mean(shares))}


def output_bias(none: Passes, bn: Passes, max_cv: float = 0.1, min_mean: float = 0.5, bn_factor: float = 10.0) -> Readout:
    """B-OUT-BIAS: without BN, ∂L_b/∂OUTPUT(b, j′) is nearly the same for all b (CV ≤ 0.1) and large
    (mean ≥ 0.5, i.e. most of the softmax mass on j′); with BN it is input-dependent (CV ≥ 10× none's)."""
    s_none, s_bn = output_bias_stats(none), output_bias_stats(bn)
    holds = s_none["cv"] <= max_cv and s_none["mean_grad"] >= min_mean and s_bn["cv"] >= bn_factor * s_none["cv"]
    return Readout({"none": s_none, "batch": s_bn}, holds,
                   f"CV of ∂L_b/∂z_j′ across the batch: none {s_none['cv']:.3g} (mean {s_none['mean_grad']:.3g}, "
                   f"{s_none['share_predicted']:.0%} predicted j′), BN {s_bn['cv']:.3g} ({s_bn['share_predicted']:.0%} predicted j′); "
                   f"needs none ≤ {max_cv:g} with mean ≥ {min_mean:g}, BN ≥ {bn_factor:g}× none")


def class_mask_ratio(passes: Passes) -> dict:
    """Favoured class's mean |kernel gradient| over the median of the other classes' (App. L)."""
    j = favoured_class(passes)
    ratios = []
    for p in passes:
        if p.class_grad is None:
            raise ValueError("these passes ran without class masking (mask_layer)")
        ratios.append(float(p.class_grad[j] / np.median(np.delete(p.class_grad, j))))
    return {"favoured_class": j, "ratio": float(np.mean(ratios)), "class_grad": np.mean([p.class_grad for p in passes], 0)}


def output_mask(none: Passes, bn: Passes, min_ratio: float = 10.0) -> Readout:
    """B-OUT-MASK: the favoured class's kernel gradient is ≥ 10× the median other class's without
    BN, and not with BN."""
    r_none, r_bn = class_mask_ratio(none), class_mask_ratio(bn)
    holds = r_none["ratio"] >= min_ratio and r_bn["ratio"] < min_ratio
    return Readout({"none": r_none, "batch": r_bn}, holds,
                   f"favoured / median other class: none ×{r_none['ratio']:.3g} (needs ≥ {min_ratio:g}), BN ×{r_bn['ratio']:.3g} (needs < {min_ratio:g})")


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
        per = {k: r["sum_bxy_abs"] / r[col] for k, r in rows.items()}
        out[col] = {"per_layer": per, "geometric_mean": float(np.exp(np.mean(np.log(list(per.values())))))}
    return out


def t1_align(none: Passes, bn: Passes, layers: Sequence[int], max_none: float = 2.0, min_bn: float = 10.0) -> Readout:
    """B-T1-ALIGN: Σ_bxy|d| / |Σ_bxy d| (geometric mean over the layers) ≤ 2 without BN, ≥ 10 with BN.
    The partial sums (over b, over xy, over b,i,j) are reported beside it."""
    a_none, a_bn = alignment_ratios(table1(none, layers)), alignment_ratios(table1(bn, layers))
    r_none, r_bn = a_none["abs_sum_bxy"]["geometric_mean"], a_bn["abs_sum_bxy"]["geometric_mean"]
    holds = r_none <= max_none and r_bn >= min_bn
    return Readout({"ratios": {"none": a_none, "batch": a_bn}, "table": {"none": table1(none, layers), "batch": table1(bn, layers)}},
                   holds, f"Σ|d| / |Σd| over layers {', '.join(map(str, layers))}: none ×{r_none:.3g} (needs ≤ {max_none:g}), BN ×{r_bn:.3g} (needs ≥ {min_bn:g})")


def t1_trend(none: Passes, layers: Sequence[int], column: str) -> Readout:
    """R1-T1-TREND: one Table 1 column of the unnormalized net, strictly increasing over the layers."""
    rows = table1(none, layers)
    values = [rows[k][column] for k in layers]
    holds = strictly_increasing(values)
    return Readout({"column": column, "values": dict(zip(layers, values))}, holds,
                   f"{column} at layers {', '.join(map(str, layers))}: " + " → ".join(f"{v:.3g}" for v in values)
                   + (" (increasing)" if holds else " (not increasing)"))


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
    rng = np.random.default_rng(seed)
    share = top_energy_share(m)
    null = np.array([top_energy_share(rng.permutation(m.ravel()).reshape(m.shape)) for _ in range(permutations)])
    return {"share": share, "null_mean": float(null.mean()), "null_max": float(null.max()), "excess": float(share - null.mean())}


def low_rank(none: Passes, bn: Passes, layer: int) -> Readout:
    """B-LOWRANK: without BN the top-singular-value share of Fig. 7's matrix exceeds every shuffled
    copy; with BN its excess over the shuffled mean is at most half of none's ("disappears")."""
    s_none, s_bn = low_rank_excess(channel_matrix(none, layer)), low_rank_excess(channel_matrix(bn, layer))
    holds = s_none["share"] > s_none["null_max"] and s_bn["excess"] <= s_none["excess"] / 2
    return Readout({"layer": layer, "none": s_none, "batch": s_bn}, holds,
                   f"layer {layer} top-σ energy share: none {s_none['share']:.3f} (shuffled ≤ {s_none['null_max']:.3f}, excess {s_none['excess']:.3f}), "
                   f"BN {s_bn['share']:.3f} (excess {s_bn['excess']:.3f}, needs ≤ half of none's)")


# --- App. I, Figs. 18 and 19 --------------------------------------------------------------------

def mean_vs_grad(passes: Passes, layer: int, depth: int) -> dict:
    """Per weight of ``layer``: the pre-ReLU mean of its input channel and |∂L/∂K| (pooled)."""
    src = pre_relu_source(layer, depth)
    xs, ys = [], []
    for p in passes:
        g = np.abs(p.weight_grad[layer])
        xs.append(np.broadcast_to(p.slot_mean[src][None, :, None, None], g.shape).ravel())
        ys.append(g.ravel())
    x, y = np.concatenate(xs), np.concatenate(ys)
    return {"channel_mean": x, "abs_grad": y, "spearman": float(scipy.stats.spearmanr(x, y)[0])}


def mean_grad(none: Passes, bn: Passes, layer: int, depth: int, large: float = 0.5, weak: float = 0.3) -> Readout:
    """B-MEAN-GRAD: rank correlation between input-channel mean and |grad| is large (≥ 0.5, Cohen)
    without BN and below medium (|ρ| < 0.3) with BN."""
    s_none, s_bn = mean_vs_grad(none, layer, depth), mean_vs_grad(bn, layer, depth)
    rho_none, rho_bn = s_none["spearman"], s_bn["spearman"]
    holds = rho_none >= large and abs(rho_bn) < weak
    return Readout({"layer": layer, "spearman": {"none": rho_none, "batch": rho_bn}}, holds,
                   f"layer {layer}: Spearman ρ(channel mean, |grad|) none {rho_none:.3f} (needs ≥ {large:g}), BN {rho_bn:.3f} (needs |ρ| < {weak:g})")


def channel_grad_scales(passes: Passes) -> tuple[np.ndarray, np.ndarray]:
    """Per conv layer: mean over channels of |Σ_bxy ∂L/∂(slot output)| (bias / β gradient)."""
    _need(passes, "channel gradients")
    layers = passes[0].layers
    return np.array(layers), np.array([np.mean([np.abs(p.channel_grad[k]).mean() for p in passes]) for k in layers])


def layer_spread(passes: Passes) -> dict:
    layers, scale = channel_grad_scales(passes)
    third = len(layers) // 3
    return {"log10_range": float(np.log10(scale.max() / scale.min())),
            "early_over_late": float(scale[:third].mean() / scale[-third:].mean()), "scale": scale, "layers": layers}


def layer_grad(none: Passes, bn: Passes) -> Readout:
    """B-LAYER-GRAD: without BN, channel-gradient scales span ≥ 1 decade across layers and are
    larger in the first third than in the last; with BN they span at most half as many decades."""
    s_none, s_bn = layer_spread(none), layer_spread(bn)
    holds = s_none["log10_range"] >= 1 and s_none["early_over_late"] > 1 and s_bn["log10_range"] <= s_none["log10_range"] / 2
    return Readout({"none": {k: s_none[k] for k in ("log10_range", "early_over_late")},
                    "batch": {k: s_bn[k] for k in ("log10_range", "early_over_late")}}, holds,
                   f"decades spanned across layers: none {s_none['log10_range']:.2f} (early/late ×{s_none['early_over_late']:.3g}), "
                   f"BN {s_bn['log10_range']:.2f}; needs none ≥ 1 with early > late, BN ≤ half of none")


# --- App. F, Figs. 13/14 ------------------------------------------------------------------------

def one_signed_share(passes: Passes, layer: int, cut: float = 0.95) -> float:
    """Share of channels whose pre-ReLU activation has one sign for ≥ 95% of (b, x, y): always on
    or always off after the ReLU."""
    f = np.concatenate([p.activations[layer].positive_fraction for p in passes])
    return float(np.mean((f >= cut) | (f <= 1 - cut)))


def act_hist(none: Passes, bn: Passes, layers: Sequence[int], min_share: float = 0.25, max_bn: float = 0.05) -> Readout:
    """B-ACT-HIST: without BN the share of one-signed channels grows from the first probed layer to
    the deepest and is ≥ 25% there; with BN it is ≤ 5% at every probed layer."""
    s_none = {k: one_signed_share(none, k) for k in layers}
    s_bn = {k: one_signed_share(bn, k) for k in layers}
    deepest = s_none[layers[-1]]
    holds = deepest > s_none[layers[0]] and deepest >= min_share and max(s_bn.values()) <= max_bn
    bimod = {n: {k: float(np.median(np.concatenate([p.activations[k].bimodality for p in ps]))) for k in layers}
             for n, ps in (("none", none), ("batch", bn))}
    return Readout({"one_signed_share": {"none": s_none, "batch": s_bn}, "median_bimodality": bimod}, holds,
                   "one-signed channels, layers " + ", ".join(map(str, layers)) + ": none "
                   + ", ".join(f"{v:.0%}" for v in s_none.values()) + "; BN " + ", ".join(f"{v:.0%}" for v in s_bn.values())
                   + f" (needs none growing to ≥ {min_share:.0%}, BN ≤ {max_bn:.0%})")


# --- §3.1, App. G -------------------------------------------------------------------------------

def top_grad(none: Passes, bn: Passes, top: Passes, layer: int, within: float = 3.0) -> Readout:
    """B-TOP-GRAD: BN on top only gives a median |kernel gradient| within 3× of full BN's."""
    med = {n: float(np.median(np.abs(_pooled_grad(ps, layer)))) for n, ps in (("none", none), ("batch", bn), ("top", top))}
    factor = med["top"] / med["batch"]
    holds = 1 / within <= factor <= within
    return Readout({"layer": layer, "median_abs_grad": med, "top_over_bn": factor, "none_over_top": med["none"] / med["top"]}, holds,
                   f"layer {layer} median |grad|: none {med['none']:.3g}, BN {med['batch']:.3g}, top-only {med['top']:.3g} "
                   f"(top/BN ×{factor:.3g}, needs within ×{within:g})")


# --- beyond the paper ---------------------------------------------------------------------------

def bias_fix(none: Passes, fixed: Passes, bn_factor: float = 10.0, min_growth: float = 10.0) -> Readout:
    """X-BIASFIX: after equalizing the class biases the output gradient is input-dependent (CV of
    ∂L_b/∂z_j′ ≥ 10× the unfixed net's, B-OUT-BIAS's BN criterion), while the activation moments
    still grow (B-MOM-DEPTH's none criterion)."""
    s_none, s_fixed = output_bias_stats(none), output_bias_stats(fixed)
    growth = depth_growth(layer_moments(fixed))
    grows = all(g["low"] > 0 and g["last_over_first"] >= min_growth for g in growth.values())
    removed = s_fixed["cv"] >= bn_factor * s_none["cv"]
    return Readout({"none": s_none, "bias_fixed": s_fixed, "growth_bias_fixed": growth, "bias_removed": removed, "still_grows": grows},
                   removed and grows,
                   f"CV of ∂L_b/∂z_j′: none {s_none['cv']:.3g} → fixed {s_fixed['cv']:.3g} (needs ≥ {bn_factor:g}×); "
                   f"fixed net's |mean| ×{growth['abs_mean']['last_over_first']:.3g}, var ×{growth['var']['last_over_first']:.3g} last/first (needs ≥ {min_growth:g})")


def radial_cosines(passes: Passes) -> dict[int, float]:
    """cos(mean gradient over the passes, weight) per conv layer; the passes share one model."""
    _need(passes, "radial")
    return {k: float(np.sum(np.mean([p.weight_grad[k] for p in passes], 0) * passes[0].weight[k])
                     / (np.linalg.norm(np.mean([p.weight_grad[k] for p in passes], 0)) * np.linalg.norm(passes[0].weight[k])))
            for k in passes[0].layers}


def radial(none: Passes, bn: Passes) -> Readout:
    """X-RADIAL: the batch-averaged gradient of the unnormalized net points mostly along the weights:
    median over conv layers of |cos(ḡ, w)| > 1/√2 (radial component larger than tangential)."""
    c_none, c_bn = radial_cosines(none), radial_cosines(bn)
    med_none, med_bn = float(np.median(np.abs(list(c_none.values())))), float(np.median(np.abs(list(c_bn.values()))))
    return Readout({"median_abs_cos": {"none": med_none, "batch": med_bn}, "cos_none": c_none, "cos_batch": c_bn},
                   med_none > 1 / math.sqrt(2),
                   f"median |cos(mean gradient, w)| over conv layers: none {med_none:.3g} (needs > 0.707), BN {med_bn:.3g}")


def residual_ratio(passes: Passes) -> np.ndarray:
    _need(passes, "residual")
    return np.mean([p.branch_var / p.skip_var for p in passes], 0)


def residual_scale(none: Passes, bn: Passes, band: tuple[float, float] = (-1.5, -0.5), flat: float = 0.5) -> Readout:
    """X-RESIDUAL-SCALE: with BN, branch/skip variance falls like 1/block (log-log slope in
    [−1.5, −0.5]); without BN it does not (|slope| < 0.5)."""
    r_none, r_bn = residual_ratio(none), residual_ratio(bn)
    idx = np.log10(np.arange(1, len(r_bn) + 1))
    s_none, s_bn = fitted_slope(idx, np.log10(r_none)), fitted_slope(idx, np.log10(r_bn))
    holds = band[0] <= s_bn["slope"] <= band[1] and abs(s_none["slope"]) < flat
    return Readout({"slope": {"none": s_none, "batch": s_bn}, "ratio_last_block": {"none": float(r_none[-1]), "batch": float(r_bn[-1])}},
                   holds, f"log-log slope of branch/skip variance over blocks: BN {s_bn['slope']:.3g} (needs in [{band[0]:g}, {band[1]:g}]), "
                   f"none {s_none['slope']:.3g} (needs |·| < {flat:g}); last block BN {r_bn[-1]:.3g}, none {r_none[-1]:.3g}")
