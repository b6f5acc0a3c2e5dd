"""santurkar2018 on VGG (App. A): BN vs standard (§1), noisy BN and distributional stability
(§2.1), ICS (§2.2, Definition 2.1), the landscape along the gradient and random directions
(§3.2), ℓp normalizations (§3.3) and the range of working learning rates (§3.1).

All claims but S-LR-RANGE read one probed SGD run per normalization and seed (fixture
``vgg_runs``, asked for the seeds of the claim's current look) and decide from the seeds
(harness.claimkit.evidence); the comparisons with the standard net require that both nets train on those
seeds (``harness.preconditions.VGGPreconditions``), and the landscape and ICS readings compare
nets over the checkpoints before any of them has converged, as the DLN half does. Claims with a DLN half (claims/test_santurkar2018_dln.py) are their VGG half here,
``@pytest.mark.claim(ID, case="vgg")``, with test ids like ``S-LAND-LOSS-fast-vgg``.

A test gathers the per-seed measurements and draws the figures; the decision is a function of
harness.readouts.vgg, which compares the measurements with the claim's YAML ``thresholds``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.preconditions import VGGPreconditions
from harness.readouts import vgg as ro
from harness.claimkit.report import figures
from harness.stats import geometric_mean_ratio
from harness.windows import early as early_half
from harness.windows import note_windows, seed_windows
from harness.vgg_runs import block_losses, lr_range, tail_mean

LABELS, LP = ro.LABELS, ro.LP
CURVE_POINTS = 60  # points per training curve in a figure (block means of the per-step series)


def _provenance(verdict, settings, data, vgg_runs=None, more=()) -> dict:
    """The dataset, and with ``vgg_runs`` the probed runs of this look's seeds — the standard and
    BN nets (the preconditions read them) and ``more`` —, after checking the preconditions the
    claim requires on them."""
    verdict.ran_on(f"{data.name} ({settings['config']}, width {settings['width']}, {settings['steps']} steps)", data.stands_in_for)
    if vgg_runs is None:
        return {}
    runs = vgg_runs(verdict.seeds, ("none", "batch", *more))
    VGGPreconditions.measure(runs, verdict.seeds).check(verdict)
    return runs


def _tail_loss(run) -> float:
    return math.inf if run.diverged_at is not None else tail_mean(run.losses)


def _tail_acc(run) -> float:
    return tail_mean(run.accs)


def _shift(run, where="activations") -> float:
    """Mean step-to-step distribution change of one run."""
    return float(np.mean(run.activation_changes(where)))


def _per_seed(runs, fn) -> list[float]:
    return [float(fn(r)) for r in runs]


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


def _windows(runs, norms, settings, seeds, verdict=None) -> list[range]:
    """Per seed, the checkpoints at which every net of ``norms`` is training (harness.windows; a
    run ends at the mean loss over its last 10% of steps, and is at each checkpoint at the mean
    mini-batch loss of the steps around it, :func:`harness.vgg_runs.block_losses`: one mini-batch
    is too noisy a reading of where training is)."""
    return seed_windows(runs, norms, seeds, lambda r: tail_mean(r.losses), settings["converged_within"], verdict, LABELS,
                        losses=block_losses)


def _window_note(verdict, vgg_runs, windows) -> None:
    note_windows(verdict, [c.step for c in vgg_runs["none"][0].checkpoints], windows)


def _landscape_ratios(vgg_runs, settings, seeds, metric, line="gradient_line", early=False, num="none", den="batch",
                      verdict=None) -> list[float]:
    """Per seed, the geometric-mean ratio num/den of ``metric`` over the window (its first half if ``early``)."""
    out = []
    for i, w in enumerate(_windows(vgg_runs, (num, den), settings, seeds, verdict)):
        ks = early_half(w) if early else w
        a, b = ([getattr(vgg_runs[n][i].checkpoints[k], line)[metric] for k in ks] for n in (num, den))
        out.append(geometric_mean_ratio(a, b))
    return out


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
def test_bn_trains_faster_and_generalizes_better(verdict, thresholds, vgg_runs, vgg_settings, vgg_data):
    runs = _provenance(verdict, vgg_settings, vgg_data, vgg_runs)
    loss = {n: _per_seed(runs[n], _tail_loss) for n in ("none", "batch")}
    test_acc = {n: _per_seed(runs[n], lambda r: r.final["test_acc"]) for n in ("none", "batch")}
    verdict.measure(train_accuracy_eval={n: _per_seed(runs[n], lambda r: r.final["train_acc"]) for n in ("none", "batch")})
    verdict.add_figure("training loss (mini-batch, block means, seed mean)", _curves_figure(
        runs, ("none", "batch"), "losses", "training loss", "Fig. 1a: training"))
    evals = {n: runs[n][0].evals for n in ("none", "batch")}
    verdict.add_figure("test accuracy (eval mode) over training, first seed", figures.lines(
        [e["step"] for e in evals["none"]], {LABELS[n]: [e["test_acc"] for e in evals[n]] for n in evals},
        xlabel="SGD step", ylabel="test accuracy", title="Fig. 1b: generalization"))
    verdict.decide_readout(ro.performance(loss, test_acc, thresholds))


@pytest.mark.claim("S-DIST")
def test_distribution_change_similar_with_and_without_bn(verdict, thresholds, vgg_runs, vgg_settings, vgg_data):
    runs = _provenance(verdict, vgg_settings, vgg_data, vgg_runs)
    shift = {n: _per_seed(runs[n], _shift) for n in ("none", "batch")}
    verdict.measure(mean_step_change=shift, layer=vgg_settings["dist_layer"],
                    mean_step_change_after_the_norm={n: _per_seed(runs[n], lambda r: _shift(r, "normalized")) for n in ("none", "batch")})
    verdict.add_figure(f"distribution of one unit of conv layer {vgg_settings['dist_layer']} over training",
                       _distribution_figure(runs, ("none", "batch"), "Fig. 1c: layer-input distribution"))
    verdict.add_figure("step-to-step change of the sampled units' distributions",
                       _changes_figure(runs, ("none", "batch"), "Distributional stability"))
    verdict.decide_readout(ro.distribution_change(shift, thresholds, finite=verdict.finite))


@pytest.mark.claim("S-NOISY-MATCH")
def test_noisy_bn_nearly_matches_bn(verdict, thresholds, vgg_runs, vgg_settings, vgg_data):
    runs = _provenance(verdict, vgg_settings, vgg_data, vgg_runs, ("noisy_batch",))
    norms = ("none", "batch", "noisy_batch")
    acc = {n: _per_seed(runs[n], _tail_acc) for n in norms}
    verdict.measure(final_training_accuracy=acc,
                    test_accuracy={n: _per_seed(runs[n], lambda r: r.final["test_acc"]) for n in norms})
    verdict.add_figure("training accuracy (mini-batch, as trained)", _curves_figure(
        runs, norms, "accs", "training accuracy", "Fig. 2: standard, BN, noisy BN"))
    verdict.add_figure(f"distribution of one unit of conv layer {vgg_settings['dist_layer']} over training",
                       _distribution_figure(runs, norms, "Fig. 2: layer-input distributions"))
    verdict.decide_readout(ro.noisy_match(acc, thresholds, finite=verdict.finite))


@pytest.mark.claim("S-NOISY-UNSTABLE")
def test_noisy_bn_less_stable_than_standard(verdict, thresholds, vgg_runs, vgg_settings, vgg_data):
    runs = _provenance(verdict, vgg_settings, vgg_data, vgg_runs, ("noisy_batch",))
    norms = ("none", "batch", "noisy_batch")
    shift = {n: _per_seed(runs[n], _shift) for n in norms}
    verdict.measure(mean_step_change=shift, layer=vgg_settings["dist_layer"],
                    mean_step_change_after_the_norm={n: _per_seed(runs[n], lambda r: _shift(r, "normalized")) for n in norms})
    verdict.add_figure("step-to-step change of the sampled units' distributions",
                       _changes_figure(runs, norms, "Fig. 7: change of mean and variance"))
    verdict.decide_readout(ro.noisy_unstable(shift, thresholds, finite=verdict.finite))


@pytest.mark.claim("S-NOISE-STD")
def test_noise_prevents_the_standard_net_from_training(verdict, thresholds, vgg_runs, vgg_settings, vgg_data):
    runs = _provenance(verdict, vgg_settings, vgg_data, vgg_runs, ("noise",))
    noisy = runs["noise"]
    acc = _per_seed(noisy, _tail_acc)
    diverged = [r.diverged_at for r in noisy]
    verdict.measure(standard_final_training_accuracy=_per_seed(runs["none"], _tail_acc))
    verdict.add_figure("training accuracy (mini-batch, as trained)", _curves_figure(
        runs, ("none", "noise"), "accs", "training accuracy", "Standard net with and without the noise"))
    verdict.decide_readout(ro.noise_prevents_training(acc, diverged, thresholds))


@pytest.mark.claim("S-ICS-VGG")
def test_bn_does_not_reduce_ics(verdict, thresholds, vgg_runs, vgg_settings, vgg_data):
    runs = _provenance(verdict, vgg_settings, vgg_data, vgg_runs)
    norms = ("none", "batch")
    windows = _windows(runs, norms, vgg_settings, verdict.seeds, verdict)
    _window_note(verdict, runs, windows)
    median = {k: [float(np.median([[layer["cos"] for layer in r.checkpoints[j].ics] for j in w])) for r, w in zip(runs[k], windows)]
              for k in norms}
    verdict.measure(layers=vgg_settings["ics_layers"])
    n = min(_checkpoints(runs[k]) for k in norms)
    cos = {k: np.array([[layer["cos"] for layer in c.ics] for c in runs[k][0].checkpoints[:n]]) for k in norms}
    l2 = {k: np.array([[layer["l2"] for layer in c.ics] for c in runs[k][0].checkpoints[:n]]) for k in norms}
    steps = _steps(runs["none"], n)
    verdict.add_figure("cos(G, G′) over training (first seed), median and range over layers", figures.bands(
        steps, {LABELS[k]: (cos[k].min(axis=1), np.median(cos[k], axis=1), cos[k].max(axis=1)) for k in norms},
        xlabel="SGD step", ylabel="cos(G, G′)", title="ICS (Definition 2.1), VGG"))
    verdict.add_figure("‖G − G′‖₂ over training (first seed), median and range over layers", figures.bands(
        steps, {LABELS[k]: (l2[k].min(axis=1), np.median(l2[k], axis=1), l2[k].max(axis=1)) for k in norms},
        xlabel="SGD step", ylabel="‖G − G′‖₂", title="ICS (Definition 2.1), VGG", logy=True))
    verdict.decide_readout(ro.ics(median, thresholds))


def _line_metric_of(runs, field, n=None) -> list[float]:
    """Per checkpoint, a field of the checkpoint itself (loss, grad_norm) averaged over seeds."""
    n = n or _checkpoints(runs)
    return list(np.mean([[getattr(c, field) for c in r.checkpoints[:n]] for r in runs], axis=0))


def _early_and_window(verdict, runs, vgg_settings, metric, line="gradient_line") -> tuple[list[float], list[float]]:
    _window_note(verdict, runs, _windows(runs, ("none", "batch"), vgg_settings, verdict.seeds, verdict))
    return (_landscape_ratios(runs, vgg_settings, verdict.seeds, metric, line, early=True),
            _landscape_ratios(runs, vgg_settings, verdict.seeds, metric, line))


@pytest.mark.claim("S-LAND-LOSS", case="vgg")
def test_loss_varies_less_along_gradient_with_bn(verdict, thresholds, vgg_runs, vgg_settings, vgg_data):
    runs = _provenance(verdict, vgg_settings, vgg_data, vgg_runs)
    early, window = _early_and_window(verdict, runs, vgg_settings, "loss_range")
    verdict.measure(loss_range={n: _line_metric(runs[n], "loss_range") for n in ("none", "batch")})
    n = min(_checkpoints(runs[k]) for k in ("none", "batch"))
    bands = {}
    for k in ("none", "batch"):
        losses = np.mean([[c.gradient_line["losses"] for c in r.checkpoints[:n]] for r in runs[k]], axis=0)
        bands[LABELS[k]] = (losses.min(axis=1), _line_metric_of(runs[k], "loss", n), losses.max(axis=1))
    verdict.add_figure("loss along the gradient, band over steps [½, 4] × LR (seed mean)", figures.bands(
        _steps(runs["none"], n), bands, xlabel="SGD step", ylabel="loss", title="Fig. 4a: loss landscape (VGG)", logy=True))
    verdict.decide_readout(ro.landscape_loss(early, window, thresholds))


@pytest.mark.claim("S-LAND-GRAD", case="vgg")
def test_gradients_more_predictive_with_bn(verdict, thresholds, vgg_runs, vgg_settings, vgg_data):
    runs = _provenance(verdict, vgg_settings, vgg_data, vgg_runs)
    early, window = _early_and_window(verdict, runs, vgg_settings, "grad_change")
    verdict.measure(grad_change={n: _line_metric(runs[n], "grad_change") for n in ("none", "batch")},
                    gradient_norm={n: _line_metric_of(runs[n], "grad_norm") for n in ("none", "batch")})
    verdict.add_figure("max ℓ2 change of the gradient along the gradient direction (seed mean)", _landscape_figure(
        runs, "grad_change", "max ‖∇L(θ) − ∇L(θ − ηg)‖", "Fig. 4b: gradient predictiveness (VGG)"))
    verdict.decide_readout(ro.landscape_grad(early, window, thresholds))


@pytest.mark.claim("S-LAND-BETA", case="vgg")
def test_effective_beta_lower_with_bn(verdict, thresholds, vgg_runs, vgg_settings, vgg_data):
    runs = _provenance(verdict, vgg_settings, vgg_data, vgg_runs)
    windows = _windows(runs, ("none", "batch"), vgg_settings, verdict.seeds, verdict)
    _window_note(verdict, runs, windows)
    beta = {n: [[r.checkpoints[k].gradient_line["beta"] for k in w] for r, w in zip(runs[n], windows)]
            for n in ("none", "batch")}
    verdict.add_figure("effective β-smoothness along the gradient (seed mean)", _landscape_figure(
        runs, "beta", "max ‖Δ∇L‖ / ‖ηg‖", "Fig. 4c: effective β-smoothness (VGG)"))
    verdict.decide_readout(ro.landscape_beta(beta, thresholds))


@pytest.mark.claim("S-LAND-RANDOM", case="vgg")
def test_smoothing_along_random_directions(verdict, thresholds, vgg_runs, vgg_settings, vgg_data):
    runs = _provenance(verdict, vgg_settings, vgg_data, vgg_runs)
    _window_note(verdict, runs, _windows(runs, ("none", "batch"), vgg_settings, verdict.seeds, verdict))
    loss = _landscape_ratios(runs, vgg_settings, verdict.seeds, "loss_range", line="random_line")
    grad = _landscape_ratios(runs, vgg_settings, verdict.seeds, "grad_change", line="random_line")
    verdict.add_figure("max gradient change along a random direction (seed mean)", _landscape_figure(
        runs, "grad_change", "max ‖Δ∇L‖", "Random direction (VGG)", line="random_line"))
    verdict.decide_readout(ro.landscape_random(loss, grad, thresholds))


@pytest.mark.claim("S-LP-PERF", case="vgg")
def test_lp_normalizations_perform_like_bn(verdict, thresholds, vgg_runs, vgg_settings, vgg_data):
    runs = _provenance(verdict, vgg_settings, vgg_data, vgg_runs, LP)
    norms = ("none", "batch") + LP
    verdict.measure(final_training_loss={n: _per_seed(runs[n], _tail_loss) for n in norms},
                    test_accuracy={n: _per_seed(runs[n], lambda r: r.final["test_acc"]) for n in norms})
    verdict.add_figure("training accuracy per normalization (mini-batch, as trained, block means, seed mean)", _curves_figure(
        runs, norms, "accs", "training accuracy", "Fig. 11a: ℓp normalizations (VGG)"))
    verdict.add_figure("training loss per normalization (mini-batch, block means, seed mean)", _curves_figure(
        runs, norms, "losses", "training loss", "ℓp normalizations (VGG)", logy=True))
    verdict.decide_readout(ro.lp_performance({n: _per_seed(runs[n], _tail_acc) for n in norms}, thresholds, finite=verdict.finite))


@pytest.mark.claim("S-LP-SMOOTH", case="vgg")
def test_lp_normalizations_smooth_the_landscape(verdict, thresholds, vgg_runs, vgg_settings, vgg_data):
    runs = _provenance(verdict, vgg_settings, vgg_data, vgg_runs, LP)
    ratios = {(p, m): _landscape_ratios(runs, vgg_settings, verdict.seeds, m, den=p, verdict=verdict) for p in LP for m in ("grad_change", "beta")}
    verdict.measure(window_checkpoints={LABELS[p]: [list(w) for w in _windows(runs, ("none", p), vgg_settings, verdict.seeds)] for p in LP})
    verdict.add_figure("max gradient change along the gradient, every normalization (seed mean)", _landscape_figure(
        runs, "grad_change", "max ‖Δ∇L‖", "Fig. 11c: gradient predictiveness (VGG)", norms=("none", "batch") + LP))
    verdict.add_figure("effective β-smoothness, every normalization (seed mean)", _landscape_figure(
        runs, "beta", "max ‖Δ∇L‖ / ‖ηg‖", "Fig. 11d: effective β-smoothness (VGG)", norms=("none", "batch") + LP))
    verdict.decide_readout(ro.lp_smoothing(ratios, thresholds))


@pytest.mark.claim("S-LP-SHIFT", case="vgg")
def test_lp_normalizations_shift_distributions_more(verdict, thresholds, vgg_runs, vgg_settings, vgg_data):
    runs = _provenance(verdict, vgg_settings, vgg_data, vgg_runs, LP)
    norms = ("none", "batch") + LP
    shift = {n: _per_seed(runs[n], _shift) for n in norms}
    verdict.measure(mean_step_change=shift, layer=vgg_settings["dist_layer"],
                    mean_step_change_after_the_norm={n: _per_seed(runs[n], lambda r: _shift(r, "normalized")) for n in norms})
    verdict.add_figure(f"distribution of one unit of conv layer {vgg_settings['dist_layer']} over training",
                       _distribution_figure(runs, ("none",) + LP, "Fig. 14: layer-input distributions"))
    verdict.add_figure("step-to-step change of the sampled units' distributions",
                       _changes_figure(runs, norms, "Distributional shift per normalization"))
    verdict.decide_readout(ro.lp_shift(shift, thresholds, finite=verdict.finite))


@pytest.mark.claim("S-LR-RANGE", case="vgg")
def test_bn_trains_over_a_broader_lr_range(verdict, thresholds, settings, vgg_settings, vgg_data, device, model_cache):
    _provenance(verdict, vgg_settings, vgg_data)
    runs = lr_range(("none", "batch"), vgg_data, vgg_settings, settings["lrs"], settings["steps"], verdict.seeds,
                    device, model_cache)
    acc = {n: [run.final["train_acc"] if run.diverged_at is None else 0.0 for run in r.values()] for n, r in runs[0].items()}
    verdict.measure(final_train_accuracy_first_seed=acc,
                    diverged_at=[{n: {str(lr): run.diverged_at for lr, run in r.items()} for n, r in per_seed.items()} for per_seed in runs])
    verdict.add_figure("training accuracy after training at each learning rate (first seed; 0 = diverged)", figures.lines(
        settings["lrs"], {LABELS[n]: a for n, a in acc.items()}, xlabel="learning rate", ylabel="training accuracy (eval mode)",
        title=f"{settings['steps']} SGD steps per LR (VGG)", logx=True))
    verdict.decide_readout(ro.lr_range(runs, thresholds))
