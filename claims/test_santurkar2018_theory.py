"""santurkar2018 §4 and App. C: the BatchNorm theorems as numeric identities and inequalities.

Each test draws many random instances (harness.probes.bn_theory.random_draw: batch sizes 3–64,
y at arbitrary location and scale, γ ∈ [0.1, 5], convex and non-convex smooth losses), computes
both sides with float64 autograd, and reports the number of draws and the worst slack.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.probes import bn_theory as T
from harness.report import figures

DATASET = "random batches and downstream losses (float64)"


def _draws(verdict, settings, convex_every=2):
    verdict.dataset = DATASET
    verdict.seeds = [settings["seed"]]
    rng = np.random.default_rng(settings["seed"])
    return rng, [T.random_draw(rng, convex=i % convex_every == 0) for i in range(settings["draws"])]


@pytest.mark.claim("S-THM41")
def test_gradient_norm_through_bn_is_the_projected_norm(verdict, settings):
    _, draws = _draws(verdict, settings)
    sides = np.array([T.theorem_41(d) for d in draws])  # lhs, rhs, leading term
    rel = np.abs(sides[:, 0] - sides[:, 1]) / sides[:, 2]
    shrink = sides[:, 0] / sides[:, 2]  # ‖∇_y L̂‖² over γ²‖ĝ‖²/σ²: what the projection removes
    verdict.measure(draws=len(draws), worst_relative_error=rel.max(), median_relative_error=np.median(rel),
                    median_fraction_kept_by_projection=np.median(shrink))
    verdict.add_figure("‖∇_y L̂‖² against the right-hand side of Thm. 4.1, one point per draw",
                       figures.scatter_against_bound({"draws": (sides[:, 1], sides[:, 0])}, xlabel="γ²/σ² (‖ĝ‖² − ⟨1,ĝ⟩²/m − ⟨ĝ,ŷ⟩²/m)",
                                                     ylabel="‖∇_y L̂‖² (autograd)", title="Theorem 4.1 holds with equality"))
    verdict.conclude(holds=rel.max() <= 1e-8,
                     summary=f"{len(draws)} draws: worst relative error {rel.max():.1e} (limit 1e-8): equality, as the proof gives")


@pytest.mark.claim("S-THM42")
def test_hessian_quadratic_form_bound(verdict, settings):
    _, draws = _draws(verdict, settings)
    results = [T.theorem_42(d) for d in draws]
    slack = np.array([(r.rhs_first - r.lhs) / r.scale for r in results])
    cond = np.array([r.conditions for r in results])
    second = np.array([r.rhs_second >= r.lhs - 1e-8 * r.scale for r in results])
    worst = slack[cond].min() if cond.any() else float("nan")
    verdict.measure(draws=len(draws), draws_meeting_conditions=int(cond.sum()), worst_slack_under_conditions=worst,
                    largest_abs_slack_all_draws=np.abs(slack).max(), second_form_holds_fraction=second.mean(),
                    second_form_holds_fraction_under_conditions=second[cond].mean() if cond.any() else float("nan"))
    verdict.note("The first inequality is met with equality in every draw, conditions or not: along v = ∇_y L̂ "
                 "the Hessian of L̂ contributes exactly γ²/σ² vᵀHv, and the curvature of BN exactly −γ⟨ĝ,ŷ⟩‖v‖²/(mσ²).")
    verdict.add_figure("quadratic form of the BN Hessian along the gradient against the bound (first form)",
                       figures.scatter_against_bound(
                           {"conditions met": ([r.rhs_first for r, c in zip(results, cond) if c], [r.lhs for r, c in zip(results, cond) if c]),
                            "conditions not met": ([r.rhs_first for r, c in zip(results, cond) if not c], [r.lhs for r, c in zip(results, cond) if not c])},
                           xlabel="γ²/σ² vᵀHv − γ⟨ĝ,ŷ⟩‖v‖²/(mσ²)", ylabel="vᵀ ∇²L̂ v (HVP)", title="Theorem 4.2", symlog=True))
    verdict.conclude(holds=bool(cond.any()) and worst >= -1e-8,
                     summary=f"{int(cond.sum())}/{len(draws)} draws met the conditions; worst slack {worst:.1e} of the terms "
                     f"(limit −1e-8), |slack| ≤ {np.abs(slack).max():.1e} in all draws (equality); second form held in {second.mean():.0%}")


@pytest.mark.claim("S-OBS43")
def test_bn_can_reproduce_any_activations(verdict, settings):
    verdict.dataset, verdict.seeds = DATASET, [settings["seed"]]
    rng = np.random.default_rng(settings["seed"])
    errors = np.array([T.observation_43(rng) for _ in range(settings["draws"])])
    verdict.measure(draws=len(errors), worst_relative_error=errors.max())
    verdict.conclude(holds=errors.max() <= 1e-12,
                     summary=f"{len(errors)} draws of (X, W): worst relative error {errors.max():.1e} (limit 1e-12)")


@pytest.mark.claim("S-THM44")
@pytest.mark.parametrize("reading", ["proved", "printed"], ids=lambda r: f"reading={r}")
def test_minimax_weight_gradient_bound(verdict, settings, reading):
    rng, draws = _draws(verdict, settings)
    bounds = [T.theorem_44(d, float(rng.uniform(0.5, 5)), rng) for d in draws]
    g_hat = np.array([b.g_hat for b in bounds])
    bound = np.array([getattr(b, reading) for b in bounds])
    random_ok = all(b.random_x_max <= b.g_hat * (1 + 1e-9) for b in bounds)
    slack = (bound - g_hat) / g_hat
    violations = int((slack < -1e-8).sum())
    verdict.measure(draws=len(draws), worst_relative_slack=slack.min(), violations=violations,
                    random_x_never_exceed_the_maximum=random_ok)
    verdict.add_figure(f"max ‖∇_W L̂‖² against the {reading} bound, one point per draw",
                       figures.scatter_against_bound({"draws": (bound, g_hat)}, xlabel=f"bound ({reading})", ylabel="max over X of ‖∇_W L̂‖²",
                                                     title=f"Theorem 4.4, {reading} reading", symlog=True))
    verdict.conclude(holds=violations == 0 and random_ok,
                     summary=f"{violations}/{len(draws)} draws violate the {reading} bound; worst relative slack {slack.min():.2g}")


@pytest.mark.claim("S-LEM45")
def test_scale_invariance_and_initialization_distance(verdict, settings):
    verdict.dataset, verdict.seeds = "random least-squares problems with a constant feature (float64)", [settings["seed"]]
    rng = np.random.default_rng(settings["seed"])
    results = [T.lemma_45(rng) for _ in range(settings["draws"])]
    invariance = max(r.scale_invariance_error for r in results)
    stationary = max(r.bn_gradient_at_w_star for r in results)
    applies = [r for r in results if r.applies]
    slack = np.array([(r.bound - r.nearest_bn_optimum) / r.bound for r in applies])
    verdict.measure(draws=len(results), draws_with_positive_inner_product=len(applies), scale_invariance_error=invariance,
                    bn_gradient_at_w_star=stationary, worst_relative_slack=slack.min())
    verdict.note("The bound equals the squared distance from W0 to the ray {c·W*: c > 0}, so it is tight whenever the "
                 "nearest BN optimum lies on that ray, as here.")
    verdict.add_figure("squared distance to the nearest BN optimum against the bound of Lemma 4.5",
                       figures.scatter_against_bound({"⟨w0, w*⟩ > 0": ([r.bound for r in applies], [r.nearest_bn_optimum for r in applies])},
                                                     xlabel="‖w0 − w*‖² − (‖w*‖² − ⟨w*,w0⟩)²/‖w*‖²", ylabel="‖w0 − ŵ*‖²", title="Lemma 4.5"))
    verdict.conclude(holds=invariance <= 1e-12 and stationary <= 1e-10 and slack.min() >= -1e-8,
                     summary=f"invariance error {invariance:.1e}; ‖∇L̂(w*)‖ {stationary:.1e} of scale; "
                     f"{len(applies)}/{len(results)} draws with ⟨w0,w*⟩ > 0, worst slack {slack.min():.1e} (tight)")
