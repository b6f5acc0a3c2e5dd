"""bjorck2018 §3 at initialization on the real ResNet-110: gradient scale and tails (Fig. 2),
moments vs depth (Fig. 3), the output bias (Fig. 4, App. L), Table 1's summands, the low-rank
channel structure (Fig. 7), App. F/I, BN on top (App. G), and four questions beyond the paper.

All ResNet claims read the shared hooked passes of fixture ``init_probes`` (fixtures/init.py),
grouped by seed; each claim's statistics and the conditions of its threshold over the seeds come
from a function of harness.readouts.init (or init_extra, for the appendices and beyond), given the claim's ``thresholds`` (the numbers of its YAML
``thresholds``, read there by name), and ``verdict.decide`` decides on them. Figures
may pool the seeds (histograms, means) or show each. Layers are the paper's numbers (see
claims/bjorck2018_init.yaml).
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.data import normalize
from harness.readouts import init as ro
from harness.readouts import init_extra as rox
from harness.probes.depth_gradients import YANG_RATE, gradient_growth
from harness.probes.summands import STATISTICS
from harness.claimkit.report import figures

LABELS = {"none": "no BN", "batch": "BN", "top": "BN on top only", "biasfix": "no BN, biases equalized"}
# Table 1 (×1/(spatial·batch)) as printed; the last column is read as |Σ_bxy d|
PAPER_TABLE1 = {
    ("batch", 18): (7.44509e-05, 4.56393e-06, 1.30080e-05, 2.95631e-07),
    ("batch", 54): (1.90210e-05, 2.49563e-06, 3.31031e-06, 1.68555e-07),
    ("batch", 90): (6.62426e-06, 3.24293e-06, 1.12625e-06, 1.62689e-07),
    ("none", 18): (6.31433e-05, 3.65324e-05, 4.06954e-05, 3.63081e-05),
    ("none", 54): (2.19251e-04, 8.63927e-05, 1.54601e-04, 8.35946e-05),
    ("none", 90): (2.59182e-04, 1.59253e-04, 1.80002e-04, 1.23079e-04),
}
TABLE1_COLUMNS = ("sum_bxy_abs", "sum_b_abs_sum_xy", "sum_xy_abs_sum_b", "abs_sum_bxy")


def _passes(init_probes, verdict, settings, *variants, batches=None):
    """Each variant's passes grouped by seed ({seed: [batches]}): the readouts decide per seed."""
    verdict.ran_on(init_probes.dataset, init_probes.data.stands_in_for)
    batches = batches if batches is not None else settings.get("batches")
    out = init_probes.passes(variants, verdict.seeds, batches)
    verdict.note(init_probes.timing_note())
    return out


def _pooled(by_seed, f):
    """One array over every seed and batch, for a figure."""
    return np.concatenate([f(p).ravel() for p in ro.all_passes(by_seed)])


@pytest.mark.claim("B-GRAD-SCALE")
def test_gradients_two_orders_larger_without_bn(verdict, settings, thresholds, init_probes):
    none, bn = _passes(init_probes, verdict, settings, "none", "batch")
    k = settings["layer"]
    verdict.add_figure(f"Layer {k} kernel gradients at initialization, each on its own scale (Fig. 2)", figures.histogram_panels(
        {f"{LABELS[n]}": _pooled(ps, lambda p: p.weight_grad[k]) for n, ps in (("batch", bn), ("none", none))},
        xlabel="∂L/∂K", title=f"Gradients of layer {k} at initialization"))
    verdict.decide_readout(ro.grad_scale(none, bn, k, thresholds))


@pytest.mark.claim("B-GRAD-TAILS")
def test_gradients_heavier_tailed_without_bn(verdict, settings, thresholds, init_probes):
    none, bn = _passes(init_probes, verdict, settings, "none", "batch")
    k = settings["layer"]
    verdict.add_figure(f"Layer {k} kernel gradients divided by their std (Fig. 2, common scale)", figures.overlaid_histograms(
        {LABELS[n]: _pooled(ps, lambda p: p.weight_grad[k] / p.weight_grad[k].std()) for n, ps in (("batch", bn), ("none", none))},
        xlabel="∂L/∂K / std", title="Shape of the gradient distribution"))
    verdict.decide_readout(ro.grad_tails(none, bn, k, thresholds))


@pytest.mark.claim("B-MOM-DEPTH")
def test_moments_grow_with_depth_without_bn(verdict, settings, thresholds, init_probes):
    none, bn = _passes(init_probes, verdict, settings, "none", "batch")
    moments = {n: ro.layer_moments(ro.all_passes(ps)) for n, ps in (("none", none), ("batch", bn))}
    for name, label in (("abs_mean", "|channel mean|"), ("var", "channel variance")):
        verdict.add_figure(f"{label} of each conv layer's output vs depth, ± std over channels (Fig. 3)", figures.errorbar_lines(
            moments["none"]["layers"], {LABELS[n]: (m[f"log10_{name}_mean"], m[f"log10_{name}_std"]) for n, m in moments.items()},
            xlabel="layer", ylabel=label, title=f"{label} at initialization", log_stats=True))
    verdict.decide_readout(ro.moment_depth(none, bn, thresholds))


@pytest.mark.claim("B-OUT-BIAS")
def test_output_gradient_input_independent_without_bn(verdict, settings, thresholds, init_probes):
    none, bn = _passes(init_probes, verdict, settings, "none", "batch")
    verdict.add_figure("∂L_b/∂OUTPUT(b, j) at initialization, first seed's first batch (Fig. 4)",
                       _output_gradient_heatmaps({"none": none, "batch": bn}))
    verdict.decide_readout(ro.output_bias(none, bn, thresholds))


def _output_gradient_heatmaps(passes: dict) -> str:
    """∂L_b/∂OUTPUT(b, j) of each variant's first pass, images × classes (as Fig. 4)."""
    return figures.heatmaps({LABELS[n]: ro.output_gradients(ro.all_passes(ps)[0]).T for n, ps in passes.items()},
                            xlabel="image b", ylabel="class j", title="Output gradients", symmetric=True)


@pytest.mark.claim("B-OUT-MASK")
def test_favoured_class_dominates_kernel_gradient(verdict, settings, thresholds, init_probes):
    none, bn = _passes(init_probes, verdict, settings, "none", "batch", batches=init_probes.settings["mask_batches"])
    readout = ro.output_mask(none, bn, thresholds)
    k = init_probes.settings["mask_layer"]
    verdict.add_figure(f"Mean |∂L/∂K| of layer {k} with one class's output gradient kept, per seed (Fig. 21)", figures.bars(
        {f"{LABELS[n]}, seed {s} (favoured: {r['favoured_class']})": r["class_grad"]
         for n in ("none", "batch") for s, r in zip(readout.values["seeds"], readout.values[n])},
        list(range(len(ro.all_passes(none)[0].class_grad))), ylabel="mean |∂L/∂K|", title="Class-wise gradients", logy=True))
    verdict.decide_readout(readout)


def _fmt(v: float) -> str:
    return f"{v:.3g}"


@pytest.mark.claim("B-T1-ALIGN")
def test_summands_align_without_bn(verdict, settings, thresholds, init_probes):
    none, bn = _passes(init_probes, verdict, settings, "none", "batch")
    layers = init_probes.settings["table1_layers"]
    readout = ro.t1_align(none, bn, layers, thresholds)
    rows = {}
    for n in ("batch", "none"):
        for k in layers:
            ours = readout.values["table"][n][k]
            paper = PAPER_TABLE1.get((n, k))
            rows[f"layer {k}, {LABELS[n]}"] = [_fmt(ours[c]) + (f" ({_fmt(paper[i])})" if paper else "") for i, c in enumerate(TABLE1_COLUMNS)] \
                + [_fmt(ours["sum_xy_abs_sum_bij"])]
    verdict.add_table("Table 1, Eq. 4 summands at initialization: ours (mean over seeds; paper's in brackets), mean over the "
                      "kernel × 1/(spatial·batch)", [STATISTICS[c] for c in (*TABLE1_COLUMNS, "sum_xy_abs_sum_bij")], rows)
    verdict.decide_readout(readout)


@pytest.mark.claim("R1-T1-TREND")
@pytest.mark.parametrize("column", list(STATISTICS))
def test_table1_grows_with_depth_without_bn(verdict, settings, thresholds, init_probes, column):
    (none,) = _passes(init_probes, verdict, settings, "none")
    layers = init_probes.settings["table1_layers"]
    readout = ro.t1_trend(none, layers, column, thresholds)
    paper = {c: [PAPER_TABLE1[("none", k)][i] for k in layers] for i, c in enumerate(TABLE1_COLUMNS)}
    series = {f"ours, seed {s}: {STATISTICS[column]}": list(v.values()) for s, v in readout.values["per_seed"].items()}
    if column in paper:
        series[f"paper: {STATISTICS[column]}"] = paper[column]
    verdict.add_figure("Table 1 column vs layer, no BN", figures.lines(layers, series, xlabel="layer", ylabel="× 1/(spatial·batch)",
                                                                       title=f"{STATISTICS[column]} without BN", logy=True))
    verdict.decide_readout(readout)


@pytest.mark.claim("B-LOWRANK")
def test_channel_gradients_low_rank_without_bn(verdict, settings, thresholds, init_probes):
    none, bn = _passes(init_probes, verdict, settings, "none", "batch")
    k = settings["layer"]
    first = min(none)
    verdict.add_figure(f"Σ_ij |Σ_bxy d| of layer {k} over (co, ci), seed {first} (Fig. 7)", figures.heatmaps(
        {LABELS[n]: ro.channel_matrix(ps[first], k) for n, ps in (("none", none), ("batch", bn))},
        xlabel="in-channel ci", ylabel="out-channel co", title=f"Layer {k} gradients by channel pair"))
    verdict.decide_readout(ro.low_rank(none, bn, k, thresholds))


@pytest.mark.claim("B-MEAN-GRAD")
def test_gradient_follows_channel_mean_without_bn(verdict, settings, thresholds, init_probes):
    none, bn = _passes(init_probes, verdict, settings, "none", "batch")
    k, depth = settings["layer"], init_probes.settings["depth"]
    clouds = {LABELS[n]: rox.mean_vs_grad(ro.all_passes(ps), k, depth) for n, ps in (("none", none), ("batch", bn))}
    verdict.add_figure(f"Input-channel pre-ReLU mean vs |∂L/∂K|, every weight of layer {k} (Fig. 18)", figures.scatter(
        {n: (c["channel_mean"], c["abs_grad"]) for n, c in clouds.items()}, xlabel="channel mean before ReLU", ylabel="|∂L/∂K|",
        title="Channel mean and gradient", logy=True))
    verdict.decide_readout(rox.mean_grad(none, bn, k, depth, thresholds))


@pytest.mark.claim("B-LAYER-GRAD")
def test_channel_gradient_scales_spread_without_bn(verdict, settings, thresholds, init_probes):
    none, bn = _passes(init_probes, verdict, settings, "none", "batch")
    scales = {LABELS[n]: rox.channel_grad_scales(ro.all_passes(ps)) for n, ps in (("none", none), ("batch", bn))}
    layers = scales[LABELS["none"]][0]
    verdict.add_figure("Mean |bias-equivalent gradient| of each conv layer's channels (Fig. 19)", figures.lines(
        layers, {n: s for n, (_, s) in scales.items()}, xlabel="layer", ylabel="mean |Σ_bxy ∂L/∂(slot output)|",
        title="Channel gradients by layer", logy=True, markers=False))
    verdict.decide_readout(rox.layer_grad(none, bn, thresholds))


@pytest.mark.claim("B-ACT-HIST")
def test_activations_multimodal_without_bn(verdict, settings, thresholds, init_probes):
    none, bn = _passes(init_probes, verdict, settings, "none", "batch")
    layers = init_probes.settings["activation_layers"]
    for n, ps in (("none", none), ("batch", bn)):
        act = ro.all_passes(ps)[0].activations
        verdict.add_figure(f"Pre-ReLU activations of the first channels, {LABELS[n]} (Figs. 13/14)", figures.histogram_panels(
            {f"layer {k}, channel {c}": act[k].samples[c] for k in layers for c in range(min(2, len(act[k].samples)))},
            xlabel="activation", title=f"Activation histograms, {LABELS[n]}", columns=4))
    verdict.decide_readout(rox.act_hist(none, bn, layers, thresholds))


@pytest.mark.claim("B-TOP-GRAD")
def test_bn_on_top_scales_gradients_like_bn(verdict, settings, thresholds, init_probes):
    none, bn, top = _passes(init_probes, verdict, settings, "none", "batch", "top")
    k = settings["layer"]
    verdict.add_figure(f"Layer {k} kernel gradients: none, full BN, BN on top only", figures.overlaid_histograms(
        {LABELS[n]: np.abs(_pooled(ps, lambda p: p.weight_grad[k])) for n, ps in (("none", none), ("batch", bn), ("top", top))},
        xlabel="|∂L/∂K|", title="Gradient scale with BN on top", logx=True))
    verdict.decide_readout(rox.top_grad(none, bn, top, k, thresholds))


@pytest.mark.claim("X-BIASFIX")
def test_bias_fix_removes_output_bias_not_growth(verdict, settings, thresholds, init_probes):
    none, fixed = _passes(init_probes, verdict, settings, "none", "biasfix")
    verdict.add_figure("∂L_b/∂OUTPUT(b, j) before and after equalizing the class biases (Fig. 4)",
                       _output_gradient_heatmaps({"none": none, "biasfix": fixed}))
    verdict.decide_readout(rox.bias_fix(none, fixed, thresholds))


@pytest.mark.claim("X-RADIAL")
def test_mean_gradient_points_radially(verdict, settings, thresholds, init_probes):
    none, bn = _passes(init_probes, verdict, settings, "none", "batch")
    readout = rox.radial(none, bn, thresholds)
    seeds, cos = readout.values["seeds"], readout.values["cos_none"]
    verdict.add_figure("cos(batch-averaged gradient, weights) per conv layer, per seed", figures.lines(
        list(cos[0]), {f"{LABELS[n]}, seed {s}": list(c.values()) for n in ("none", "batch")
                       for s, c in zip(seeds, readout.values[f"cos_{n}"])},
        xlabel="layer", ylabel="cos(ḡ, w)", title="Radial share of the mean gradient", markers=False))
    verdict.decide_readout(readout)


@pytest.mark.claim("X-RESIDUAL-SCALE")
def test_bn_downscales_residual_branches(verdict, settings, thresholds, init_probes):
    none, bn = _passes(init_probes, verdict, settings, "none", "batch")
    ratios = {LABELS[n]: rox.residual_ratio(ro.all_passes(ps)) for n, ps in (("none", none), ("batch", bn))}
    blocks = list(range(1, len(ratios[LABELS["none"]]) + 1))
    verdict.add_figure("Variance of the residual branch over the skip path, per block", figures.lines(
        blocks, {**ratios, "1/ℓ": [1 / b for b in blocks]}, xlabel="block ℓ", ylabel="Var(branch) / Var(skip)",
        title="Residual-branch scale at initialization", logx=True, logy=True, markers=False))
    verdict.decide_readout(rox.residual_scale(none, bn, thresholds))


@pytest.mark.claim("X-NOSKIP-EXPLODE")
def test_bn_explodes_gradients_without_skips(verdict, settings, thresholds, init_data):
    verdict.ran_on(init_data.name, init_data.stands_in_for)
    x = normalize(init_data.train_x[:128], init_data.mean, init_data.std)
    y = init_data.train_y[:128]
    runs = {n: gradient_growth(n, settings["depths"], settings["width"], x, y, verdict.seeds) for n in ("batch", "none")}
    verdict.measure(per_layer={n: r["per_layer"] for n, r in runs.items()},
                    interval_bn=[runs["batch"]["per_layer_low"], runs["batch"]["per_layer_high"]], yang=YANG_RATE,
                    grad_norm={n: r["grad_norm"] for n, r in runs.items()})
    depths = settings["depths"]
    verdict.add_figure("‖∂L/∂W₁‖ vs depth, fully connected ReLU nets without skips", figures.errorbar_lines(
        depths, {f"{LABELS[n]} (×{r['per_layer']:.3f}/layer)": (np.log10(r["grad_norm"]).mean(1), np.log10(r["grad_norm"]).std(1))
                 for n, r in runs.items()},
        xlabel="depth", ylabel="‖∂L/∂W₁‖", title="Gradient explosion without skips", log_stats=True,
        reference={f"Yang et al. ×{YANG_RATE:.3f}/layer": (runs["batch"]["grad_norm"][0].mean() * YANG_RATE ** (np.array(depths) - depths[0])).tolist()}))
    readout = rox.noskip_explode(runs["batch"]["grad_norm"], runs["none"]["grad_norm"], depths, verdict.seeds, thresholds)
    readout.summary += f" (Yang et al. ×{YANG_RATE:.3f}; pooled fit over depths × seeds: BN ×{runs['batch']['per_layer']:.3f})"
    verdict.decide_readout(readout)
