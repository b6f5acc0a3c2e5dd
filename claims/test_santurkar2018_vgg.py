"""santurkar2018 on VGG (App. A): BN vs standard (§1), noisy BN and distributional stability
(§2.1), ICS (§2.2, Definition 2.1), the landscape along the gradient and random directions
(§3.2), ℓp normalizations (§3.3) and the range of working learning rates (§3.1).

All claims but S-LR-RANGE read one probed SGD run per normalization and seed (fixture
``vgg_runs``). Claims with a DLN half (claims/test_santurkar2018_dln.py) are their VGG half here,
``@pytest.mark.claim(ID, case="vgg")``, with test ids like ``S-LAND-LOSS-fast-vgg``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.report import figures
from harness.stats import geometric_mean_ratio
from harness.vgg_runs import lr_range, lr_works, tail_mean

LABELS = {"none": "standard", "batch": "BN", "noisy_batch": "noisy BN", "noise": "standard + noise",
          "l1": "ℓ1", "l2": "ℓ2", "linf": "ℓ∞"}
LP = ("l1", "l2", "linf")
CURVE_POINTS = 60  # points per training curve in a figure (block means of the per-step series)


def _provenance(verdict, settings, data):
    verdict.dataset = f"{data.name} ({settings['config']}, width {settings['width']}, {settings['steps']} steps)"
    verdict.seeds = list(settings["seeds"])


def _seed_mean(runs, fn) -> float:
    return float(np.mean([fn(r) for r in runs]))


def _tail_loss(run) -> float:
    return math.inf if run.diverged_at is not None else tail_mean(run.losses)


def _tail_acc(run) -> float:
    return tail_mean(run.accs)


def _shift(runs, where="activations") -> float:
    """Mean step-to-step distribution change, averaged over seeds."""
    return _seed_mean(runs, lambda r: float(np.mean(r.activation_changes(where))))


def _curve(runs, series: str) -> tuple[list[int], list[float]]:
    """Block means of a per-step series (losses, accs), averaged over seeds, up to the shortest run."""
    n = min(len(getattr(r, series)) for r in runs)
    values = np.mean([getattr(r, series)[:n] for r in runs], axis=0)
    block = max(1, n // CURVE_POINTS)
    m = n // block * block or n
    return list(range(block // 2, m, block)), list(values[:m].reshape(-1, block).mean(axis=1))


def _curves_figure(runs, norms, series, ylabel, title, logy=False):
    curves = {LABELS[n]: _curve(runs[n], series) for n in norms}
    x = min((c[0] for c in curves.values()), key=len)
    return figures.lines(x, {k: v[1][: len(x)] for k, v in curves.items()}, xlabel="SGD step", ylabel=ylabel,
                         title=title, logy=logy, markers=False)


def _checkpoints(runs) -> int:
    return min(len(r.checkpoints) for r in runs)


def _line_metric(runs, metric, line="gradient_line", n=None) -> list[float]:
    """Per checkpoint, the landscape metric averaged over seeds."""
    n = n or _checkpoints(runs)
    return list(np.mean([[getattr(c, line)[metric] for c in r.checkpoints[:n]] for r in runs], axis=0))


def _steps(runs, n=None) -> list[int]:
    return [c.step for c in runs[0].checkpoints[: n or _checkpoints(runs)]]


def _landscape_ratio(runs, metric, line="gradient_line", early=False, num="none", den="batch") -> float:
    n = min(_checkpoints(runs[num]), _checkpoints(runs[den]))
    a, b = _line_metric(runs[num], metric, line, n), _line_metric(runs[den], metric, line, n)
    if early:
        k = math.ceil(n / 2)
        a, b = a[:k], b[:k]
    return geometric_mean_ratio(a, b)


def _landscape_figure(runs, metric, ylabel, title, norms=("none", "batch"), line="gradient_line"):
    n = min(_checkpoints(runs[k]) for k in norms)
    return figures.lines(_steps(runs[norms[0]], n), {LABELS[k]: _line_metric(runs[k], metric, line, n) for k in norms},
                         xlabel="SGD step", ylabel=ylabel, title=title, logy=True)


def _distribution_figure(runs, norms, title):
    """One sampled unit's distribution over the batch (and H, W) per step: 5th–95th percentile band and median (seed 0)."""
    series, x = {}, None
    for n in norms:
        record = runs[n][0].activations
        q = np.array(record.quantiles)[:, 0, :]  # steps × quantiles of the first sampled unit
        stride = max(1, len(q) // 150)
        x = record.steps[::stride] if x is None or len(record.steps[::stride]) < len(x) else x
        series[LABELS[n]] = (q[::stride, 0], q[::stride, 2], q[::stride, 4])
    series = {k: tuple(v[: len(x)] for v in s) for k, s in series.items()}
    return figures.bands(x, series, xlabel="SGD step", ylabel="activation (5th–95th percentile, median)", title=title)


def _changes_figure(runs, norms, title):
    curves = {}
    for n in norms:
        changes = [r.activation_changes() for r in runs[n]]
        k = min(len(c) for c in changes)
        values = np.mean([c[:k] for c in changes], axis=0)
        block = max(1, k // CURVE_POINTS)
        m = k // block * block or k
        curves[LABELS[n]] = (list(range(block // 2 + 1, m + 1, block)), list(values[:m].reshape(-1, block).mean(axis=1)))
    x = min((c[0] for c in curves.values()), key=len)
    return figures.lines(x, {k: v[1][: len(x)] for k, v in curves.items()}, xlabel="SGD step",
                         ylabel="|Δμ|/σ + |Δσ²|/σ² between steps", title=title, logy=True, markers=False)


@pytest.mark.claim("S-PERF")
def test_bn_trains_faster_and_generalizes_better(verdict, vgg_runs, vgg_settings, vgg_data):
    _provenance(verdict, vgg_settings, vgg_data)
    loss = {n: _seed_mean(vgg_runs[n], _tail_loss) for n in ("none", "batch")}
    test_acc = {n: _seed_mean(vgg_runs[n], lambda r: r.final["test_acc"]) for n in ("none", "batch")}
    verdict.measure(final_training_loss=loss, test_accuracy=test_acc,
                    train_accuracy_eval={n: _seed_mean(vgg_runs[n], lambda r: r.final["train_acc"]) for n in ("none", "batch")})
    verdict.add_figure("training loss (mini-batch, block means)", _curves_figure(
        vgg_runs, ("none", "batch"), "losses", "training loss", "Fig. 1a: training"))
    evals = {n: vgg_runs[n][0].evals for n in ("none", "batch")}
    verdict.add_figure("test accuracy (eval mode) over training, seed 0", figures.lines(
        [e["step"] for e in evals["none"]], {LABELS[n]: [e["test_acc"] for e in evals[n]] for n in evals},
        xlabel="SGD step", ylabel="test accuracy", title="Fig. 1b: generalization"))
    holds = loss["batch"] < loss["none"] and test_acc["batch"] > test_acc["none"]
    verdict.conclude(holds=holds, summary=f"training loss standard {loss['none']:.3f} vs BN {loss['batch']:.3f}; "
                                          f"test accuracy standard {test_acc['none']:.1%} vs BN {test_acc['batch']:.1%}")


@pytest.mark.claim("S-DIST")
def test_distribution_change_similar_with_and_without_bn(verdict, vgg_runs, vgg_settings, vgg_data):
    _provenance(verdict, vgg_settings, vgg_data)
    shift = {n: _shift(vgg_runs[n]) for n in ("none", "batch")}
    ratio = shift["none"] / shift["batch"]
    verdict.measure(mean_step_change=shift, ratio_standard_over_bn=ratio, layer=vgg_settings["dist_layer"],
                    mean_step_change_after_the_norm={n: _shift(vgg_runs[n], "normalized") for n in ("none", "batch")})
    verdict.add_figure(f"distribution of one unit of conv layer {vgg_settings['dist_layer']} over training",
                       _distribution_figure(vgg_runs, ("none", "batch"), "Fig. 1c: layer-input distribution"))
    verdict.add_figure("step-to-step change of the sampled units' distributions",
                       _changes_figure(vgg_runs, ("none", "batch"), "Distributional stability"))
    verdict.conclude(holds=0.5 <= ratio <= 2, summary=f"mean step change standard {shift['none']:.3g}, BN {shift['batch']:.3g}: "
                                                      f"ratio {ratio:.3g} (needs [0.5, 2])")


@pytest.mark.claim("S-NOISY-MATCH")
def test_noisy_bn_nearly_matches_bn(verdict, vgg_runs, vgg_settings, vgg_data):
    _provenance(verdict, vgg_settings, vgg_data)
    norms = ("none", "batch", "noisy_batch")
    acc = {n: _seed_mean(vgg_runs[n], _tail_acc) for n in norms}
    gap = abs(acc["noisy_batch"] - acc["batch"])
    verdict.measure(final_training_accuracy=acc, gap_noisy_bn=gap,
                    test_accuracy={n: _seed_mean(vgg_runs[n], lambda r: r.final["test_acc"]) for n in norms})
    verdict.add_figure("training accuracy (mini-batch, as trained)", _curves_figure(
        vgg_runs, norms, "accs", "training accuracy", "Fig. 2: standard, BN, noisy BN"))
    verdict.add_figure(f"distribution of one unit of conv layer {vgg_settings['dist_layer']} over training",
                       _distribution_figure(vgg_runs, norms, "Fig. 2: layer-input distributions"))
    holds = gap <= 0.03 and acc["batch"] > acc["none"] and acc["noisy_batch"] > acc["none"]
    verdict.conclude(holds=holds, summary=f"training accuracy: standard {acc['none']:.1%}, BN {acc['batch']:.1%}, "
                                          f"noisy BN {acc['noisy_batch']:.1%} (gap {gap:.1%}, needs ≤ 3 points)")


@pytest.mark.claim("S-NOISY-UNSTABLE")
def test_noisy_bn_less_stable_than_standard(verdict, vgg_runs, vgg_settings, vgg_data):
    _provenance(verdict, vgg_settings, vgg_data)
    norms = ("none", "batch", "noisy_batch")
    shift = {n: _shift(vgg_runs[n]) for n in norms}
    ratio = shift["noisy_batch"] / shift["none"]
    verdict.measure(mean_step_change=shift, ratio_noisy_over_standard=ratio, layer=vgg_settings["dist_layer"],
                    mean_step_change_after_the_norm={n: _shift(vgg_runs[n], "normalized") for n in norms})
    verdict.add_figure("step-to-step change of the sampled units' distributions",
                       _changes_figure(vgg_runs, norms, "Fig. 7: change of mean and variance"))
    verdict.conclude(holds=ratio >= 2, summary=f"mean step change noisy BN {shift['noisy_batch']:.3g} vs standard "
                                               f"{shift['none']:.3g}: ×{ratio:.3g} (needs ≥ 2)")


@pytest.mark.claim("S-NOISE-STD")
def test_noise_prevents_the_standard_net_from_training(verdict, vgg_runs, vgg_settings, vgg_data):
    _provenance(verdict, vgg_settings, vgg_data)
    runs = vgg_runs["noise"]
    acc = _seed_mean(runs, _tail_acc)
    diverged = [r.diverged_at for r in runs]
    verdict.measure(final_training_accuracy=acc, diverged_at=diverged,
                    standard_final_training_accuracy=_seed_mean(vgg_runs["none"], _tail_acc))
    verdict.add_figure("training accuracy (mini-batch, as trained)", _curves_figure(
        vgg_runs, ("none", "noise"), "accs", "training accuracy", "Standard net with and without the noise"))
    holds = all(d is not None for d in diverged) or acc <= 0.15
    verdict.conclude(holds=holds, summary=f"standard + noise: training accuracy {acc:.1%} (needs ≤ 15% or divergence), "
                                          f"diverged at {diverged}")


@pytest.mark.claim("S-ICS-VGG")
def test_bn_does_not_reduce_ics(verdict, vgg_runs, vgg_settings, vgg_data):
    _provenance(verdict, vgg_settings, vgg_data)
    norms = ("none", "batch")
    n = min(_checkpoints(vgg_runs[k]) for k in norms)
    # per norm: checkpoints × layers, averaged over seeds
    cos = {k: np.mean([[[layer["cos"] for layer in c.ics] for c in r.checkpoints[:n]] for r in vgg_runs[k]], axis=0) for k in norms}
    l2 = {k: np.mean([[[layer["l2"] for layer in c.ics] for c in r.checkpoints[:n]] for r in vgg_runs[k]], axis=0) for k in norms}
    median = {k: float(np.median(cos[k])) for k in norms}
    verdict.measure(median_cos=median, cos_by_checkpoint_and_layer={k: v.tolist() for k, v in cos.items()},
                    l2_by_checkpoint_and_layer={k: v.tolist() for k, v in l2.items()}, layers=vgg_settings["ics_layers"])
    steps = _steps(vgg_runs["none"], n)
    verdict.add_figure("cos(G, G′) over training, median and range over layers", figures.bands(
        steps, {LABELS[k]: (cos[k].min(axis=1), np.median(cos[k], axis=1), cos[k].max(axis=1)) for k in norms},
        xlabel="SGD step", ylabel="cos(G, G′)", title="ICS (Definition 2.1), VGG"))
    verdict.add_figure("‖G − G′‖₂ over training, median and range over layers", figures.bands(
        steps, {LABELS[k]: (l2[k].min(axis=1), np.median(l2[k], axis=1), l2[k].max(axis=1)) for k in norms},
        xlabel="SGD step", ylabel="‖G − G′‖₂", title="ICS (Definition 2.1), VGG", logy=True))
    verdict.conclude(holds=median["batch"] <= median["none"] + 0.1,
                     summary=f"median cos(G, G′): standard {median['none']:.3f}, BN {median['batch']:.3f} (BN needs ≤ standard + 0.1)")


@pytest.mark.claim("S-LAND-LOSS", case="vgg")
def test_loss_varies_less_along_gradient_with_bn(verdict, vgg_runs, vgg_settings, vgg_data):
    _provenance(verdict, vgg_settings, vgg_data)
    early = _landscape_ratio(vgg_runs, "loss_range", early=True)
    overall = _landscape_ratio(vgg_runs, "loss_range")
    verdict.measure(ratio_early=early, ratio_all=overall,
                    loss_range={n: _line_metric(vgg_runs[n], "loss_range") for n in ("none", "batch")})
    n = min(_checkpoints(vgg_runs[k]) for k in ("none", "batch"))
    bands = {}
    for k in ("none", "batch"):
        losses = np.mean([[c.gradient_line["losses"] for c in r.checkpoints[:n]] for r in vgg_runs[k]], axis=0)
        bands[LABELS[k]] = (losses.min(axis=1), _line_metric_of(vgg_runs[k], "loss", n), losses.max(axis=1))
    verdict.add_figure("loss along the gradient, band over steps [½, 4] × LR", figures.bands(
        _steps(vgg_runs["none"], n), bands, xlabel="SGD step", ylabel="loss", title="Fig. 4a: loss landscape (VGG)", logy=True))
    verdict.conclude(holds=early >= 10, summary=f"loss range standard/BN: ×{early:.3g} early (needs ≥ 10), ×{overall:.3g} over all checkpoints")


def _line_metric_of(runs, field, n=None) -> list[float]:
    """Per checkpoint, a field of the checkpoint itself (loss, grad_norm) averaged over seeds."""
    n = n or _checkpoints(runs)
    return list(np.mean([[getattr(c, field) for c in r.checkpoints[:n]] for r in runs], axis=0))


@pytest.mark.claim("S-LAND-GRAD", case="vgg")
def test_gradients_more_predictive_with_bn(verdict, vgg_runs, vgg_settings, vgg_data):
    _provenance(verdict, vgg_settings, vgg_data)
    early = _landscape_ratio(vgg_runs, "grad_change", early=True)
    overall = _landscape_ratio(vgg_runs, "grad_change")
    verdict.measure(ratio_early=early, ratio_all=overall,
                    grad_change={n: _line_metric(vgg_runs[n], "grad_change") for n in ("none", "batch")},
                    gradient_norm={n: _line_metric_of(vgg_runs[n], "grad_norm") for n in ("none", "batch")})
    verdict.add_figure("max ℓ2 change of the gradient along the gradient direction", _landscape_figure(
        vgg_runs, "grad_change", "max ‖∇L(θ) − ∇L(θ − ηg)‖", "Fig. 4b: gradient predictiveness (VGG)"))
    verdict.conclude(holds=early >= 10, summary=f"gradient change standard/BN: ×{early:.3g} early (needs ≥ 10), ×{overall:.3g} overall")


@pytest.mark.claim("S-LAND-BETA", case="vgg")
def test_effective_beta_lower_with_bn(verdict, vgg_runs, vgg_settings, vgg_data):
    _provenance(verdict, vgg_settings, vgg_data)
    n = min(_checkpoints(vgg_runs[k]) for k in ("none", "batch"))
    none, bn = _line_metric(vgg_runs["none"], "beta", n=n), _line_metric(vgg_runs["batch"], "beta", n=n)
    lower = float(np.mean(np.array(bn) < np.array(none)))
    verdict.measure(fraction_of_checkpoints_bn_lower=lower, beta={"none": none, "batch": bn})
    verdict.add_figure("effective β-smoothness along the gradient", _landscape_figure(
        vgg_runs, "beta", "max ‖Δ∇L‖ / ‖ηg‖", "Fig. 4c: effective β-smoothness (VGG)"))
    verdict.conclude(holds=lower >= 2 / 3, summary=f"BN's β lower at {lower:.0%} of checkpoints (needs ≥ 67%)")


@pytest.mark.claim("S-LAND-RANDOM", case="vgg")
def test_smoothing_along_random_directions(verdict, vgg_runs, vgg_settings, vgg_data):
    _provenance(verdict, vgg_settings, vgg_data)
    loss = _landscape_ratio(vgg_runs, "loss_range", line="random_line")
    grad = _landscape_ratio(vgg_runs, "grad_change", line="random_line")
    verdict.measure(loss_range_ratio=loss, grad_change_ratio=grad)
    verdict.add_figure("max gradient change along a random direction", _landscape_figure(
        vgg_runs, "grad_change", "max ‖Δ∇L‖", "Random direction (VGG)", line="random_line"))
    verdict.conclude(holds=loss > 1 and grad > 1, summary=f"standard/BN along a random direction: loss range ×{loss:.3g}, "
                                                          f"gradient change ×{grad:.3g} (each needs > 1)")


@pytest.mark.claim("S-LP-PERF", case="vgg")
def test_lp_normalizations_perform_like_bn(verdict, vgg_runs, vgg_settings, vgg_data):
    _provenance(verdict, vgg_settings, vgg_data)
    norms = ("none", "batch") + LP
    final = {n: _seed_mean(vgg_runs[n], _tail_loss) for n in norms}
    comparable = {p: final[p] <= 2 * final["batch"] for p in LP}
    beat_standard = {p: final[p] < final["none"] for p in LP}
    verdict.measure(final_training_loss=final, within_2x_of_bn=comparable, below_standard=beat_standard,
                    test_accuracy={n: _seed_mean(vgg_runs[n], lambda r: r.final["test_acc"]) for n in norms})
    verdict.add_figure("training loss per normalization (mini-batch, block means)", _curves_figure(
        vgg_runs, norms, "losses", "training loss", "Fig. 11a: ℓp normalizations (VGG)"))
    holds = all(comparable.values()) and all(beat_standard.values())
    verdict.conclude(holds=holds, summary="final training loss: " + ", ".join(f"{LABELS[n]} {v:.3f}" for n, v in final.items()))


@pytest.mark.claim("S-LP-SMOOTH", case="vgg")
def test_lp_normalizations_smooth_the_landscape(verdict, vgg_runs, vgg_settings, vgg_data):
    _provenance(verdict, vgg_settings, vgg_data)
    ratios = {p: {"grad_change": _landscape_ratio(vgg_runs, "grad_change", den=p), "beta": _landscape_ratio(vgg_runs, "beta", den=p)}
              for p in LP}
    verdict.measure(standard_over_lp=ratios)
    verdict.add_figure("max gradient change along the gradient, every normalization", _landscape_figure(
        vgg_runs, "grad_change", "max ‖Δ∇L‖", "Fig. 11c: gradient predictiveness (VGG)", norms=("none", "batch") + LP))
    verdict.add_figure("effective β-smoothness, every normalization", _landscape_figure(
        vgg_runs, "beta", "max ‖Δ∇L‖ / ‖ηg‖", "Fig. 11d: effective β-smoothness (VGG)", norms=("none", "batch") + LP))
    holds = all(v > 1 for r in ratios.values() for v in r.values())
    verdict.conclude(holds=holds, summary="; ".join(f"{LABELS[p]}: ×{r['grad_change']:.3g} gradient change, ×{r['beta']:.3g} β"
                                                    for p, r in ratios.items()))


@pytest.mark.claim("S-LP-SHIFT", case="vgg")
def test_lp_normalizations_shift_distributions_more(verdict, vgg_runs, vgg_settings, vgg_data):
    _provenance(verdict, vgg_settings, vgg_data)
    norms = ("none", "batch") + LP
    shift = {n: _shift(vgg_runs[n]) for n in norms}
    verdict.measure(mean_step_change=shift, layer=vgg_settings["dist_layer"],
                    mean_step_change_after_the_norm={n: _shift(vgg_runs[n], "normalized") for n in norms})
    verdict.add_figure(f"distribution of one unit of conv layer {vgg_settings['dist_layer']} over training",
                       _distribution_figure(vgg_runs, ("none",) + LP, "Fig. 14: layer-input distributions"))
    verdict.add_figure("step-to-step change of the sampled units' distributions",
                       _changes_figure(vgg_runs, norms, "Distributional shift per normalization"))
    holds = all(shift[p] > shift["none"] for p in LP)
    verdict.conclude(holds=holds, summary="mean step change: " + ", ".join(f"{LABELS[n]} {v:.3g}" for n, v in shift.items()))


@pytest.mark.claim("S-LR-RANGE", case="vgg")
def test_bn_trains_over_a_broader_lr_range(verdict, settings, vgg_settings, vgg_data, device, model_cache):
    _provenance(verdict, vgg_settings, vgg_data)
    seed = vgg_settings["seeds"][0]
    verdict.seeds = [seed]
    runs = lr_range(("none", "batch"), vgg_data, vgg_settings, settings["lrs"], settings["steps"], seed, device, model_cache)
    works = {n: [lr for lr, run in r.items() if lr_works(run)] for n, r in runs.items()}
    acc = {n: [run.final["train_acc"] if run.diverged_at is None else 0.0 for run in r.values()] for n, r in runs.items()}
    verdict.measure(working_lrs=works, final_train_accuracy=acc,
                    diverged_at={n: {str(lr): run.diverged_at for lr, run in r.items()} for n, r in runs.items()})
    verdict.add_figure("training accuracy after training at each learning rate (0 = diverged)", figures.lines(
        settings["lrs"], {LABELS[n]: a for n, a in acc.items()}, xlabel="learning rate", ylabel="training accuracy (eval mode)",
        title=f"{settings['steps']} SGD steps per LR (VGG)", logx=True))
    verdict.conclude(holds=len(works["batch"]) > len(works["none"]),
                     summary=f"achievable LRs: standard {len(works['none'])} {works['none']}, BN {len(works['batch'])} {works['batch']}")
