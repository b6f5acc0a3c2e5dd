"""bjorck2018 §4 and Apps. C–E: random-matrix products and linear networks.

Gaussian products come from the session fixture ``gaussian_products`` (one chain of factors per
run, N = 1000 and 5 runs as in Figs. 8, 11, 12); the claims read it without recomputing.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from fixtures.rmt import product_runs
from harness.models import deep_linear
from harness.probes import linear, rmt
from harness.readouts import rmt as readouts
from harness.claimkit.report import figures

DATASET = "Gaussian random matrices (no data)"


def _record_provenance(verdict, products) -> None:
    verdict.dataset = DATASET
    verdict.seeds = list(products.seeds)


@pytest.mark.claim("B-RMT-DENSITY")
@pytest.mark.parametrize("reading", ["squared", "singular"], ids=lambda r: f"reading={r}")
def test_density_follows_eq5(verdict, settings, thresholds, gaussian_products, reading):
    """Eq. 5 against the pooled spectrum, read as density of σ² (squared) or of σ (singular)."""
    _record_provenance(verdict, gaussian_products)
    ks, panels = {}, []
    for M in settings["density_factors"]:
        law = rmt.FussCatalan(M)
        s = gaussian_products.singular_values(M)
        values = s**2 if reading == "squared" else s
        ks[M] = rmt.ks_distance(values, law.cdf)
        grid = np.geomspace(max(values.min(), law.upper * 1e-30), law.upper, 600)
        panels.append(
            {"label": f"M = {M}  (KS {ks[M]:.3f})", "samples": values, "grid": grid, "density": law.pdf(grid),
             "xlabel": "σ²" if reading == "squared" else "σ"}
        )
    readout = readouts.density(ks, thresholds)
    verdict.measure(**readout.values, N=gaussian_products.N, runs=len(gaussian_products.runs))
    verdict.add_figure(
        f"Histogram of {'σ²' if reading == 'squared' else 'σ'} vs Eq. 5",
        figures.histograms_with_density(panels, title=f"Eq. 5 read as the density of {'σ²' if reading == 'squared' else 'σ'}"),
    )
    verdict.conclude_exact(readout)


@pytest.mark.claim("B-RMT-EDGE")
def test_largest_squared_singular_value_approaches_edge(verdict, settings, thresholds, gaussian_products, claims_registry,
                                                        profile, model_cache):
    """Mean relative gap 1 − λ_max/edge(M) at N = 250, 500 and the shared N = 1000."""
    shared = claims_registry.family_settings("bjorck2018_rmt", profile)
    by_size = {N: product_runs(N, settings["edge_factors"], settings["runs_by_size"][N], shared["seed"] + 1000 * N,
                               cache=model_cache, kappa=False) for N in settings["sizes"]}
    by_size[gaussian_products.N] = gaussian_products
    verdict.dataset = DATASET
    verdict.seeds = sorted({s for runs in by_size.values() for s in runs.seeds})
    sizes = sorted(by_size)
    gaps = {M: {N: float(1 - np.mean(by_size[N].per_run(M, "sigma_max") ** 2) / rmt.edge(M)) for N in sizes}
            for M in settings["edge_factors"]}
    readout = readouts.edge(gaps, thresholds)
    verdict.measure(**readout.values, edge={M: rmt.edge(M) for M in gaps}, runs_by_size={N: len(by_size[N].runs) for N in sizes})
    verdict.add_figure(
        "relative gap 1 − λ_max/edge vs N",
        figures.lines(sizes, {f"M = {M}": [gaps[M][N] for N in sizes] for M in gaps},
                      xlabel="N", ylabel="1 − mean λ_max / edge(M)", title="λ_max approaches the edge of Eq. 5", logx=True),
    )
    verdict.conclude_exact(readout)


@pytest.mark.claim("B-RMT-KAPPA")
def test_condition_number_grows_with_factors(verdict, thresholds, gaussian_products):
    _record_provenance(verdict, gaussian_products)
    Ms = list(gaussian_products.factors)
    readout = readouts.kappa({M: np.log10(gaussian_products.per_run(M, "kappa")) for M in Ms}, thresholds)
    verdict.measure(**readout.values)
    means = [readout.values["mean_log10_kappa"][M] for M in Ms]
    stds = [readout.values["std_log10_kappa"][M] for M in Ms]
    verdict.add_figure(
        "condition number vs number of factors (mean ± std over runs)",
        figures.errorbar_lines(
            Ms, {f"N = {gaussian_products.N}": (means, stds)}, log_stats=True,
            xlabel="number of factors M", ylabel="κ", title="κ of a product of Gaussian matrices"),
    )
    verdict.conclude_exact(readout)


@pytest.mark.claim("B-RMT-SMAX")
def test_max_singular_value_grows_sublinearly(verdict, thresholds, gaussian_products):
    _record_provenance(verdict, gaussian_products)
    Ms = list(gaussian_products.factors)
    smax = {M: gaussian_products.per_run(M, "sigma_max") for M in Ms}
    readout = readouts.sigma_max(smax, {M: rmt.edge(M) for M in Ms}, thresholds)
    verdict.measure(**readout.values)
    mean = np.array([readout.values["mean_sigma_max"][M] for M in Ms])
    std = np.array([smax[M].std(ddof=1) for M in Ms])
    edges = np.array([rmt.edge(M) for M in Ms])
    verdict.add_figure(
        "maximum singular value vs number of factors",
        figures.errorbar_lines(Ms, {"measured σ_max": (mean, std)}, xlabel="number of factors M", ylabel="σ_max",
                               title="σ_max of the product", reference={"√edge(M) (Eq. 5 read as σ²)": np.sqrt(edges),
                                                                        "edge(M), the paper's linear expectation": edges}),
    )
    verdict.conclude_exact(readout)


@pytest.mark.claim("B-RMT-TAILS")
def test_spectrum_heavier_tailed_with_factors(verdict, thresholds, gaussian_products):
    _record_provenance(verdict, gaussian_products)
    Ms = list(gaussian_products.factors)
    ratio = {M: rmt.tail_ratio(gaussian_products.singular_values(M)) for M in Ms}
    kurt = {M: float(scipy.stats.kurtosis(gaussian_products.singular_values(M))) for M in Ms}
    readout = readouts.tails(ratio, kurt, thresholds)
    verdict.measure(**readout.values)
    verdict.add_figure(
        "singular value distributions (pooled runs), log axis; values below ~1e-15 are at float64 resolution",
        figures.overlaid_histograms({f"M = {M}": gaussian_products.singular_values(M) for M in Ms},
                                    xlabel="singular value σ", title="Spectra of products of M Gaussian matrices", logx=True),
    )
    verdict.conclude_exact(readout)


@pytest.mark.claim("B-RMT-UNIV")
def test_universality_and_scale_do_not_fix_conditioning(verdict, settings, thresholds, model_cache):
    """Scale with common random numbers (exact invariance); distributions by their growth rate of κ.

    A per-run log10 κ scatters by ~1–1.7 decades (σ_min is heavy-tailed), so distributions are
    compared by the regression slope over all runs, not by per-M means of a few runs.
    """
    Ms, N, seed = sorted(settings["factors"]), settings["N"], settings["seed"]
    xavier = product_runs(N, Ms, settings["scale_runs"], seed, "gaussian", 1.0, model_cache)
    kaiming = product_runs(N, Ms, settings["scale_runs"], seed, "gaussian", 2.0, model_cache)

    log10_kappa = {}
    for i, dist in enumerate(rmt.ENTRY_DISTRIBUTIONS):
        runs = product_runs(N, Ms, settings["runs"], seed + 1000 * (i + 1), dist, 1.0, model_cache)
        verdict.seeds += list(runs.seeds)
        log10_kappa[dist] = {M: np.log10(runs.per_run(M, "kappa")) for M in Ms}
    verdict.dataset = DATASET
    verdict.seeds += list(xavier.seeds)
    readout = readouts.universality({M: xavier.per_run(M, "kappa") for M in Ms}, {M: kaiming.per_run(M, "kappa") for M in Ms},
                                    log10_kappa, thresholds)
    verdict.measure(**readout.values, N=N)
    mean_log = readout.values["mean_log10_kappa"]
    verdict.add_figure(
        "κ vs factors for several entry distributions",
        figures.lines(Ms, {d: [10 ** v[M] for M in Ms] for d, v in mean_log.items()}, xlabel="number of factors M",
                      ylabel="κ (geometric mean over runs)", title=f"Universality of ill-conditioning (N = {N})", logy=True),
    )
    verdict.conclude_exact(readout)


@pytest.mark.claim("B-LIN-PROP1")
def test_single_factor_is_independent_least_squares(verdict, settings, thresholds):
    rng = np.random.default_rng(settings["seed"])
    loss_err, solution_err, trajectory_err = [], [], []
    for _ in range(settings["problems"]):
        d, h, n = (int(v) for v in rng.integers(2, 8, size=3))
        h = min(h, d)  # Ā must have full column rank for a unique optimum
        m = n + int(rng.integers(1, 20))
        Abar, x, y = rng.standard_normal((d, h)), rng.standard_normal((n, m)), rng.standard_normal((d, m))
        problem = linear.decouple(Abar, x, y)
        A1 = rng.standard_normal((h, n))
        direct = linear.loss_direct(Abar, A1, x, y)
        loss_err.append(abs(direct - problem.loss(Abar, problem.to_columns(A1))) / direct)
        ref, cols = linear.solve_direct(Abar, x, y), linear.solve_decoupled(Abar, problem)
        solution_err.append(np.linalg.norm(ref - cols) / np.linalg.norm(ref))
        lr = 0.1 / (np.linalg.norm(Abar, 2) * np.linalg.norm(x, 2)) ** 2  # a stable step for both
        a = np.array(linear.gd_direct(Abar, x, y, A1, lr, settings["gd_steps"]))
        b = np.array(linear.gd_decoupled(Abar, problem, A1, lr, settings["gd_steps"]))
        trajectory_err.append(float(np.max(np.abs(a - b) / a)))
    readout = readouts.proposition_1(loss_err, solution_err, trajectory_err, thresholds)
    verdict.measure(**readout.values)
    verdict.dataset = "random least-squares problems (float64)"
    verdict.seeds = [settings["seed"]]
    verdict.conclude_exact(readout)


@pytest.mark.claim("B-LIN-KAPPA")
def test_conditioning_slows_gd_and_limits_lr(verdict, settings, thresholds):
    depths, seeds = settings["depths"], settings["seeds"]
    kappas, max_lrs, theory_lr = {}, {}, {}
    for depth in depths:
        ks, lrs, th = [], [], []
        for seed in seeds:
            torch.manual_seed(seed)
            net = deep_linear(depth=depth, width=settings["width"], norm="none", init="xavier_uniform")
            A = net.end_to_end().detach().double().numpy()
            b = np.random.default_rng(seed).standard_normal(settings["width"])
            ks.append(np.linalg.norm(A, 2) * np.linalg.norm(np.linalg.inv(A), 2))  # as in probes.rmt
            lrs.append(linear.max_stable_lr(A, b))
            th.append(2 / np.linalg.norm(A, 2) ** 2)
        kappas[depth], max_lrs[depth], theory_lr[depth] = ks, lrs, float(np.mean(th))
    rng = np.random.default_rng(settings["seed"])
    iterations = {}
    for k in settings["kappas"]:
        A = linear.matrix_with_condition(rng, settings["size"], k)
        steps = linear.gd_iterations_to_tolerance(A, rng.standard_normal(settings["size"]), lr=1 / np.linalg.norm(A, 2) ** 2,
                                                  tol=1e-6, max_steps=10**6)
        iterations[k] = steps
    readout = readouts.linear_conditioning(kappas, max_lrs, iterations, thresholds)
    verdict.measure(**readout.values, theory_2_over_smax2=theory_lr)
    kappa, max_lr = readout.values["kappa_by_depth"], readout.values["max_stable_lr_by_depth"]
    exponent = readout.values["iterations_exponent_in_kappa"]
    verdict.dataset = "Xavier-initialized linear nets; least-squares problems (float64)"
    verdict.seeds = list(seeds)
    verdict.add_figure(
        "depth → κ and largest stable LR; κ → GD iterations",
        figures.lines(depths, {"κ (geometric mean)": [kappa[d] for d in depths], "largest stable LR": [max_lr[d] for d in depths]},
                      xlabel="depth of the linear net", ylabel="value", title=f"Linear nets, width {settings['width']}", logy=True),
    )
    verdict.add_figure(
        "GD iterations to 1e-6 vs κ",
        figures.lines([float(k) for k in settings["kappas"]], {"iterations": [float(iterations[k]) for k in settings["kappas"]]},
                      xlabel="κ", ylabel="GD steps", title=f"slope {exponent:.2f} on log–log axes", logx=True, logy=True),
    )
    verdict.conclude_exact(readout)
