"""santurkar2018 on the 25-layer deep linear network (App. A): ICS (Definition 2.1), the
landscape along the gradient and random directions (§3.2), ℓp normalizations (§3.3), the range of
working learning rates (§3.1) and the size of σ (§4).

All claims but S-LR-RANGE read one probed GD run per normalization (fixture ``dln_runs``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.dln import lr_range, lr_works
from harness.report import figures
from harness.stats import geometric_mean_ratio

DATASET = "synthetic Gaussian regression (x, Ax), 1000 samples"
LABELS = {"none": "standard", "batch": "BN", "l1": "ℓ1", "l2": "ℓ2", "linf": "ℓ∞"}


def _provenance(verdict, settings):
    verdict.dataset = DATASET
    verdict.seeds = [settings["seed"]]


def _steps(run):
    return [c.step for c in run.checkpoints]


def _line_metric(run, metric, line="gradient_line"):
    return [getattr(c, line)[metric] for c in run.checkpoints]


def _early(values):
    return values[: math.ceil(len(values) / 2)]


@pytest.mark.claim("S-ICS-DLN")
def test_ics_standard_none_bn_uncorrelated(verdict, dln_runs, dln_settings):
    _provenance(verdict, dln_settings)
    cos = {n: [[layer["cos"] for layer in c.ics] for c in dln_runs[n].checkpoints] for n in ("none", "batch")}
    l2 = {n: [[layer["l2"] for layer in c.ics] for c in dln_runs[n].checkpoints] for n in ("none", "batch")}
    median = {n: float(np.median(np.concatenate(cos[n]))) for n in cos}
    verdict.measure(median_cos=median, median_cos_by_checkpoint={n: [float(np.median(c)) for c in cos[n]] for n in cos},
                    median_l2_by_checkpoint={n: [float(np.median(v)) for v in l2[n]] for n in l2},
                    layers=dln_settings["ics_layers"])
    steps = _steps(dln_runs["none"])
    verdict.add_figure("cos(G, G′) over training, median and range over layers", figures.bands(
        steps, {LABELS[n]: (np.min(cos[n], axis=1), np.median(cos[n], axis=1), np.max(cos[n], axis=1)) for n in cos},
        xlabel="GD step", ylabel="cos(G, G′)", title="ICS (Definition 2.1), DLN"))
    verdict.add_figure("‖G − G′‖₂ over training, median and range over layers", figures.bands(
        steps, {LABELS[n]: (np.min(l2[n], axis=1), np.median(l2[n], axis=1), np.max(l2[n], axis=1)) for n in l2},
        xlabel="GD step", ylabel="‖G − G′‖₂", title="ICS (Definition 2.1), DLN", logy=True))
    verdict.conclude(holds=median["none"] >= 0.9 and abs(median["batch"]) <= 0.3,
                     summary=f"median cos(G, G′): standard {median['none']:.3f} (needs ≥ 0.9), BN {median['batch']:.3f} (needs |·| ≤ 0.3)")


def _landscape_ratio(runs, metric, line="gradient_line", early=False, num="none", den="batch"):
    a, b = _line_metric(runs[num], metric, line), _line_metric(runs[den], metric, line)
    if early:
        a, b = _early(a), _early(b)
    return geometric_mean_ratio(a, b)


def _landscape_figure(runs, metric, ylabel, title, norms=("none", "batch")):
    return figures.lines(_steps(runs["none"]), {LABELS[n]: _line_metric(runs[n], metric) for n in norms},
                         xlabel="GD step", ylabel=ylabel, title=title, logy=True)


@pytest.mark.claim("S-LAND-LOSS")
def test_loss_varies_less_along_gradient_with_bn(verdict, dln_runs, dln_settings):
    _provenance(verdict, dln_settings)
    early = _landscape_ratio(dln_runs, "loss_range", early=True)
    overall = _landscape_ratio(dln_runs, "loss_range")
    verdict.measure(ratio_early=early, ratio_all=overall,
                    loss_range={n: _line_metric(dln_runs[n], "loss_range") for n in ("none", "batch")})
    steps = _steps(dln_runs["none"])
    verdict.add_figure("loss along the gradient, band over steps [1/100, 30] × LR", figures.bands(
        steps, {LABELS[n]: (np.min([c.gradient_line["losses"] for c in dln_runs[n].checkpoints], axis=1),
                            [c.loss for c in dln_runs[n].checkpoints],
                            np.max([c.gradient_line["losses"] for c in dln_runs[n].checkpoints], axis=1))
                for n in ("none", "batch")},
        xlabel="GD step", ylabel="loss", title="Loss landscape along the gradient (DLN)", logy=True))
    verdict.conclude(holds=early >= 10, summary=f"loss range standard/BN: ×{early:.3g} early (needs ≥ 10), ×{overall:.3g} over all checkpoints")


@pytest.mark.claim("S-LAND-GRAD")
def test_gradients_more_predictive_with_bn(verdict, dln_runs, dln_settings):
    _provenance(verdict, dln_settings)
    early = _landscape_ratio(dln_runs, "grad_change", early=True)
    overall = _landscape_ratio(dln_runs, "grad_change")
    verdict.measure(ratio_early=early, ratio_all=overall,
                    grad_change={n: _line_metric(dln_runs[n], "grad_change") for n in ("none", "batch")})
    verdict.add_figure("max ℓ2 change of the gradient along the gradient direction",
                       _landscape_figure(dln_runs, "grad_change", "max ‖∇L(θ) − ∇L(θ − ηg)‖", "Gradient predictiveness (DLN)"))
    verdict.conclude(holds=early >= 10, summary=f"gradient change standard/BN: ×{early:.3g} early (needs ≥ 10), ×{overall:.3g} overall")


@pytest.mark.claim("S-LAND-BETA")
def test_effective_beta_lower_with_bn(verdict, dln_runs, dln_settings):
    _provenance(verdict, dln_settings)
    none, bn = _line_metric(dln_runs["none"], "beta"), _line_metric(dln_runs["batch"], "beta")
    lower = float(np.mean(np.array(bn) < np.array(none)))
    verdict.measure(fraction_of_checkpoints_bn_lower=lower, beta={"none": none, "batch": bn})
    verdict.add_figure("effective β-smoothness along the gradient",
                       _landscape_figure(dln_runs, "beta", "max ‖Δ∇L‖ / ‖ηg‖", "Effective β-smoothness (DLN)"))
    verdict.conclude(holds=lower >= 2 / 3, summary=f"BN's β lower at {lower:.0%} of checkpoints (needs ≥ 67%)")


@pytest.mark.claim("S-LAND-RANDOM")
def test_smoothing_along_random_directions(verdict, dln_runs, dln_settings):
    _provenance(verdict, dln_settings)
    loss = _landscape_ratio(dln_runs, "loss_range", line="random_line")
    grad = _landscape_ratio(dln_runs, "grad_change", line="random_line")
    verdict.measure(loss_range_ratio=loss, grad_change_ratio=grad)
    verdict.add_figure("max gradient change along a random direction", figures.lines(
        _steps(dln_runs["none"]), {LABELS[n]: _line_metric(dln_runs[n], "grad_change", "random_line") for n in ("none", "batch")},
        xlabel="GD step", ylabel="max ‖Δ∇L‖", title="Random direction (DLN)", logy=True))
    verdict.conclude(holds=loss > 1 and grad > 1, summary=f"standard/BN along a random direction: loss range ×{loss:.3g}, gradient change ×{grad:.3g} (each needs > 1)")


@pytest.mark.claim("S-LP-PERF")
def test_lp_normalizations_perform_like_bn(verdict, dln_runs, dln_settings):
    _provenance(verdict, dln_settings)
    final = {n: r.losses[-1] for n, r in dln_runs.items()}
    comparable = {p: final[p] <= 2 * final["batch"] for p in ("l1", "l2", "linf")}
    beat_standard = {p: final[p] < final["none"] for p in ("l1", "l2", "linf")}
    verdict.measure(final_loss=final, within_2x_of_bn=comparable, below_standard=beat_standard)
    stride = max(1, len(dln_runs["none"].losses) // 200)
    verdict.add_figure("training loss per normalization", figures.lines(
        list(range(0, len(dln_runs["none"].losses), stride)), {LABELS[n]: r.losses[::stride] for n, r in dln_runs.items()},
        xlabel="GD step", ylabel="training loss ‖f(x) − Ax‖²", title="ℓp normalizations (DLN)", logy=True, markers=False))
    holds = all(comparable.values()) and all(beat_standard.values()) and final["l1"] < final["batch"]
    verdict.conclude(holds=holds, summary="final loss: " + ", ".join(f"{LABELS[n]} {v:.4g}" for n, v in final.items()))


@pytest.mark.claim("S-LP-SMOOTH")
def test_lp_normalizations_smooth_the_landscape(verdict, dln_runs, dln_settings):
    _provenance(verdict, dln_settings)
    ratios = {p: {"grad_change": _landscape_ratio(dln_runs, "grad_change", den=p), "beta": _landscape_ratio(dln_runs, "beta", den=p)}
              for p in ("l1", "l2", "linf")}
    verdict.measure(standard_over_lp=ratios)
    verdict.add_figure("max gradient change along the gradient, every normalization",
                       _landscape_figure(dln_runs, "grad_change", "max ‖Δ∇L‖", "Gradient predictiveness (DLN)", norms=tuple(dln_runs)))
    holds = all(v > 1 for r in ratios.values() for v in r.values())
    verdict.conclude(holds=holds, summary="; ".join(f"{LABELS[p]}: ×{r['grad_change']:.3g} gradient change, ×{r['beta']:.3g} β" for p, r in ratios.items()))


def _shift(run) -> list[float]:
    """Per successive checkpoint pair: mean over units of |Δmean|/std + |Δvar|/var of the layer input."""
    out = []
    for a, b in zip(run.checkpoints, run.checkpoints[1:]):
        m0, m1 = np.array(a.shift_input["mean"]), np.array(b.shift_input["mean"])
        v0, v1 = np.array(a.shift_input["var"]), np.array(b.shift_input["var"])
        out.append(float(np.mean(np.abs(m1 - m0) / np.sqrt(v0) + np.abs(v1 - v0) / v0)))
    return out


@pytest.mark.claim("S-LP-SHIFT")
def test_lp_normalizations_shift_distributions_more(verdict, dln_runs, dln_settings):
    _provenance(verdict, dln_settings)
    shift = {n: _shift(r) for n, r in dln_runs.items()}
    mean_shift = {n: float(np.mean(v)) for n, v in shift.items()}
    verdict.measure(mean_shift=mean_shift, shift_by_interval=shift, layer=dln_settings.get("shift_layer", 13))
    verdict.add_figure("distribution change of layer 13's input between checkpoints", figures.lines(
        _steps(dln_runs["none"])[1:], {LABELS[n]: v for n, v in shift.items()}, xlabel="GD step",
        ylabel="|Δμ|/σ + |Δσ²|/σ² (mean over units)", title="Distributional shift (DLN)", logy=True))
    unit = {n: ([c.shift_input["mean"][0] for c in r.checkpoints], [math.sqrt(c.shift_input["var"][0]) for c in r.checkpoints])
            for n, r in dln_runs.items()}
    verdict.add_figure("distribution of one unit of layer 13's input over training: mean ± std over the batch", figures.bands(
        _steps(dln_runs["none"]), {LABELS[n]: (np.subtract(m, s), m, np.add(m, s)) for n, (m, s) in unit.items()},
        xlabel="GD step", ylabel="activation", title="Layer-13 input distribution over training (DLN)"))
    holds = all(mean_shift[p] > mean_shift["none"] for p in ("l1", "l2", "linf"))
    verdict.conclude(holds=holds, summary="mean shift: " + ", ".join(f"{LABELS[n]} {v:.3g}" for n, v in mean_shift.items()))


@pytest.mark.claim("S-LR-RANGE")
def test_bn_trains_over_a_broader_lr_range(verdict, settings, dln_settings, model_cache):
    _provenance(verdict, dln_settings)
    runs = lr_range(("none", "batch"), dln_settings, settings["lrs"], settings["steps"], model_cache)
    works = {n: [lr for lr, run in r.items() if lr_works(run)] for n, r in runs.items()}
    final = {n: [run.losses[-1] / run.losses[0] if math.isfinite(run.losses[-1]) else float("inf") for run in r.values()]
             for n, r in runs.items()}
    verdict.measure(working_lrs=works, final_over_initial_loss=final)
    verdict.add_figure("final / initial loss after training at each learning rate", figures.lines(
        settings["lrs"], {LABELS[n]: [min(v, 1e3) for v in final[n]] for n in final}, xlabel="learning rate",
        ylabel="final / initial loss (capped at 1e3)", title=f"{settings['steps']} GD steps per LR (DLN)", logx=True, logy=True))
    verdict.conclude(holds=len(works["batch"]) > len(works["none"]),
                     summary=f"working LRs: standard {len(works['none'])} {works['none']}, BN {len(works['batch'])} {works['batch']}")


@pytest.mark.claim("S-SIGMA")
def test_gamma_over_sigma_shrinks_gradients(verdict, dln_runs, dln_settings):
    _provenance(verdict, dln_settings)
    ratios = [np.array(c.gamma_over_sigma) for c in dln_runs["batch"].checkpoints]
    med = [float(np.median(r)) for r in ratios]
    verdict.measure(median_gamma_over_sigma=med, fraction_below_one=[float(np.mean(r < 1)) for r in ratios])
    verdict.add_figure("γ_j/σ_j over training: median with 10th–90th percentile band", figures.bands(
        _steps(dln_runs["batch"]), {"BN DLN": ([float(np.quantile(r, 0.1)) for r in ratios], med, [float(np.quantile(r, 0.9)) for r in ratios])},
        xlabel="GD step", ylabel="γ_j / σ_j", title="The factor γ/σ of Theorem 4.1", logy=True))
    verdict.conclude(holds=max(med) < 1, summary=f"median γ/σ per checkpoint between {min(med):.3g} and {max(med):.3g} (needs < 1 throughout)")
