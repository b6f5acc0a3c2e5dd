"""Readouts of the init claims from the paper's appendices (App. F, G and I) and from beyond the
paper (the output-bias fix, radial gradients, residual scale, the net without skips): seed-level
conditions from the per-pass records, as in :mod:`harness.readouts.init` (whose helpers they share).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.special
import scipy.stats

from harness.claimkit.evidence import Condition, Readout
from harness.claimkit.registry import Thresholds
from harness.probes.init_probe import pre_relu_source
from harness.stats import fitted_slope

from harness.readouts.init import (BySeed, Passes, _fmt, _need, _pooled_grad, _ratio, _seed_note, all_passes, cv_share,
                                   depth_growth, growth_conditions, layer_moments, output_bias_seed, seeds_of)


# --- App. I, Figs. 18 and 19 --------------------------------------------------------------------

def mean_vs_grad(passes: Passes, layer: int, depth: int) -> dict:
    """Per weight of ``layer``: the pre-ReLU mean of its input channel and |∂L/∂K| (over the
    passes given), and their Spearman ρ (0 when either is constant: no dependence to rank)."""
    _need(passes, "mean vs grad")
    src = pre_relu_source(layer, depth)
    xs, ys = [], []
    for p in passes:
        g = np.abs(p.weight_grad[layer])
        xs.append(np.broadcast_to(p.slot_mean[src][None, :, None, None], g.shape).ravel())
        ys.append(g.ravel())
    x, y = np.concatenate(xs), np.concatenate(ys)
    rho = float(scipy.stats.spearmanr(x, y)[0]) if np.ptp(x) > 0 and np.ptp(y) > 0 else 0.0
    return {"channel_mean": x, "abs_grad": y, "spearman": rho}


def mean_grad(none: BySeed, bn: BySeed, layer: int, depth: int, thresholds: Thresholds) -> Readout:
    """B-MEAN-GRAD: per seed, the rank correlation between input-channel mean and |grad| is large
    without BN (ρ ≥ ``min_spearman_none``, Cohen's large) and below medium with BN (|ρ| strictly
    below ``max_abs_spearman_bn``)."""
    large, weak = thresholds["min_spearman_none"], thresholds["max_abs_spearman_bn"]
    seeds = seeds_of(none, bn)
    rho_none = [mean_vs_grad(none[s], layer, depth)["spearman"] for s in seeds]
    rho_bn = [mean_vs_grad(bn[s], layer, depth)["spearman"] for s in seeds]
    return Readout({"layer": layer, "seeds": seeds, "spearman": {"none": rho_none, "batch": rho_bn}},
                   (Condition.at_least("none: Spearman ρ", rho_none, large),
                    Condition.at_most("BN: |Spearman ρ|", [abs(r) for r in rho_bn], weak, strict=True)),
                   f"layer {layer}, {_seed_note(seeds)}: Spearman ρ(channel mean, |grad|) none {_fmt(rho_none, '.3f')}, "
                   f"BN {_fmt(rho_bn, '.3f')}")


def channel_grad_scales(passes: Passes) -> tuple[np.ndarray, np.ndarray]:
    """Per conv layer: mean over channels of |Σ_bxy ∂L/∂(slot output)| (bias / β gradient)."""
    _need(passes, "channel gradients")
    layers = passes[0].layers
    return np.array(layers), np.array([np.mean([np.abs(p.channel_grad[k]).mean() for p in passes]) for k in layers])


def layer_spread(passes: Passes) -> dict:
    """One seed: decades spanned by the layers' channel-gradient scales, and first third / last third."""
    layers, scale = channel_grad_scales(passes)
    if not np.all(scale > 0):
        raise ValueError("channel gradients: a layer's scale is 0")
    third = len(layers) // 3
    return {"log10_range": float(np.log10(scale.max() / scale.min())),
            "early_over_late": float(scale[:third].mean() / scale[-third:].mean()), "scale": scale, "layers": layers}


def layer_grad(none: BySeed, bn: BySeed, thresholds: Thresholds) -> Readout:
    """B-LAYER-GRAD: per seed, without BN channel-gradient scales span ≥ ``min_decades_none``
    decades across layers and the first third's mean over the last third's is strictly above
    ``min_early_over_late`` (1: larger early, on a log axis); with BN they span at most
    ``max_bn_decades_share`` × none's decades (on a log axis)."""
    seeds = seeds_of(none, bn)
    s_none, s_bn = [layer_spread(none[s]) for s in seeds], [layer_spread(bn[s]) for s in seeds]
    d_none, d_bn = [s["log10_range"] for s in s_none], [s["log10_range"] for s in s_bn]
    early = [s["early_over_late"] for s in s_none]
    share = [_ratio(b, a, "BN decades / none decades") for a, b in zip(d_none, d_bn)]
    return Readout({"seeds": seeds, "log10_range": {"none": d_none, "batch": d_bn}, "early_over_late_none": early,
                    "bn_over_none_decades": share},
                   (Condition.at_least("none: decades spanned", d_none, thresholds["min_decades_none"]),
                    Condition.at_least("none: first third / last third", early, thresholds["min_early_over_late"], log=True,
                                       strict=True),
                    Condition.at_most("BN decades / none decades", share, thresholds["max_bn_decades_share"], log=True)),
                   f"decades spanned across layers, {_seed_note(seeds)}: none {_fmt(d_none, '.2f')} (early/late "
                   f"{_fmt(early, prefix='×')}), BN {_fmt(d_bn, '.2f')}")


# --- App. F, Figs. 13/14 ------------------------------------------------------------------------

def one_signed_share(passes: Passes, layer: int, cut: float) -> float:
    """Share of channels whose pre-ReLU activation has one sign for a share ≥ ``cut`` of (b, x, y):
    always on or always off after the ReLU. ``cut`` is B-ACT-HIST's threshold ``one_signed_cut``."""
    _need(passes, f"layer {layer}")
    f = np.concatenate([p.activations[layer].positive_fraction for p in passes])
    return float(np.mean((f >= cut) | (f <= 1 - cut)))


def act_hist(none: BySeed, bn: BySeed, layers: Sequence[int], thresholds: Thresholds) -> Readout:
    """B-ACT-HIST: a channel is one-signed when a share ≥ ``one_signed_cut`` of its pre-ReLU values
    has one sign. Per seed, without BN the share of one-signed channels grows from the first probed
    layer to the deepest (by more than ``min_share_growth``, 0) and is ≥ ``min_share_none`` there;
    with BN it is ≤ ``max_share_bn`` at every probed layer; each on the seeds' interval."""
    cut, min_share, max_bn = thresholds["one_signed_cut"], thresholds["min_share_none"], thresholds["max_share_bn"]
    seeds = seeds_of(none, bn)
    s_none = [{k: one_signed_share(none[s], k, cut) for k in layers} for s in seeds]
    s_bn = [{k: one_signed_share(bn[s], k, cut) for k in layers} for s in seeds]
    first, last = layers[0], layers[-1]
    bimod = {n: {k: float(np.median(np.concatenate([p.activations[k].bimodality for p in all_passes(ps)]))) for k in layers}
             for n, ps in (("none", none), ("batch", bn))}
    return Readout({"seeds": seeds, "one_signed_share": {"none": s_none, "batch": s_bn}, "median_bimodality": bimod},
                   (Condition.at_least(f"none: one-signed share at layer {last} − at layer {first}", [s[last] - s[first] for s in s_none],
                                       thresholds["min_share_growth"], strict=True),
                    Condition.at_least(f"none: one-signed share at layer {last}", [s[last] for s in s_none], min_share),
                    Condition.at_most("BN: largest one-signed share", [max(s.values()) for s in s_bn], max_bn)),
                   "one-signed channels, layers " + ", ".join(map(str, layers)) + ": "
                   + "; ".join(f"seed {sd} none {_fmt(list(a.values()), '.0%')}, BN {_fmt(list(b.values()), '.0%')}"
                               for sd, a, b in zip(seeds, s_none, s_bn)))


# --- §3.1, App. G -------------------------------------------------------------------------------

def top_grad(none: BySeed, bn: BySeed, top: BySeed, layer: int, thresholds: Thresholds) -> Readout:
    """B-TOP-GRAD: per seed, BN on top only gives a median |kernel gradient| within a factor
    ``max_factor_from_bn`` of full BN's (either side), and, like full BN (B-GRAD-SCALE), at least
    ``min_none_over_top`` × below the unnormalized net's; all on a log axis."""
    within, min_scaling = thresholds["max_factor_from_bn"], thresholds["min_none_over_top"]
    seeds = seeds_of(none, bn, top)
    med = {n: [float(np.median(np.abs(_pooled_grad(ps[s], layer)))) for s in seeds] for n, ps in (("none", none), ("batch", bn), ("top", top))}
    factor = [_ratio(t, b, "top-only / BN median |grad|") for t, b in zip(med["top"], med["batch"])]
    scaling = [_ratio(n, t, "none / top-only median |grad|") for n, t in zip(med["none"], med["top"])]
    return Readout({"layer": layer, "seeds": seeds, "median_abs_grad": med, "top_over_bn": factor, "none_over_top": scaling},
                   (Condition.at_least("top-only / BN median |grad|, low side", factor, 1 / within, log=True),
                    Condition.at_most("top-only / BN median |grad|, high side", factor, within, log=True),
                    Condition.at_least("none / top-only median |grad|", scaling, min_scaling, log=True)),
                   f"layer {layer} median |grad|, {_seed_note(seeds)}: none {_fmt(med['none'])}, BN {_fmt(med['batch'])}, "
                   f"top-only {_fmt(med['top'])} (top/BN {_fmt(factor, prefix='×')})")


# --- beyond the paper ---------------------------------------------------------------------------

def bias_fix(none: BySeed, fixed: BySeed, thresholds: Thresholds) -> Readout:
    """X-BIASFIX: per seed, after equalizing the class biases the output gradient is
    input-dependent (CV of ∂L_b/∂z_j′ ≥ ``min_cv_factor`` × the unfixed net's, B-OUT-BIAS's BN
    criterion written as unfixed / fixed ≤ 1 / ``min_cv_factor`` as there, each net with its own
    j′), while the activation moments still grow (B-MOM-DEPTH's none criterion, last/first ≥
    ``min_growth``, fit slope above ``min_fit_slope``)."""
    cv_factor, min_growth = thresholds["min_cv_factor"], thresholds["min_growth"]
    seeds = seeds_of(none, fixed)
    s_none, s_fixed = [output_bias_seed(none[s]) for s in seeds], [output_bias_seed(fixed[s]) for s in seeds]
    share = [cv_share(a["cv"], b["cv"]) for a, b in zip(s_none, s_fixed)]
    growth = [depth_growth(layer_moments(fixed[s])) for s in seeds]
    return Readout({"seeds": seeds, "none": s_none, "bias_fixed": s_fixed, "none_over_fixed_cv": share, "growth_bias_fixed": growth},
                   (Condition.at_most("unfixed CV / fixed CV", share, 1 / cv_factor),
                    *growth_conditions(growth, "fixed", min_growth, thresholds["min_fit_slope"])),
                   f"{_seed_note(seeds)}: CV of ∂L_b/∂z_j′ none {_fmt([s['cv'] for s in s_none])} → fixed "
                   f"{_fmt([s['cv'] for s in s_fixed])}; fixed net's |mean| last/first "
                   f"{_fmt([g['abs_mean']['last_over_first'] for g in growth], prefix='×')}, var "
                   f"{_fmt([g['var']['last_over_first'] for g in growth], prefix='×')}")


def radial_cosines(passes: Passes) -> dict[int, float]:
    """cos(mean gradient over the passes, weight) per conv layer; the passes (one seed's) share
    one model. A zero gradient or weight counts as cos 0."""
    _need(passes, "radial")
    out = {}
    for k in passes[0].layers:
        g, w = np.mean([p.weight_grad[k] for p in passes], 0), passes[0].weight[k]
        norm = float(np.linalg.norm(g) * np.linalg.norm(w))
        out[k] = float(np.sum(g * w) / norm) if norm > 0 else 0.0
    return out


def radial(none: BySeed, bn: BySeed, thresholds: Thresholds) -> Readout:
    """X-RADIAL: per seed, the batch-averaged gradient of the unnormalized net points mostly along
    the weights: median over conv layers of |cos(ḡ, w)| strictly above ``min_abs_cos`` (1/√2:
    radial larger than tangential)."""
    seeds = seeds_of(none, bn)
    c_none, c_bn = [radial_cosines(none[s]) for s in seeds], [radial_cosines(bn[s]) for s in seeds]
    med_none = [float(np.median(np.abs(list(c.values())))) for c in c_none]
    med_bn = [float(np.median(np.abs(list(c.values())))) for c in c_bn]
    return Readout({"seeds": seeds, "median_abs_cos": {"none": med_none, "batch": med_bn}, "cos_none": c_none, "cos_batch": c_bn},
                   (Condition.at_least("none: median |cos(ḡ, w)|", med_none, thresholds["min_abs_cos"], strict=True),),
                   f"median |cos(mean gradient, w)| over conv layers, {_seed_note(seeds)}: none {_fmt(med_none)}, BN {_fmt(med_bn)}")


def residual_ratio(passes: Passes) -> np.ndarray:
    _need(passes, "residual")
    r = np.mean([p.branch_var / p.skip_var for p in passes], 0)
    if not np.all(np.isfinite(r) & (r > 0)):
        raise ValueError("residual: a block's branch/skip variance ratio is 0 or undefined")
    return r


def residual_scale(none: BySeed, bn: BySeed, thresholds: Thresholds) -> Readout:
    """X-RESIDUAL-SCALE: per seed, with BN branch/skip variance falls like 1/block (log-log slope
    within the band ``bn_slope_band``); without BN it does not (|slope| strictly below
    ``max_abs_slope_none``)."""
    band, flat = thresholds["bn_slope_band"], thresholds["max_abs_slope_none"]
    seeds = seeds_of(none, bn)
    r_none, r_bn = [residual_ratio(none[s]) for s in seeds], [residual_ratio(bn[s]) for s in seeds]
    idx = np.log10(np.arange(1, len(r_bn[0]) + 1))
    s_none = [fitted_slope(idx, np.log10(r))["slope"] for r in r_none]
    s_bn = [fitted_slope(idx, np.log10(r))["slope"] for r in r_bn]
    return Readout({"seeds": seeds, "slope": {"none": s_none, "batch": s_bn},
                    "ratio_last_block": {"none": [float(r[-1]) for r in r_none], "batch": [float(r[-1]) for r in r_bn]}},
                   (Condition.at_least("BN: log-log slope, low side", s_bn, band[0]),
                    Condition.at_most("BN: log-log slope, high side", s_bn, band[1]),
                    Condition.at_most("none: |log-log slope|", [abs(s) for s in s_none], flat, strict=True)),
                   f"log-log slope of branch/skip variance over blocks, {_seed_note(seeds)}: BN {_fmt(s_bn)}, none {_fmt(s_none)}")


def per_layer_factors(grad_norm: np.ndarray, depths: Sequence[int]) -> list[float]:
    """X-NOSKIP-EXPLODE, per seed: 10^slope of log10 ‖∂L/∂W₁‖ against depth (columns = seeds)."""
    g = np.asarray(grad_norm, dtype=float)
    if g.ndim != 2 or g.shape[0] != len(depths) or len(depths) < 2:
        raise ValueError(f"need a (depths, seeds) array over at least two depths, got {g.shape} for depths {list(depths)}")
    if not np.all(np.isfinite(g) & (g > 0)):
        raise ValueError("gradient norms must be positive and finite")
    return [float(10 ** np.polyfit(np.asarray(depths, dtype=float), np.log10(g[:, j]), 1)[0]) for j in range(g.shape[1])]


def noskip_explode(bn_norm: np.ndarray, none_norm: np.ndarray, depths: Sequence[int], seeds: Sequence[int],
                   thresholds: Thresholds) -> Readout:
    """X-NOSKIP-EXPLODE: per seed, the BN MLP's gradient grows with depth (per-layer factor strictly
    above ``min_per_layer_factor``, 1: "explode", on a log axis); the net without BN is reported."""
    f_bn, f_none = per_layer_factors(bn_norm, depths), per_layer_factors(none_norm, depths)
    if len(f_bn) != len(seeds):
        raise ValueError(f"{len(f_bn)} seed columns for seeds {list(seeds)}")
    return Readout({"seeds": list(seeds), "per_layer_seed": {"batch": f_bn, "none": f_none}},
                   (Condition.at_least("BN MLP: gradient factor per layer", f_bn, thresholds["min_per_layer_factor"], log=True,
                                       strict=True),),
                   f"{_seed_note(seeds)}: BN MLP {_fmt(f_bn, '.3f', '×')} per layer, without BN {_fmt(f_none, '.3f', '×')}")
