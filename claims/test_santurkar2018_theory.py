"""santurkar2018 §4 and App. C: the BatchNorm theorems as numeric identities and inequalities.

Each test draws many random instances (harness.probes.bn_theory.random_draw: batch sizes 3–64,
y at arbitrary location and scale, γ ∈ [0.1, 5], convex and non-convex smooth losses), computes
both sides with float64 autograd, and reports the number of draws and the worst slack.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.probes import bn_theory as T
from harness.readouts import theory as readouts
from harness.claimkit.report import figures

DATASET = "random batches and downstream losses (float64)"


def _draws(verdict, settings, convex_every=2):
    verdict.dataset = DATASET
    verdict.seeds = [settings["seed"]]
    rng = np.random.default_rng(settings["seed"])
    return rng, [T.random_draw(rng, convex=not i % convex_every) for i in range(settings["draws"])]


@pytest.mark.claim("S-THM41")
def test_gradient_norm_through_bn_is_the_projected_norm(verdict, settings, thresholds):
    _, draws = _draws(verdict, settings)
    sides = np.array([T.theorem_41(d) for d in draws])  # lhs, rhs, leading term
    readout = readouts.theorem_41(sides, thresholds)
    verdict.measure(**readout.values)
    verdict.add_figure("‖∇_y L̂‖² against the right-hand side of Thm. 4.1, one point per draw",
                       figures.scatter_against_bound({"draws": (sides[:, 1], sides[:, 0])}, xlabel="γ²/σ² (‖ĝ‖² − ⟨1,ĝ⟩²/m − ⟨ĝ,ŷ⟩²/m)",
                                                     ylabel="‖∇_y L̂‖² (autograd)", title="Theorem 4.1 holds with equality"))
    verdict.conclude_exact(readout)


@pytest.mark.claim("S-THM42")
def test_hessian_quadratic_form_bound(verdict, settings, thresholds):
    _, draws = _draws(verdict, settings)
    results = [T.theorem_42(d) for d in draws]
    readout = readouts.theorem_42(results, thresholds)
    verdict.measure(**readout.values)
    cond = [r.conditions for r in results]
    verdict.note("The first inequality is met with equality in every draw, conditions or not: along v = ∇_y L̂ "
                 "the Hessian of L̂ contributes exactly γ²/σ² vᵀHv, and the curvature of BN exactly −γ⟨ĝ,ŷ⟩‖v‖²/(mσ²).")
    verdict.add_figure("quadratic form of the BN Hessian along the gradient against the bound (first form)",
                       figures.scatter_against_bound(
                           {"conditions met": ([r.rhs_first for r, c in zip(results, cond) if c], [r.lhs for r, c in zip(results, cond) if c]),
                            "conditions not met": ([r.rhs_first for r, c in zip(results, cond) if not c], [r.lhs for r, c in zip(results, cond) if not c])},
                           xlabel="γ²/σ² vᵀHv − γ⟨ĝ,ŷ⟩‖v‖²/(mσ²)", ylabel="vᵀ ∇²L̂ v (HVP)", title="Theorem 4.2", symlog=True))
    verdict.conclude_exact(readout)


@pytest.mark.claim("S-OBS43")
def test_bn_can_reproduce_any_activations(verdict, settings, thresholds):
    verdict.dataset, verdict.seeds = DATASET, [settings["seed"]]
    rng = np.random.default_rng(settings["seed"])
    readout = readouts.observation_43([T.observation_43(rng) for _ in range(settings["draws"])], thresholds)
    verdict.measure(**readout.values)
    verdict.conclude_exact(readout)


@pytest.mark.claim("S-THM44")
@pytest.mark.parametrize("reading", ["proved", "printed"], ids=lambda r: f"reading={r}")
def test_minimax_weight_gradient_bound(verdict, settings, thresholds, reading):
    rng, draws = _draws(verdict, settings)
    bounds = [T.theorem_44(d, float(rng.uniform(0.5, 5)), rng) for d in draws]
    readout = readouts.theorem_44(bounds, reading, thresholds)
    verdict.measure(**readout.values)
    g_hat = np.array([b.g_hat for b in bounds])
    bound = np.array([getattr(b, reading) for b in bounds])
    verdict.add_figure(f"max ‖∇_W L̂‖² against the {reading} bound, one point per draw",
                       figures.scatter_against_bound({"draws": (bound, g_hat)}, xlabel=f"bound ({reading})", ylabel="max over X of ‖∇_W L̂‖²",
                                                     title=f"Theorem 4.4, {reading} reading", symlog=True))
    verdict.conclude_exact(readout)


@pytest.mark.claim("S-LEM45")
def test_scale_invariance_and_initialization_distance(verdict, settings, thresholds):
    verdict.dataset, verdict.seeds = "random least-squares problems with a constant feature (float64)", [settings["seed"]]
    rng = np.random.default_rng(settings["seed"])
    results = [T.lemma_45(rng) for _ in range(settings["draws"])]
    readout = readouts.lemma_45(results, thresholds)
    verdict.measure(**readout.values)
    applies = [r for r in results if r.applies]
    verdict.note("The bound equals the squared distance from W0 to the ray {c·W*: c > 0}, so it is tight whenever the "
                 "nearest BN optimum lies on that ray, as here.")
    verdict.add_figure("squared distance to the nearest BN optimum against the bound of Lemma 4.5",
                       figures.scatter_against_bound({"⟨w0, w*⟩ > 0": ([r.bound for r in applies], [r.nearest_bn_optimum for r in applies])},
                                                     xlabel="‖w0 − w*‖² − (‖w*‖² − ⟨w*,w0⟩)²/‖w*‖²", ylabel="‖w0 − ŵ*‖²", title="Lemma 4.5"))
    verdict.conclude_exact(readout)
