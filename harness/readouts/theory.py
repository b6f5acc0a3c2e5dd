"""santurkar2018 §4 and App. C: the BatchNorm theorems, from both sides of each draw to verdicts.

Every claim of the family is an exact identity or inequality, checked in float64 on hundreds of
random draws (harness.probes.bn_theory), and seed-exempt. Each readout takes the per-draw results
(both sides of the theorem, or the probe's result objects) and the claim's thresholds (its YAML
``thresholds``: float64 rounding tolerances, as relative errors or relative slacks), computes the
worst case over the draws that the claim records, and returns a :class:`Readout` whose conditions
are yes/no flags, one per check, true when the check passes in every draw. The claim holds when
every flag is true and is refuted otherwise; the test passes ``readout.verdict`` to
``verdict.conclude``, which records exactly the verdict and summary that the inline check recorded
before (``verdict.decide`` would add the conditions to the summary).

A slack is (bound − measured side) / the magnitude of the terms: a negative slack is a violation,
and ``min_slack`` (a small negative number) is how much of one float64 rounding may explain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.claimkit.evidence import Condition, Readout
from harness.readouts import paper_num
from harness.claimkit.registry import Thresholds


def limit(value: float) -> str:
    """A tolerance as the summaries print it (:func:`harness.readouts.paper_num`, 1e-8 not 1e-08),
    with a minus sign, not a hyphen."""
    return "−" + paper_num(-value) if value < 0 else paper_num(value)


def _need(draws: Sequence, what: str) -> None:
    if len(draws) == 0:
        raise ValueError(f"{what}: no draws given")


def theorem_41(sides: Sequence[Sequence[float]], thresholds: Thresholds) -> Readout:
    """S-THM41, read as an identity: per draw (lhs, rhs, leading term) = (‖∇_y L̂‖² by autograd, the
    theorem's γ²/σ² (‖ĝ‖² − ⟨1,ĝ⟩²/m − ⟨ĝ,ŷ⟩²/m), γ²‖ĝ‖²/σ²). The error |lhs − rhs| relative to the
    leading term must be at most ``max_relative_error`` in every draw. Also recorded: the median
    error and the median share lhs/leading term that the projection keeps."""
    _need(sides, "Theorem 4.1")
    sides = np.asarray(sides, dtype=float)
    if sides.ndim != 2 or sides.shape[1] != 3:
        raise ValueError(f"Theorem 4.1: needs (lhs, rhs, leading term) per draw, got shape {sides.shape}")
    rel = np.abs(sides[:, 0] - sides[:, 1]) / sides[:, 2]
    shrink = sides[:, 0] / sides[:, 2]
    tol = thresholds["max_relative_error"]
    return Readout({"draws": len(sides), "worst_relative_error": rel.max(), "median_relative_error": np.median(rel),
                    "median_fraction_kept_by_projection": np.median(shrink)},
                   (Condition.exact(f"relative error ≤ {limit(tol)} in every draw", rel.max() <= tol),),
                   f"{len(sides)} draws: worst relative error {rel.max():.1e} (limit {limit(tol)}): equality, as the proof gives")


def theorem_42(results: Sequence[Any], thresholds: Thresholds) -> Readout:
    """S-THM42: per draw the probe's ``Smoothness`` (lhs = vᵀ∇²L̂v along v = ∇_y L̂, the bound's
    first and second forms, whether the theorem's conditions hold, the terms' magnitude). Some draw
    must meet the conditions, and in every such draw the first form's slack must be at least
    ``min_slack``. The second form counts as met in a draw when its slack is at least
    ``second_form_min_slack``; the share of such draws is recorded, not decided on."""
    _need(results, "Theorem 4.2")
    slack = np.array([(r.rhs_first - r.lhs) / r.scale for r in results])
    cond = np.array([r.conditions for r in results], dtype=bool)
    second = np.array([r.rhs_second >= r.lhs + thresholds["second_form_min_slack"] * r.scale for r in results])
    worst = slack[cond].min() if cond.any() else float("nan")
    tol = thresholds["min_slack"]
    return Readout({"draws": len(results), "draws_meeting_conditions": int(cond.sum()), "worst_slack_under_conditions": worst,
                    "largest_abs_slack_all_draws": np.abs(slack).max(), "second_form_holds_fraction": second.mean(),
                    "second_form_holds_fraction_under_conditions": second[cond].mean() if cond.any() else float("nan")},
                   (Condition.exact("some draw meets the theorem's conditions", bool(cond.any())),
                    Condition.exact(f"first form: slack ≥ {limit(tol)} in every draw meeting them", worst >= tol)),
                   f"{int(cond.sum())}/{len(results)} draws met the conditions; worst slack {worst:.1e} of the terms "
                   f"(limit {limit(tol)}), |slack| ≤ {np.abs(slack).max():.1e} in all draws (equality); "
                   f"second form held in {second.mean():.0%}")


def observation_43(errors: Sequence[float], thresholds: Thresholds) -> Readout:
    """S-OBS43: per draw of (X, W), the relative error between BN(y; γ = σ, β = μ) and y = Wx; the
    worst must be at most ``max_relative_error``."""
    _need(errors, "Observation 4.3")
    errors = np.asarray(errors, dtype=float)
    tol = thresholds["max_relative_error"]
    return Readout({"draws": len(errors), "worst_relative_error": errors.max()},
                   (Condition.exact(f"relative error ≤ {limit(tol)} in every draw", errors.max() <= tol),),
                   f"{len(errors)} draws of (X, W): worst relative error {errors.max():.1e} (limit {limit(tol)})")


READINGS = ("proved", "printed")  # Theorem 4.4's bound: as the proof derives it (eq. 17), as printed


def theorem_44(bounds: Sequence[Any], reading: str, thresholds: Thresholds) -> Readout:
    """S-THM44, one reading: per draw the probe's ``WeightBound`` (ĝ = max over ‖X‖₂ ≤ λ of
    ‖∇_W L̂‖², both bounds, the largest ‖∇_W L̂‖² over random X with ‖X‖₂ = λ). A draw violates the
    bound when (bound − ĝ)/ĝ < ``min_slack``; no draw may. No random X may exceed ĝ by more than
    ``random_x_tolerance``, relative (ĝ is the analytic maximum)."""
    if reading not in READINGS:
        raise ValueError(f"Theorem 4.4: unknown reading {reading!r} (known: {', '.join(READINGS)})")
    _need(bounds, "Theorem 4.4")
    g_hat = np.array([b.g_hat for b in bounds])
    bound = np.array([getattr(b, reading) for b in bounds])
    random_ok = all(b.random_x_max <= b.g_hat * (1 + thresholds["random_x_tolerance"]) for b in bounds)
    slack = (bound - g_hat) / g_hat
    violations = int((slack < thresholds["min_slack"]).sum())
    return Readout({"draws": len(bounds), "worst_relative_slack": slack.min(), "violations": violations,
                    "random_x_never_exceed_the_maximum": random_ok},
                   (Condition.exact(f"no draw below the {reading} bound by more than {limit(-thresholds['min_slack'])}",
                                         not violations),
                    Condition.exact("no random X exceeds the analytic maximum", random_ok)),
                   f"{violations}/{len(bounds)} draws violate the {reading} bound; worst relative slack {slack.min():.2g}")


def lemma_45(results: Sequence[Any], thresholds: Thresholds) -> Readout:
    """S-LEM45: per draw the probe's ``InitDistance``. The worst scale-invariance error must be at
    most ``max_invariance_error``; the BN gradient at the least-squares optimum w*, relative to its
    natural scale, at most ``max_gradient_at_optimum``; and in every draw where ⟨w0, w*⟩ > 0 the
    relative slack (bound − squared distance to the nearest BN optimum)/bound at least
    ``min_slack``. With no such draw the bound is untested, a ValueError."""
    _need(results, "Lemma 4.5")
    invariance = max(r.scale_invariance_error for r in results)
    stationary = max(r.bn_gradient_at_w_star for r in results)
    applies = [r for r in results if r.applies]
    if not applies:
        raise ValueError(f"Lemma 4.5: none of the {len(results)} draws has ⟨w0, w*⟩ > 0, so the distance bound is untested")
    slack = np.array([(r.bound - r.nearest_bn_optimum) / r.bound for r in applies])
    inv_tol, grad_tol, slack_tol = (thresholds[n] for n in ("max_invariance_error", "max_gradient_at_optimum", "min_slack"))
    return Readout({"draws": len(results), "draws_with_positive_inner_product": len(applies),
                    "scale_invariance_error": invariance, "bn_gradient_at_w_star": stationary,
                    "worst_relative_slack": slack.min()},
                   (Condition.exact(f"scale invariance to {limit(inv_tol)}", invariance <= inv_tol),
                    Condition.exact(f"w* stationary for BN to {limit(grad_tol)}", stationary <= grad_tol),
                    Condition.exact(f"distance bound: slack ≥ {limit(slack_tol)} where ⟨w0,w*⟩ > 0",
                                         slack.min() >= slack_tol)),
                   f"invariance error {invariance:.1e}; ‖∇L̂(w*)‖ {stationary:.1e} of scale; "
                   f"{len(applies)}/{len(results)} draws with ⟨w0,w*⟩ > 0, worst slack {slack.min():.1e} (tight)")
