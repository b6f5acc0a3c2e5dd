"""santurkar2018 on the 25-layer deep linear network (App. A): ICS (Definition 2.1), the
landscape along the gradient and random directions (§3.2), ℓp normalizations (§3.3), the range of
working learning rates (§3.1) and the size of σ (§4).

All claims but S-LR-RANGE read one probed GD run per normalization and seed (fixture
``dln_runs``) and decide from the seeds (harness.evidence). The landscape, ICS, smoothing and
shift readings compare nets over the checkpoints before any of them has converged (the YAML's
``converged_within``), the phase the paper's figures show.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fixtures.dln import run_settings
from harness.dln import lr_range, lr_works
from harness.evidence import Condition
from harness.report import figures
from harness.stats import geometric_mean_ratio
from harness.windows import early as early_half
from harness.windows import note_windows, seed_windows

DATASET = "synthetic Gaussian regression (x, Ax), 1000 samples"
LABELS = {"none": "standard", "batch": "BN", "l1": "ℓ1", "l2": "ℓ2", "linf": "ℓ∞"}


def _provenance(verdict, settings):
    verdict.dataset = DATASET
    verdict.seeds = list(settings["seeds"])


def _steps(run):
    return [c.step for c in run.checkpoints]


def _line_metric(run, metric, line="gradient_line"):
    return [getattr(c, line)[metric] for c in run.checkpoints]


def _windows(dln_runs, norms, settings, verdict=None) -> list[range]:
    """Per seed, the checkpoints at which every net of ``norms`` is training (harness.windows)."""
    return seed_windows(dln_runs, norms, settings["seeds"], lambda r: r.losses[-1], settings["converged_within"], verdict, LABELS)


def _window_note(verdict, dln_runs, windows) -> None:
    note_windows(verdict, _steps(dln_runs["none"][0]), windows)


@pytest.mark.claim("S-ICS-DLN")
def test_ics_standard_none_bn_uncorrelated(verdict, dln_runs, dln_settings):
    _provenance(verdict, dln_settings)
    windows = _windows(dln_runs, ("none", "batch"), dln_settings, verdict)
    _window_note(verdict, dln_runs, windows)
    cos = {n: [[[layer["cos"] for layer in c.ics] for c in r.checkpoints] for r in dln_runs[n]] for n in ("none", "batch")}
    median = {n: [float(np.median([per_seed[k] for k in w])) for per_seed, w in zip(cos[n], windows)] for n in cos}
    verdict.measure(median_cos=median, layers=dln_settings["ics_layers"])
    seed0 = {n: dln_runs[n][0] for n in ("none", "batch")}
    steps = _steps(seed0["none"])
    l2 = {n: [[layer["l2"] for layer in c.ics] for c in seed0[n].checkpoints] for n in seed0}
    verdict.add_figure("cos(G, G′) over training (first seed), median and range over layers", figures.bands(
        steps, {LABELS[n]: (np.min(cos[n][0], axis=1), np.median(cos[n][0], axis=1), np.max(cos[n][0], axis=1)) for n in cos},
        xlabel="GD step", ylabel="cos(G, G′)", title="ICS (Definition 2.1), DLN"))
    verdict.add_figure("‖G − G′‖₂ over training (first seed), median and range over layers", figures.bands(
        steps, {LABELS[n]: (np.min(l2[n], axis=1), np.median(l2[n], axis=1), np.max(l2[n], axis=1)) for n in l2},
        xlabel="GD step", ylabel="‖G − G′‖₂", title="ICS (Definition 2.1), DLN", logy=True))
    verdict.decide(Condition.at_least("standard median cos(G, G′)", median["none"], 0.9),
                   Condition.at_most("BN median |cos(G, G′)|", np.abs(median["batch"]), 0.3))


def _landscape_ratios(dln_runs, settings, metric, line="gradient_line", early=False, num="none", den="batch", verdict=None) -> list[float]:
    """Per seed, the geometric-mean ratio num/den of ``metric`` over the window (its first half if ``early``)."""
    out = []
    for i, w in enumerate(_windows(dln_runs, (num, den), settings, verdict)):
        ks = early_half(w) if early else w
        a, b = ([_line_metric(dln_runs[n][i], metric, line)[k] for k in ks] for n in (num, den))
        out.append(geometric_mean_ratio(a, b))
    return out


def _landscape_figure(dln_runs, metric, ylabel, title, norms=("none", "batch")):
    return figures.lines(_steps(dln_runs["none"][0]), {LABELS[n]: _line_metric(dln_runs[n][0], metric) for n in norms},
                         xlabel="GD step", ylabel=ylabel, title=title + ", first seed", logy=True)


@pytest.mark.claim("S-LAND-LOSS")
def test_loss_varies_less_along_gradient_with_bn(verdict, dln_runs, dln_settings):
    _provenance(verdict, dln_settings)
    _window_note(verdict, dln_runs, _windows(dln_runs, ("none", "batch"), dln_settings, verdict))
    early = _landscape_ratios(dln_runs, dln_settings, "loss_range", early=True, verdict=verdict)
    window = _landscape_ratios(dln_runs, dln_settings, "loss_range")
    verdict.measure(ratio_early=early, ratio_window=window,
                    loss_range_first_seed={n: _line_metric(dln_runs[n][0], "loss_range") for n in ("none", "batch")})
    seed0 = {n: dln_runs[n][0] for n in ("none", "batch")}
    verdict.add_figure("loss along the gradient (first seed), band over steps [1/100, 30] × LR", figures.bands(
        _steps(seed0["none"]), {LABELS[n]: (np.min([c.gradient_line["losses"] for c in r.checkpoints], axis=1),
                                            [c.loss for c in r.checkpoints],
                                            np.max([c.gradient_line["losses"] for c in r.checkpoints], axis=1))
                                for n, r in seed0.items()},
        xlabel="GD step", ylabel="loss", title="Loss landscape along the gradient (DLN)", logy=True))
    verdict.decide(Condition.at_least("loss range standard/BN, early in the window", early, 10, log=True),
                   summary="over the whole window: ×" + ", ×".join(f"{r:.3g}" for r in window))


@pytest.mark.claim("S-LAND-GRAD")
def test_gradients_more_predictive_with_bn(verdict, dln_runs, dln_settings):
    _provenance(verdict, dln_settings)
    _window_note(verdict, dln_runs, _windows(dln_runs, ("none", "batch"), dln_settings, verdict))
    early = _landscape_ratios(dln_runs, dln_settings, "grad_change", early=True, verdict=verdict)
    window = _landscape_ratios(dln_runs, dln_settings, "grad_change")
    verdict.measure(ratio_early=early, ratio_window=window,
                    grad_change_first_seed={n: _line_metric(dln_runs[n][0], "grad_change") for n in ("none", "batch")})
    verdict.add_figure("max ℓ2 change of the gradient along the gradient direction",
                       _landscape_figure(dln_runs, "grad_change", "max ‖∇L(θ) − ∇L(θ − ηg)‖", "Gradient predictiveness (DLN)"))
    verdict.decide(Condition.at_least("gradient change standard/BN, early in the window", early, 10, log=True),
                   summary="over the whole window: ×" + ", ×".join(f"{r:.3g}" for r in window))


@pytest.mark.claim("S-LAND-BETA")
def test_effective_beta_lower_with_bn(verdict, dln_runs, dln_settings):
    _provenance(verdict, dln_settings)
    windows = _windows(dln_runs, ("none", "batch"), dln_settings, verdict)
    _window_note(verdict, dln_runs, windows)
    lower = [float(np.mean([_line_metric(dln_runs["batch"][i], "beta")[k] < _line_metric(dln_runs["none"][i], "beta")[k] for k in w]))
             for i, w in enumerate(windows)]
    verdict.measure(fraction_of_window_bn_lower=lower)
    verdict.add_figure("effective β-smoothness along the gradient",
                       _landscape_figure(dln_runs, "beta", "max ‖Δ∇L‖ / ‖ηg‖", "Effective β-smoothness (DLN)"))
    verdict.decide(Condition.at_least("share of the window's checkpoints where BN's β is lower", lower, 2 / 3))


@pytest.mark.claim("S-LAND-RANDOM")
def test_smoothing_along_random_directions(verdict, dln_runs, dln_settings):
    _provenance(verdict, dln_settings)
    _window_note(verdict, dln_runs, _windows(dln_runs, ("none", "batch"), dln_settings, verdict))
    loss = _landscape_ratios(dln_runs, dln_settings, "loss_range", line="random_line")
    grad = _landscape_ratios(dln_runs, dln_settings, "grad_change", line="random_line")
    verdict.measure(loss_range_ratio=loss, grad_change_ratio=grad)
    verdict.add_figure("max gradient change along a random direction", figures.lines(
        _steps(dln_runs["none"][0]), {LABELS[n]: _line_metric(dln_runs[n][0], "grad_change", "random_line") for n in ("none", "batch")},
        xlabel="GD step", ylabel="max ‖Δ∇L‖", title="Random direction (DLN), first seed", logy=True))
    verdict.decide(Condition.at_least("loss range standard/BN along a random direction", loss, 1, log=True, strict=True),
                   Condition.at_least("gradient change standard/BN along a random direction", grad, 1, log=True, strict=True))


@pytest.mark.claim("S-LP-PERF")
def test_lp_normalizations_perform_like_bn(verdict, dln_runs, dln_settings):
    _provenance(verdict, dln_settings)
    final = {n: [r.losses[-1] for r in runs] for n, runs in dln_runs.items()}
    verdict.measure(final_loss=final)
    first = {n: runs[0] for n, runs in dln_runs.items()}
    stride = max(1, len(first["none"].losses) // 200)
    verdict.add_figure("training loss per normalization (first seed)", figures.lines(
        list(range(0, len(first["none"].losses), stride)), {LABELS[n]: r.losses[::stride] for n, r in first.items()},
        xlabel="GD step", ylabel="training loss ‖f(x) − Ax‖²", title="ℓp normalizations (DLN)", logy=True, markers=False))

    def ratio(a: str, b: str) -> list[float]:
        return verdict.finite(f"{LABELS[a]}/{LABELS[b]} final loss", [x / y for x, y in zip(final[a], final[b])])

    conditions = [Condition.at_most(f"{LABELS[p]}/BN final loss", ratio(p, "batch"), 2, log=True) for p in ("l1", "l2", "linf")]
    conditions += [Condition.at_most(f"{LABELS[p]}/standard final loss", ratio(p, "none"), 1, log=True, strict=True) for p in ("l1", "l2", "linf")]
    conditions.append(Condition.at_most("ℓ1/BN final loss (even better)", ratio("l1", "batch"), 1, log=True, strict=True))
    verdict.decide(*conditions)


@pytest.mark.claim("S-LP-SMOOTH")
def test_lp_normalizations_smooth_the_landscape(verdict, dln_runs, dln_settings):
    _provenance(verdict, dln_settings)
    ratios = {(p, m): _landscape_ratios(dln_runs, dln_settings, m, den=p, verdict=verdict) for p in ("l1", "l2", "linf")
              for m in ("grad_change", "beta")}
    verdict.measure(standard_over_lp={f"{LABELS[p]} {m}": v for (p, m), v in ratios.items()},
                    window_checkpoints={LABELS[p]: [list(w) for w in _windows(dln_runs, ("none", p), dln_settings)] for p in ("l1", "l2", "linf")})
    verdict.add_figure("max gradient change along the gradient, every normalization",
                       _landscape_figure(dln_runs, "grad_change", "max ‖Δ∇L‖", "Gradient predictiveness (DLN)", norms=tuple(dln_runs)))
    verdict.decide(*(Condition.at_least(f"standard/{LABELS[p]} {'gradient change' if m == 'grad_change' else 'β'}", v, 1, log=True, strict=True)
                     for (p, m), v in ratios.items()))


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
def test_lp_normalizations_shift_distributions_more(verdict, dln_runs, dln_settings):
    _provenance(verdict, dln_settings)
    layer, ratios, shifts = dln_settings["shift_layer"], {}, {}
    for p in ("l1", "l2", "linf"):
        windows = _windows(dln_runs, ("none", p), dln_settings, verdict)
        if min(map(len, windows)) < 2:
            verdict.conclude("inconclusive", f"{LABELS[p]}: a seed's window holds one checkpoint, so no shift between checkpoints")
        shifts[p] = [_shift(dln_runs[p][i], w) for i, w in enumerate(windows)]
        shifts[f"none vs {p}"] = [_shift(dln_runs["none"][i], w) for i, w in enumerate(windows)]
        ratios[p] = [a / b for a, b in zip(shifts[p], shifts[f"none vs {p}"])]
    verdict.measure(mean_shift=shifts, lp_over_standard=ratios, layer=layer)
    first = {n: dln_runs[n][0] for n in ("none", "l1", "l2", "linf")}
    unit = {n: ([c.shift_input["mean"][0] for c in r.norm_stats], [math.sqrt(c.shift_input["var"][0]) for c in r.norm_stats])
            for n, r in first.items()}
    verdict.add_figure(f"one unit of layer {layer}'s input before normalization over training (first seed): mean ± std over the batch",
                       figures.bands(_steps(first["none"]), {LABELS[n]: (np.subtract(m, s), m, np.add(m, s)) for n, (m, s) in unit.items()},
                                     xlabel="GD step", ylabel="activation", title=f"Layer-{layer} input distribution over training (DLN)"))
    verdict.decide(*(Condition.at_least(f"shift {LABELS[p]}/standard", r, 1, log=True, strict=True) for p, r in ratios.items()))


@pytest.mark.claim("S-LR-RANGE")
def test_bn_trains_over_a_broader_lr_range(verdict, settings, dln_settings, model_cache):
    _provenance(verdict, dln_settings)
    runs = [lr_range(("none", "batch"), run_settings(dln_settings, seed), settings["lrs"], settings["steps"], model_cache)
            for seed in dln_settings["seeds"]]
    works = [{n: [lr for lr, run in r.items() if lr_works(run)] for n, r in per_seed.items()} for per_seed in runs]
    final = {n: [run.losses[-1] / run.losses[0] if math.isfinite(run.losses[-1]) else float("inf") for run in r.values()]
             for n, r in runs[0].items()}
    verdict.measure(working_lrs=works, final_over_initial_loss_first_seed=final)
    verdict.add_figure("final / initial loss after training at each learning rate (first seed)", figures.lines(
        settings["lrs"], {LABELS[n]: [min(v, 1e3) for v in final[n]] for n in final}, xlabel="learning rate",
        ylabel="final / initial loss (capped at 1e3)", title=f"{settings['steps']} GD steps per LR (DLN)", logx=True, logy=True))
    verdict.decide(Condition.every_seed("BN works at more LRs than the standard net", [len(w["batch"]) > len(w["none"]) for w in works]),
                   summary="working LRs per seed: " + "; ".join(f"standard {len(w['none'])}, BN {len(w['batch'])}" for w in works))


@pytest.mark.claim("S-SIGMA")
def test_gamma_over_sigma_shrinks_gradients(verdict, dln_runs, dln_settings):
    _provenance(verdict, dln_settings)
    medians = [[float(np.median(c.gamma_over_sigma)) for c in run.norm_stats] for run in dln_runs["batch"]]
    verdict.measure(median_gamma_over_sigma=medians)
    ratios = [np.array(c.gamma_over_sigma) for c in dln_runs["batch"][0].norm_stats]
    verdict.add_figure("γ_j/σ_j over training (first seed): median with 10th–90th percentile band", figures.bands(
        _steps(dln_runs["batch"][0]), {"BN DLN": ([float(np.quantile(r, 0.1)) for r in ratios], medians[0],
                                                 [float(np.quantile(r, 0.9)) for r in ratios])},
        xlabel="GD step", ylabel="γ_j / σ_j", title="The factor γ/σ of Theorem 4.1", logy=True))
    verdict.decide(Condition.at_most("largest median γ/σ over the checkpoints", [max(m) for m in medians], 1, log=True, strict=True))
