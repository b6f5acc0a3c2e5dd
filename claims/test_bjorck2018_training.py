"""bjorck2018 in training: highest achievable learning rates (§2, App. G/H/J), generalization
(§2, Fig. 1), SGD noise (§2.1, Eq. 2), the diverging update (§3.4, Figs. 5, 6; App. N, Fig. 24),
and the reviews' and later work's questions (small batch, other norms, Fixup).

A claim names the runs it reads through harness.training_runs (searches, full runs, a net at its
best LR), which declares them to --plan, makes the missing ones side by side and serves typed
records; every run goes through a session lab (fixtures/training.py) with one run store, so a
(model, LR, seed) trained for one claim is reused by every other claim and by the next session. A claim runs
on the seeds of its current look (``verdict.seeds``); the lab's preconditions are checked on those
seeds first, and a claim about to make runs of its own stops there when one fails. The few-step
claims use ``training_lab``; the claims that search LRs or train to the end use ``lr_lab``, which
is the same lab unless the profile overrides its settings (fast: a net that leaves chance within
a CPU search run; see claims/bjorck2018_training.yaml).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness import training_runs as runs_of
from harness.lr_search import LRSearch
from harness.probes.sgd_noise import bootstrap_intervals, exact_exponents, exact_noise
from harness.readouts import training as readouts
from harness.readouts.training import fmt_lr as _lr
from harness.readouts.training import fmt_lrs as _lrs
from harness.claimkit.report import figures
from harness.resnet_lab import GradientLinesRun
from harness.training_runs import final

PARTS_ROWS = {  # Table 2: the parts of Eq. 1 kept, and the paper's highest LR (shown in the table, not decided on)
    "γ, β, μ, σ²": ("bn_parts:gamma+beta+mu+sigma2", 0.1),
    "γ, μ, σ²": ("bn_parts:gamma+mu+sigma2", 0.1),
    "β, μ, σ²": ("bn_parts:beta+mu+sigma2", 0.1),
    "μ, σ²": ("bn_parts:mu+sigma2", 0.1),
    "σ²": ("bn_parts:sigma2", 0.01),
    "μ": ("bn_parts:mu", 0.003),
    "none": ("none", 1e-4),
}


def _trials(search: LRSearch) -> str:
    """The trials in run order, consecutive LRs with the same outcome merged: '0.1:d, 0.01…3e-05:c'."""
    runs: list[list] = []
    for t in search.trials:
        if runs and runs[-1][2] == t.status:
            runs[-1][1] = t.lr
        else:
            runs.append([t.lr, t.lr, t.status])
    return ", ".join(f"{a:g}{'' if a == b else f'…{b:g}'}:{status[0]}" for a, b, status in runs)


def _add_lr_table(verdict, title: str, rows: dict[str, tuple[list[LRSearch], float | None]]) -> None:
    verdict.add_table(title + " (outcomes: d = diverged, c = chance, l = learning)",
                      ["paper max LR", "our max LR per seed", "trials per seed (LR: outcome)"],
                      {name: [_lr(paper), _lrs(s), " | ".join(_trials(x) for x in s)] for name, (s, paper) in rows.items()})


@pytest.mark.claim("B-LR-MAX")
def test_max_lr_bn_vs_none(verdict, lr_lab, lab_preconditions, thresholds):
    lab = lr_lab
    runs_of.start(verdict, lab, lab_preconditions, own_runs=False)  # the base nets' searches: measured anyway
    search = runs_of.searches(lab, {"BN": lab.model("batch"), "none": lab.model("none")}, verdict.seeds)
    bn, none = search["BN"], search["none"]
    _add_lr_table(verdict, "Highest achievable LR, like Table 2", {"BN": (bn, 0.1), "unnormalized": (none, 1e-4)})
    verdict.decide_readout(readouts.lr_max(bn, none, thresholds))


@pytest.mark.claim("B-LR-EXTREME")
def test_bn_extreme_lrs(verdict, training_lab, settings, thresholds):
    lab = training_lab
    runs_of.start(verdict, lab)
    seeds = verdict.seeds
    runs = runs_of.constant_lr_runs(lab, lab.model("batch"), (3.0, 10.0), seeds, settings["steps"])
    verdict.add_figure(f"Batch loss at LR 3.0 and 10.0 (BN, seed {seeds[0]})", figures.curves(
        {f"LR {lr:g}": (list(range(1, len(r.losses) + 1)), r.losses) for (lr, seed), r in runs.items() if seed == seeds[0]},
        xlabel="step", ylabel="batch loss", title="BN at extreme LRs", logy=True))
    by_lr = {lr: [runs[lr, s] for s in seeds] for lr in (3.0, 10.0)}
    verdict.decide_readout(readouts.extreme_lrs(by_lr, settings["steps"], thresholds))


def _curves_figure(runs: dict[str, list]) -> str:
    """Train and test accuracy over training of the first seed's run of every net."""
    series = {}
    for name, per_seed in runs.items():
        r = per_seed[0]
        steps = [e["step"] for e in r.evals]
        series[f"{name} train"] = (steps, [e["train_acc"] for e in r.evals])
        series[f"{name} test"] = (steps, [e["test_acc"] for e in r.evals])
    styles = {k: ("--" if k.endswith("train") else "-") for k in series}
    return figures.curves(series, xlabel="step", ylabel="accuracy", title="Learning curves (seed 0), like Fig. 1", styles=styles)


@pytest.mark.claim("B-GEN-HIGHLR")
def test_bn_high_lr_generalizes_better(verdict, lr_lab, lab_preconditions, thresholds):
    lab, seeds = lr_lab, verdict.seeds
    runs_of.start(verdict, lab, lab_preconditions)
    best, none_runs = runs_of.at_best(lab, lab.model("none"), seeds)
    bn_runs = runs_of.full_runs(lab, seeds, {"BN": (lab.model("batch"), 0.1)})["BN"]
    verdict.add_figure("Train (dashed) and test accuracy", _curves_figure({"BN 0.1": bn_runs, f"none {best[0]:g}": none_runs}))
    verdict.decide_readout(readouts.high_lr_generalization(final(bn_runs), final(none_runs), best, 0.1, thresholds),
                           every_seed_finite=True)


@pytest.mark.claim("B-GEN-LOWLR")
def test_bn_low_lr_no_better(verdict, lr_lab, lab_preconditions, thresholds):
    lab, seeds = lr_lab, verdict.seeds
    runs_of.start(verdict, lab, lab_preconditions)
    runs = runs_of.full_runs(lab, seeds, {"BN 1e-4": (lab.model("batch"), 1e-4), "none 1e-4": (lab.model("none"), 1e-4)})
    verdict.add_figure("Train (dashed) and test accuracy at LR 1e-4", _curves_figure(runs))
    verdict.decide_readout(readouts.low_lr_no_better(final(runs["BN 1e-4"]), final(runs["none 1e-4"]), 1e-4, thresholds),
                           every_seed_finite=True)


@pytest.mark.claim("B-GEN-MIDLR")
def test_bn_mid_lr_between(verdict, lr_lab, lab_preconditions, thresholds):
    lab, seeds = lr_lab, verdict.seeds
    runs_of.start(verdict, lab, lab_preconditions)
    runs = runs_of.full_runs(lab, seeds, {lr: (lab.model("batch"), lr) for lr in (1e-4, 0.003, 0.1)})
    acc = {lr: np.asarray(final(r)) for lr, r in runs.items()}
    verdict.add_figure("Train (dashed) and test accuracy of BN per LR", _curves_figure({f"BN {lr:g}": r for lr, r in runs.items()}))
    verdict.decide_readout(readouts.mid_lr_between(acc, thresholds), every_seed_finite=True)


@pytest.mark.claim("B-GEN-GAP")
def test_bn_gap_larger_at_low_lr(verdict, lr_lab, lab_preconditions, thresholds):
    lab, seeds = lr_lab, verdict.seeds
    runs_of.start(verdict, lab, lab_preconditions)
    runs = runs_of.full_runs(lab, seeds, {lr: (lab.model("batch"), lr) for lr in (0.003, 0.1)})
    gap = {lr: np.asarray(final(r, "train_acc")) - np.asarray(final(r)) for lr, r in runs.items()}
    verdict.measure(train_minus_test={f"{lr:g}": g for lr, g in gap.items()})
    gap = {lr: np.asarray(verdict.finite(f"train−test gap at {lr:g}", g)) for lr, g in gap.items()}
    verdict.decide_readout(readouts.gap_larger_at_low_lr(gap, thresholds))


@pytest.mark.claim("R1-LOWLR-LOSS")
def test_bn_low_lr_training_loss(verdict, lr_lab, lab_preconditions, thresholds):
    lab, seeds = lr_lab, verdict.seeds
    runs_of.start(verdict, lab, lab_preconditions)
    runs = runs_of.full_runs(lab, seeds, {"BN": (lab.model("batch"), 1e-4), "none": (lab.model("none"), 1e-4)})
    loss = {name: {key: np.asarray(final(r, key)) for key in ("train_loss", "test_loss")} for name, r in runs.items()}
    lower_test = np.nanmean(loss["BN"]["test_loss"]) < np.nanmean(loss["none"]["test_loss"])
    verdict.note(f"Test loss (seed mean) is {'lower' if lower_test else 'not lower'} with BN.")
    verdict.decide_readout(readouts.low_lr_training_loss(loss["BN"], loss["none"], 1e-4, thresholds), every_seed_finite=True)


@pytest.mark.claim("B-SGD-NOISE")
def test_sgd_noise_exponents(verdict, training_lab, settings, thresholds):
    lab = training_lab
    runs_of.start(verdict, lab)
    verdict.seeds = [settings["seed"]]
    grads = lab.per_example_gradients({"depth": settings["depth"], "norm": "none", "width": settings["width"]}, settings["n"],
                                      settings["seed"])
    sizes, lrs = settings["batch_sizes"], settings["lrs"]
    exact = exact_noise(grads, sizes, lrs)
    slopes = exact_exponents(exact)
    mc = bootstrap_intervals(grads, sizes, settings["draws"], torch.Generator().manual_seed(settings["seed"]))
    per_unit_lr = np.asarray(exact["noise"])[:, 0] / lrs[0] ** 2  # the expectation at α = 1
    covered = [low <= e <= high for (_, low, high), e in zip(mc, per_unit_lr)]
    readout = readouts.sgd_noise_exponents(slopes["batch"], slopes["lr"], covered, settings["draws"], thresholds)
    verdict.measure(exact_noise=exact["noise"], **readout.values,
                    monte_carlo={b: {"mean": m, "low": lo, "high": hi} for b, (m, lo, hi) in zip(sizes, mc)})
    series, styles = {}, {}
    for j, a in enumerate(lrs):
        series[f"α={a:g} exact"] = (sizes, np.asarray(exact["noise"])[:, j])
        series[f"α={a:g} Monte Carlo"] = (sizes, [a**2 * m for m, _, _ in mc])
        styles[f"α={a:g} Monte Carlo"] = "--"
    verdict.add_figure("SGD noise vs |B| (log–log): exact expectation, Monte-Carlo means dashed", figures.curves(
        series, xlabel="|B|", ylabel="E‖α∇f − α∇_SGD‖²", title="SGD noise, batches with replacement", logx=True, logy=True,
        styles={k: styles.get(k, "-") for k in series}))
    verdict.conclude_exact(readout)  # one exact computation, no seeds


def _div_provenance(verdict, lab, diverging_updates, settings) -> dict:
    runs_of.start(verdict, lab)
    diverging_updates = diverging_updates(verdict.seeds)
    missing = [seed for seed, found in diverging_updates.items() if found is None]
    if missing:
        verdict.conclude("inconclusive", f"no divergence up to LR {settings['lr'] * 2 ** settings['doublings']:g} within "
                                         f"{settings['max_steps']} steps on seed(s) {missing}: no diverging update to probe")
    verdict.note("Diverging update per seed: " + ", ".join(f"seed {seed}: step {u.step} at LR {u.lr:g}"
                                                        for seed, u in diverging_updates.items())
                 + " (paper: LR 0.002); the next batch's loss exceeded 1e3. Δ is the update SGD applied "
                   "(gradient, momentum and weight decay).")
    return diverging_updates


@pytest.mark.claim("B-DIV-PATH")
def test_diverging_update_loss_path(verdict, training_lab, diverging_updates, settings, thresholds):
    found = _div_provenance(verdict, training_lab, diverging_updates, settings)
    readout = readouts.diverging_path(found, thresholds)
    verdict.measure(loss={str(seed): u.path["loss"] for seed, u in found.items()})
    verdict.add_figure("Batch loss along the diverging update, like Fig. 5", figures.curves(
        {f"seed {seed}: LR {u.lr:g}, step {u.step}": (u.path["t"], np.clip(u.path["loss"], None, 1e30)) for seed, u in found.items()},
        xlabel="t (fraction of the update)", ylabel="batch loss", title="Loss along θ + tΔ", logy=True))
    verdict.decide_readout(readout)


@pytest.mark.claim("B-DIV-MOMENTS")
def test_diverging_update_moments(verdict, training_lab, diverging_updates, settings, thresholds):
    found = _div_provenance(verdict, training_lab, diverging_updates, settings)
    readout = readouts.diverging_moments([u.path for u in found.values()], thresholds)
    first_seed, path = next(iter(found)), next(iter(found.values())).path
    layers = sorted(path["var"])
    third = len(layers) // 3
    shown = [layers[0], layers[third], layers[2 * third], layers[-1]]
    for moment, label in (("mean", "|channel mean|"), ("var", "channel variance")):
        verdict.add_figure(f"{label} along the diverging update (seed {first_seed}), like Fig. 6", figures.curves(
            {f"layer {k}": (path["t"], path[moment][k]) for k in shown}, xlabel="t", ylabel=label,
            title=f"{label} per layer along θ + tΔ", logy=True))
    verdict.decide_readout(readout)  # no summary of its own: the conditions' intervals, as before


@pytest.mark.claim("B-DIV-BN-STEP")
def test_bn_takes_larger_decreasing_steps(verdict, training_lab, settings, thresholds):
    lab = training_lab
    runs_of.start(verdict, lab)
    etas = np.logspace(np.log10(settings["eta_min"]), np.log10(settings["eta_max"]), settings["etas"])
    seeds, batches = verdict.seeds, settings["batches"]
    nets = {(name, seed): GradientLinesRun(norm=norm, lr=lr, batches=batches, etas=etas, seed=seed)
            for seed in seeds for name, norm, lr in (("BN", "batch", settings["lr_bn"]), ("none", "none", settings["lr_none"]))}
    lines = dict(zip(nets, lab.side_by_side(list(nets.values()))))
    diverged = [f"{n} on seed {seed}" for (n, seed), found in lines.items() if found is None]
    if diverged:
        verdict.conclude("inconclusive", f"the run diverged before batch {max(batches)} ({', '.join(diverged)}): no loss line there")
    verdict.add_figure(f"Batch loss along −η·g (seed {seeds[0]}), like Fig. 24", figures.curves(
        {f"{n}, batch {b}": (etas, np.clip(np.asarray(lines[n, seeds[0]][b]["loss"]) / lines[n, seeds[0]][b]["loss0"], None, 1e6))
         for n in ("BN", "none") for b in batches},
        xlabel="step size η", ylabel="loss(θ − ηg) / loss(θ)", title="Loss along the gradient", logx=True, logy=True))
    verdict.decide_readout(readouts.bn_decreasing_steps(lines, seeds, batches, thresholds))


@pytest.mark.claim("B-TOP-LR")
def test_bn_on_top_only(verdict, lr_lab, lab_preconditions, settings, thresholds):
    lab, seeds = lr_lab, verdict.seeds
    runs_of.start(verdict, lab, lab_preconditions)
    grid = runs_of.grid(lab, settings.get("extra_lrs", ()))
    nets = {"BN": lab.model("batch"), "top only": lab.model("batch", norm_where="top"), "none": lab.model("none")}
    search = runs_of.searches(lab, nets, seeds, grid)
    acc = {n: np.asarray(final(runs_of.at_best(lab, m, seeds, grid)[1])) for n, m in nets.items()}
    _add_lr_table(verdict, "Highest achievable LR with BN on top only",
        {"BN": (search["BN"], 0.1), "BN on top only": (search["top only"], 0.03), "none": (search["none"], 1e-4)})
    verdict.decide_readout(readouts.top_lr(search, acc, thresholds), every_seed_finite=True)


@pytest.mark.claim("B-ALT-LR")
def test_alternating_normalization_lr(verdict, lr_lab, lab_preconditions, settings, thresholds):
    lab = lr_lab
    runs_of.start(verdict, lab, lab_preconditions)
    grid = runs_of.grid(lab, settings.get("extra_lrs", ()))
    search = runs_of.searches(lab, {n: lab.model(k) for n, k in (("unnormalized", "none"), ("alternating", "alternating"), ("BN", "batch"))},
                       verdict.seeds, grid)
    _add_lr_table(verdict, "Highest achievable LR, like Table 3",
        {"unnormalized": (search["unnormalized"], 1e-4), "alternating normalization": (search["alternating"], 0.01), "BN": (search["BN"], 0.1)})
    verdict.decide_readout(readouts.alternating_lr(search["unnormalized"], search["alternating"], search["BN"], thresholds))


@pytest.mark.claim("B-DEPTH-LR")
def test_shallower_tolerates_larger_lr(verdict, lr_lab, lab_preconditions, settings, thresholds):
    lab = lr_lab
    runs_of.start(verdict, lab, lab_preconditions)
    grid = runs_of.grid(lab, settings.get("extra_lrs", ()))
    depths = lab.settings["depth_sweep"]
    search = runs_of.searches(lab, {d: lab.model("none", depth=d) for d in depths}, verdict.seeds, grid)
    paper = dict(zip(depths, (0.1, 0.01, 1e-4)))
    _add_lr_table(verdict, "Highest achievable LR of unnormalized ResNets by depth, like Table 3",
        {f"ResNet-{d} (paper: ResNet-{p})": (search[d], paper[d]) for d, p in zip(depths, (32, 56, 110))})
    verdict.decide_readout(readouts.depth_lr(search, thresholds))


@pytest.mark.claim("B-WARM-LR")
def test_warm_start_allows_larger_lr(verdict, lr_lab, lab_preconditions, settings, thresholds):
    lab = lr_lab
    runs_of.start(verdict, lab, lab_preconditions)
    grid = runs_of.grid(lab, settings.get("extra_lrs", ()))
    cold = runs_of.searches(lab, {"cold": lab.model("none")}, verdict.seeds, grid)["cold"]
    warm = runs_of.searches(lab, {"warm": lab.model("none")}, verdict.seeds, grid, warm_start=True)["warm"]
    verdict.measure(warm_start_steps=lab.epoch_steps())
    _add_lr_table(verdict, "Highest achievable LR with and without a warm start",
        {"unnormalized, cold": (cold, 1e-4), "unnormalized, warm start": (warm, 0.01)})
    verdict.decide_readout(readouts.warm_start_lr(cold, warm, thresholds))


@pytest.mark.claim("B-PARTS")
def test_parts_of_bn(verdict, lr_lab, lab_preconditions, settings, thresholds):
    lab = lr_lab
    runs_of.start(verdict, lab, lab_preconditions)
    grid = runs_of.grid(lab, settings.get("extra_lrs", ()))
    search = runs_of.searches(lab, {row: lab.model(kind) for row, (kind, _) in PARTS_ROWS.items()}, verdict.seeds, grid)
    _add_lr_table(verdict, "Highest achievable LR per part of BN, like Table 2",
        {row: (search[row], paper) for row, (_, paper) in PARTS_ROWS.items()})
    verdict.decide_readout(readouts.parts_lr(search, thresholds))


@pytest.mark.claim("X-SMALLBATCH")
def test_small_batch_small_lr(verdict, lr_lab, lab_preconditions, settings, thresholds):
    lab, seeds = lr_lab, verdict.seeds
    runs_of.start(verdict, lab, lab_preconditions)
    k = settings["batch_divisor"]
    steps = lab.settings["train_steps"] * k  # same number of epochs
    best, base_runs = runs_of.at_best(lab, lab.model("none"), seeds)
    small_runs = [{"model": lab.model("none"), "lr": lr / k, "seed": seed, "batch_size": 128 // k, "steps": steps}
                  for seed, lr in zip(seeds, best)]
    bn = {lr: final(r) for lr, r in runs_of.full_runs(lab, seeds, {lr: (lab.model("batch"), lr) for lr in settings["lrs"]},
                                                      more=small_runs).items()}
    small_acc = final([runs_of.full_run(lab, run) for run in small_runs])
    bn_lr = [max(settings["lrs"], key=lambda lr: -np.inf if np.isnan(bn[lr][i]) else bn[lr][i]) for i in range(len(seeds))]
    verdict.measure(none_lr=best, bn_best_lr=bn_lr)
    bn_acc = [bn[lr][i] for i, lr in enumerate(bn_lr)]
    verdict.decide_readout(readouts.small_batch(final(base_runs), small_acc, bn_acc, k, 128, thresholds), every_seed_finite=True)


@pytest.mark.claim("X-ALTNORMS")
def test_group_and_layer_norm_lr(verdict, lr_lab, lab_preconditions, settings, thresholds):
    lab = lr_lab
    runs_of.start(verdict, lab, lab_preconditions)
    search = runs_of.searches(lab, {n: lab.model(k) for n, k in (("BN", "batch"), ("GroupNorm", "group"), ("LayerNorm", "layer"))},
                       verdict.seeds, runs_of.grid(lab, settings.get("extra_lrs", ())))
    _add_lr_table(verdict, "Highest achievable LR per normalization", {n: (s, None) for n, s in search.items()})
    verdict.decide_readout(readouts.alt_norms_lr(search["BN"], search["GroupNorm"], search["LayerNorm"], thresholds))


@pytest.mark.claim("X-FIXUP")
def test_fixup_trains_at_high_lr(verdict, lr_lab, lab_preconditions, thresholds):
    lab = lr_lab
    runs_of.start(verdict, lab, lab_preconditions)
    search = runs_of.searches(lab, {"fixup": lab.model("none", fixup=True), "none": lab.model("none")}, verdict.seeds)
    fixup, none = search["fixup"], search["none"]
    _add_lr_table(verdict, "Highest achievable LR with Fixup", {"Fixup, no norm": (fixup, 0.1), "no norm": (none, 1e-4)})
    verdict.decide_readout(readouts.fixup_lr(fixup, none, thresholds))
