"""santurkar2018 on the 25-layer deep linear network (App. A): ICS (Definition 2.1), the
landscape along the gradient and random directions (§3.2), ℓp normalizations (§3.3), the range of
working learning rates (§3.1) and the size of σ (§4).

All claims but S-LR-RANGE read one probed GD run per normalization and seed (fixture
``dln_runs``, asked for the seeds of the claim's current look: ``verdict.seeds``) and decide from
the seeds (harness.claimkit.evidence). The landscape, ICS, smoothing and
shift readings compare nets over the checkpoints before any of them has converged (the YAML's
``converged_within``), the phase the paper's figures show. A test gathers each net's numbers over
the window, draws the figures, and leaves the decision to a function of harness.readouts.dln,
which reads the claim's YAML ``thresholds``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.dln import lr_range
from harness.readouts import dln as ro
from harness.readouts.dln import LABELS, LP
from harness.claimkit.report import figures
from harness.windows import checkpoint_weights, note_windows, seed_windows

DATASET = "synthetic Gaussian regression (x, Ax), 1000 samples"


def _runs(verdict, dln_runs, nets=("none", "batch")) -> dict:
    """The probed runs of ``nets`` on the seeds of this look."""
    verdict.dataset = DATASET
    return dln_runs(verdict.seeds, nets)


def _steps(run):
    return [c.step for c in run.checkpoints]


def _line_metric(run, metric, line="gradient_line"):
    return [getattr(c, line)[metric] for c in run.checkpoints]


def _windows(runs, norms, settings, verdict) -> list[range]:
    """Per seed, the checkpoints at which every net of ``norms`` is training (harness.windows)."""
    return seed_windows(runs, norms, verdict.seeds, lambda r: r.losses[-1], settings["converged_within"], verdict, LABELS)


def _window_note(verdict, dln_runs, windows) -> None:
    note_windows(verdict, _steps(dln_runs["none"][0]), windows)


def _time_weights(runs, windows) -> list[list[float]]:
    """Per seed, the training time each checkpoint of its window stands for: the checkpoints are
    dense early (``checkpoint_spacing``), and a statistic over the window weighs them by time."""
    weights = checkpoint_weights(_steps(runs["none"][0]))
    return [[weights[k] for k in w] for w in windows]


def _over_windows(dln_runs, norms, windows, metric, line="gradient_line") -> list[list[list[float]]]:
    """Per net of ``norms``: per seed, ``metric`` along ``line`` at each checkpoint of that seed's window."""
    out = []
    for n in norms:
        values = [_line_metric(dln_runs[n][i], metric, line) for i in range(len(windows))]
        out.append([[v[k] for k in w] for v, w in zip(values, windows)])
    return out


@pytest.mark.claim("S-ICS-DLN")
def test_ics_standard_none_bn_uncorrelated(verdict, dln_runs, dln_settings, thresholds):
    runs = _runs(verdict, dln_runs)
    windows = _windows(runs, ("none", "batch"), dln_settings, verdict)
    _window_note(verdict, runs, windows)
    cos = {n: [[[layer["cos"] for layer in c.ics] for c in r.checkpoints] for r in runs[n]] for n in ("none", "batch")}
    readout = ro.ics(*([[per_seed[k] for k in w] for per_seed, w in zip(cos[n], windows)] for n in ("none", "batch")),
                     dln_settings["ics_layers"], thresholds, _time_weights(runs, windows))
    seed0 = {n: runs[n][0] for n in ("none", "batch")}
    steps = _steps(seed0["none"])
    l2 = {n: [[layer["l2"] for layer in c.ics] for c in seed0[n].checkpoints] for n in seed0}
    verdict.add_figure("cos(G, G′) over training (first seed), median and range over layers", figures.bands(
        steps, {LABELS[n]: (np.min(cos[n][0], axis=1), np.median(cos[n][0], axis=1), np.max(cos[n][0], axis=1)) for n in cos},
        xlabel="GD step", ylabel="cos(G, G′)", title="ICS (Definition 2.1), DLN"))
    verdict.add_figure("‖G − G′‖₂ over training (first seed), median and range over layers", figures.bands(
        steps, {LABELS[n]: (np.min(l2[n], axis=1), np.median(l2[n], axis=1), np.max(l2[n], axis=1)) for n in l2},
        xlabel="GD step", ylabel="‖G − G′‖₂", title="ICS (Definition 2.1), DLN", logy=True))
    verdict.decide_readout(readout)


def _landscape_figure(runs, metric, ylabel, title, norms=("none", "batch")):
    return figures.lines(_steps(runs["none"][0]), {LABELS[n]: _line_metric(runs[n][0], metric) for n in norms},
                         xlabel="GD step", ylabel=ylabel, title=title + ", first seed", logy=True)


def _gradient_line_readout(verdict, dln_runs, dln_settings, metric, readout, thresholds):
    """The standard and BN runs, and ``readout`` of their gradient-line ``metric`` over each seed's
    window (time-weighted); the first seed's line is measured for the report."""
    runs = _runs(verdict, dln_runs)
    windows = _windows(runs, ("none", "batch"), dln_settings, verdict)
    _window_note(verdict, runs, windows)
    result = readout(*_over_windows(runs, ("none", "batch"), windows, metric), thresholds, _time_weights(runs, windows))
    verdict.measure(**{f"{metric}_first_seed": {n: _line_metric(runs[n][0], metric) for n in ("none", "batch")}})
    return runs, result


@pytest.mark.claim("S-LAND-LOSS")
def test_loss_varies_less_along_gradient_with_bn(verdict, dln_runs, dln_settings, thresholds):
    runs, readout = _gradient_line_readout(verdict, dln_runs, dln_settings, "loss_range", ro.loss_range, thresholds)
    seed0 = {n: runs[n][0] for n in ("none", "batch")}
    verdict.add_figure("loss along the gradient (first seed), band over steps [1/100, 30] × LR", figures.bands(
        _steps(seed0["none"]), {LABELS[n]: (np.min([c.gradient_line["losses"] for c in r.checkpoints], axis=1),
                                            [c.loss for c in r.checkpoints],
                                            np.max([c.gradient_line["losses"] for c in r.checkpoints], axis=1))
                                for n, r in seed0.items()},
        xlabel="GD step", ylabel="loss", title="Loss landscape along the gradient (DLN)", logy=True))
    verdict.decide_readout(readout)


@pytest.mark.claim("S-LAND-GRAD")
def test_gradients_more_predictive_with_bn(verdict, dln_runs, dln_settings, thresholds):
    runs, readout = _gradient_line_readout(verdict, dln_runs, dln_settings, "grad_change", ro.grad_change, thresholds)
    verdict.add_figure("max ℓ2 change of the gradient along the gradient direction",
                       _landscape_figure(runs, "grad_change", "max ‖∇L(θ) − ∇L(θ − ηg)‖", "Gradient predictiveness (DLN)"))
    verdict.decide_readout(readout)


@pytest.mark.claim("S-LAND-BETA")
def test_effective_beta_lower_with_bn(verdict, dln_runs, dln_settings, thresholds):
    runs = _runs(verdict, dln_runs)
    windows = _windows(runs, ("none", "batch"), dln_settings, verdict)
    _window_note(verdict, runs, windows)
    readout = ro.beta(*_over_windows(runs, ("none", "batch"), windows, "beta"), thresholds, _time_weights(runs, windows))
    verdict.add_figure("effective β-smoothness along the gradient",
                       _landscape_figure(runs, "beta", "max ‖Δ∇L‖ / ‖ηg‖", "Effective β-smoothness (DLN)"))
    verdict.decide_readout(readout)


@pytest.mark.claim("S-LAND-RANDOM")
def test_smoothing_along_random_directions(verdict, dln_runs, dln_settings, thresholds):
    runs = _runs(verdict, dln_runs)
    windows = _windows(runs, ("none", "batch"), dln_settings, verdict)
    _window_note(verdict, runs, windows)
    readout = ro.random_direction(*_over_windows(runs, ("none", "batch"), windows, "loss_range", "random_line"),
                                  *_over_windows(runs, ("none", "batch"), windows, "grad_change", "random_line"), thresholds,
                                  _time_weights(runs, windows))
    verdict.add_figure("max gradient change along a random direction", figures.lines(
        _steps(runs["none"][0]), {LABELS[n]: _line_metric(runs[n][0], "grad_change", "random_line") for n in ("none", "batch")},
        xlabel="GD step", ylabel="max ‖Δ∇L‖", title="Random direction (DLN), first seed", logy=True))
    verdict.decide_readout(readout)


@pytest.mark.claim("S-LP-PERF")
def test_lp_normalizations_perform_like_bn(verdict, dln_runs, dln_settings, thresholds):
    runs = _runs(verdict, dln_runs, ("none", "batch", *LP))
    final = {n: [r.losses[-1] for r in runs] for n, runs in runs.items()}
    verdict.measure(final_loss=final)
    first = {n: runs[0] for n, runs in runs.items()}
    stride = max(1, len(first["none"].losses) // 200)
    verdict.add_figure("training loss per normalization (first seed)", figures.lines(
        list(range(0, len(first["none"].losses), stride)), {LABELS[n]: r.losses[::stride] for n, r in first.items()},
        xlabel="GD step", ylabel="training loss ‖f(x) − Ax‖²", title="ℓp normalizations (DLN)", logy=True, markers=False))
    for name, ratios in ro.lp_perf_ratios(final).items():
        verdict.finite(name, ratios)  # a diverged run: inconclusive
    verdict.decide_readout(ro.lp_perf(final, thresholds))


@pytest.mark.claim("S-LP-SMOOTH")
def test_lp_normalizations_smooth_the_landscape(verdict, dln_runs, dln_settings, thresholds):
    runs = _runs(verdict, dln_runs, ("none", "batch", *LP))
    windows = {p: _windows(runs, ("none", p), dln_settings, verdict) for p in LP}
    series = {(p, m): tuple(_over_windows(runs, ("none", p), windows[p], m)) for p in LP for m in ("grad_change", "beta")}
    readout = ro.lp_smooth(series, thresholds, {p: _time_weights(runs, windows[p]) for p in LP})
    verdict.measure(window_checkpoints={LABELS[p]: [list(w) for w in windows[p]] for p in LP})
    verdict.add_figure("max gradient change along the gradient, every normalization",
                       _landscape_figure(runs, "grad_change", "max ‖Δ∇L‖", "Gradient predictiveness (DLN)", norms=tuple(runs)))
    verdict.decide_readout(readout)


def _shift(run, window: range) -> float:
    """Mean over the window's successive checkpoint pairs and the units of |Δmean|/std + |Δvar|/var of
    the shift layer's input (before normalization)."""
    out = []
    for k in window[:-1]:
        a, b = run.norm_stats[k], run.norm_stats[k + 1]
        m0, m1 = np.array(a.shift_input["mean"]), np.array(b.shift_input["mean"])
        v0, v1 = np.array(a.shift_input["var"]), np.array(b.shift_input["var"])
        out.append(float(np.mean(np.abs(m1 - m0) / np.sqrt(v0) + np.abs(v1 - v0) / v0)))
    return float(np.mean(out))


@pytest.mark.claim("S-LP-SHIFT")
def test_lp_normalizations_shift_distributions_more(verdict, dln_runs, dln_settings, thresholds):
    runs = _runs(verdict, dln_runs, ("none", *LP))
    layer, shift_lp, shift_standard = dln_settings["shift_layer"], {}, {}
    for p in LP:
        windows = _windows(runs, ("none", p), dln_settings, verdict)
        if any(len(w) < 2 for w in windows):  # a shift needs two checkpoints
            verdict.conclude("inconclusive", f"{LABELS[p]}: a seed's window holds one checkpoint, so no shift between checkpoints")
        shift_lp[p] = [_shift(runs[p][i], w) for i, w in enumerate(windows)]
        shift_standard[p] = [_shift(runs["none"][i], w) for i, w in enumerate(windows)]
    readout = ro.lp_shift(shift_lp, shift_standard, layer, thresholds)
    first = {n: runs[n][0] for n in ("none", "l1", "l2", "linf")}
    unit = {n: ([c.shift_input["mean"][0] for c in r.norm_stats], [math.sqrt(c.shift_input["var"][0]) for c in r.norm_stats])
            for n, r in first.items()}
    verdict.add_figure(f"one unit of layer {layer}'s input before normalization over training (first seed): mean ± std over the batch",
                       figures.bands(_steps(first["none"]), {LABELS[n]: (np.subtract(m, s), m, np.add(m, s)) for n, (m, s) in unit.items()},
                                     xlabel="GD step", ylabel="activation", title=f"Layer-{layer} input distribution over training (DLN)"))
    verdict.decide_readout(readout)


@pytest.mark.claim("S-LR-RANGE")
def test_bn_trains_over_a_broader_lr_range(verdict, settings, dln_settings, model_cache, thresholds):
    verdict.dataset = DATASET
    runs = lr_range(("none", "batch"), dln_settings, settings["lrs"], settings["steps"],
                    verdict.seeds, model_cache)
    losses = [{n: {lr: run.losses for lr, run in r.items()} for n, r in per_seed.items()} for per_seed in runs]
    readout = ro.lr_range(losses, thresholds)
    final = readout.values["final_over_initial_loss_first_seed"]
    verdict.add_figure("final / initial loss after training at each learning rate (first seed)", figures.lines(
        settings["lrs"], {LABELS[n]: [min(v, 1e3) for v in final[n]] for n in final}, xlabel="learning rate",
        ylabel="final / initial loss (capped at 1e3)", title=f"{settings['steps']} GD steps per LR (DLN)", logx=True, logy=True))
    verdict.decide_readout(readout)


@pytest.mark.claim("S-SIGMA")
def test_gamma_over_sigma_shrinks_gradients(verdict, dln_runs, dln_settings, thresholds):
    runs = _runs(verdict, dln_runs, ("batch",))
    readout = ro.sigma([[c.gamma_over_sigma for c in run.norm_stats] for run in runs["batch"]], thresholds)
    medians = readout.values["median_gamma_over_sigma"]
    ratios = [np.array(c.gamma_over_sigma) for c in runs["batch"][0].norm_stats]
    verdict.add_figure("γ_j/σ_j over training (first seed): median with 10th–90th percentile band", figures.bands(
        _steps(runs["batch"][0]), {"BN DLN": ([float(np.quantile(r, 0.1)) for r in ratios], medians[0],
                                                 [float(np.quantile(r, 0.9)) for r in ratios])},
        xlabel="GD step", ylabel="γ_j / σ_j", title="The factor γ/σ of Theorem 4.1", logy=True))
    verdict.decide_readout(readout)
