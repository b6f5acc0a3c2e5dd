"""The theory readouts (harness.readouts.theory) decide on hand-made sides of the theorems.

Every claim of the family is an exact identity or inequality and seed-exempt: each readout turns
its checks into single yes/no flags over all draws, so it holds or is refuted and is never
inconclusive (there is no seed interval to straddle). Each readout gets draws that meet the
theorem up to rounding (holds), one draw that breaks each check in turn (refuted), draws at the
tolerance itself, and bad input. The tolerances are the claims' own, loaded from
claims/santurkar2018_theory.yaml. No claim of the family credits BN over no BN, so there is no
BN-made-identity case.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from harness.claimkit.evidence import HOLDS, REFUTED
from harness.readouts import theory as ro
from harness.claimkit.registry import Registry
from tests.test_readouts_rmt import failed
from tests.test_readouts_rmt import single_flags as verdict_of

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = Registry.load(ROOT / "claims").claims


def thresholds(claim):
    return CLAIMS[claim].thresholds


def test_limit_prints_tolerances_as_the_summaries_did():
    assert [ro.limit(v) for v in (1e-8, 1e-12, -1e-8, 0.05, 1e-10)] == ["1e-8", "1e-12", "−1e-8", "0.05", "1e-10"]


# --- S-THM41 ------------------------------------------------------------------------------------

def sides41(n=20, rel=1e-15, seed=0):
    """(lhs, rhs, leading term): the projection keeps 30–90% of the leading term; lhs off by ``rel``."""
    r = np.random.default_rng(seed)
    lead = 10 ** r.uniform(-3, 3, n)
    rhs = lead * r.uniform(0.3, 0.9, n)
    return np.column_stack([rhs + rel * lead, rhs, lead])


def test_theorem_41():
    t = thresholds("S-THM41")
    good = ro.theorem_41(sides41(), t)
    assert verdict_of(good) == HOLDS
    assert set(good.values) == {"draws", "worst_relative_error", "median_relative_error", "median_fraction_kept_by_projection"}
    assert good.values["draws"] == 20 and good.values["worst_relative_error"] == pytest.approx(1e-15)
    assert good.summary == "20 draws: worst relative error 1.0e-15 (limit 1e-8): equality, as the proof gives"
    broken = sides41()
    broken[7, 0] += 10 * t["max_relative_error"] * broken[7, 2]  # one draw off: the gradient is not the projected one
    assert verdict_of(ro.theorem_41(broken, t)) == REFUTED
    assert verdict_of(ro.theorem_41(sides41(rel=t["max_relative_error"] / 2), t)) == HOLDS
    assert verdict_of(ro.theorem_41(sides41(rel=t["max_relative_error"] * 2), t)) == REFUTED
    with pytest.raises(ValueError, match="lhs, rhs, leading term"):
        ro.theorem_41(np.ones((4, 2)), t)
    with pytest.raises(ValueError, match="no draws"):
        ro.theorem_41([], t)


# --- S-THM42 ------------------------------------------------------------------------------------

def smooth(lhs, first, second, conditions, scale=1.0):
    return SimpleNamespace(lhs=lhs, rhs_first=first, rhs_second=second, conditions=conditions, scale=scale)


def test_theorem_42():
    t = thresholds("S-THM42")
    draws = [smooth(1.0, 1.0, 2.0, True), smooth(-3.0, -3.0, -4.0, False), smooth(0.5, 0.5 + 1e-15, 0.0, True)]
    good = ro.theorem_42(draws, t)
    assert verdict_of(good) == HOLDS
    assert good.values["draws_meeting_conditions"] == 2 and good.values["worst_slack_under_conditions"] == 0.0
    assert good.values["second_form_holds_fraction"] == pytest.approx(1 / 3)  # reported, not decided on
    assert good.values["second_form_holds_fraction_under_conditions"] == pytest.approx(1 / 2)
    assert good.summary == ("2/3 draws met the conditions; worst slack 0.0e+00 of the terms (limit −1e-8), "
                            "|slack| ≤ 1.0e-15 in all draws (equality); second form held in 33%")
    over = [*draws, smooth(1.0, 1.0 - 1e-6, 2.0, True)]  # the bound falls short where the theorem applies
    assert failed(ro.theorem_42(over, t)) == [f"first form: slack ≥ {ro.limit(t['min_slack'])} in every draw meeting them"]
    outside = [*draws, smooth(1.0, 0.0, 2.0, False)]  # a violation where the conditions fail does not count
    assert verdict_of(ro.theorem_42(outside, t)) == HOLDS
    at_limit = [smooth(1.0, 1.0 + t["min_slack"] / 2, 2.0, True)]
    assert verdict_of(ro.theorem_42(at_limit, t)) == HOLDS
    never = [smooth(1.0, 1.0, 2.0, False)]  # no draw meets the conditions: nothing tested
    assert failed(ro.theorem_42(never, t))[0] == "some draw meets the theorem's conditions"
    assert np.isnan(ro.theorem_42(never, t).values["worst_slack_under_conditions"])
    second = ro.theorem_42([smooth(1.0, 1.0, 1.0 + t["second_form_min_slack"] / 2, True)], t)
    assert second.values["second_form_holds_fraction"] == 1.0  # within the second form's rounding tolerance
    with pytest.raises(ValueError, match="no draws"):
        ro.theorem_42([], t)


# --- S-OBS43 ------------------------------------------------------------------------------------

def test_observation_43():
    t = thresholds("S-OBS43")
    good = ro.observation_43([8.4e-17, 1e-17, 3e-16], t)
    assert verdict_of(good) == HOLDS
    assert good.values == {"draws": 3, "worst_relative_error": 3e-16}
    assert good.summary == "3 draws of (X, W): worst relative error 3.0e-16 (limit 1e-12)"
    assert verdict_of(ro.observation_43([1e-17, t["max_relative_error"]], t)) == HOLDS
    assert verdict_of(ro.observation_43([1e-17, 1e-3], t)) == REFUTED  # BN with γ = σ, β = μ does not give y back
    with pytest.raises(ValueError, match="no draws"):
        ro.observation_43([], t)


# --- S-THM44 ------------------------------------------------------------------------------------

def weight_bound(g_hat, proved, printed, random_x_max=None):
    return SimpleNamespace(g_hat=g_hat, proved=proved, printed=printed,
                           random_x_max=g_hat * 0.9 if random_x_max is None else random_x_max)


def test_theorem_44():
    t = thresholds("S-THM44")
    rounding = 2.0**-50  # the proved bound misses ĝ by float64 rounding only
    draws = [weight_bound(1.0, 1.0, -50.0), weight_bound(2.0, 3.0, 1.0), weight_bound(4.0, 4.0 * (1 - rounding), 6.0)]
    proved = ro.theorem_44(draws, "proved", t)
    assert verdict_of(proved) == HOLDS
    assert proved.values == {"draws": 3, "worst_relative_slack": -rounding, "violations": 0,
                             "random_x_never_exceed_the_maximum": True}
    assert proved.summary == f"0/3 draws violate the proved bound; worst relative slack {-rounding:.2g}"
    printed = ro.theorem_44(draws, "printed", t)
    assert verdict_of(printed) == REFUTED and printed.values["violations"] == 2
    assert printed.summary == "2/3 draws violate the printed bound; worst relative slack -51"
    tol = t["random_x_tolerance"]
    above = [*draws, weight_bound(1.0, 1.0, 1.0, random_x_max=1.0 + 10 * tol)]  # a random X beats the "maximum"
    assert failed(ro.theorem_44(above, "proved", t)) == ["no random X exceeds the analytic maximum"]
    assert verdict_of(ro.theorem_44([*draws, weight_bound(1.0, 1.0, 1.0, random_x_max=1.0 + tol / 2)], "proved", t)) == HOLDS
    at_limit = [weight_bound(1.0, 1.0 + t["min_slack"] / 2, 1.0)]
    assert verdict_of(ro.theorem_44(at_limit, "proved", t)) == HOLDS
    with pytest.raises(ValueError, match="unknown reading"):
        ro.theorem_44(draws, "stated", t)
    with pytest.raises(ValueError, match="no draws"):
        ro.theorem_44([], "proved", t)


# --- S-LEM45 ------------------------------------------------------------------------------------

def init_distance(invariance=1e-15, gradient=1e-16, nearest=1.0, bound=1.0, applies=True):
    return SimpleNamespace(scale_invariance_error=invariance, bn_gradient_at_w_star=gradient, nearest_bn_optimum=nearest,
                           bound=bound, applies=applies)


def test_lemma_45():
    t = thresholds("S-LEM45")
    draws = [init_distance(), init_distance(nearest=2.0, bound=2.0 * (1 + 1e-15)),
             init_distance(nearest=9.0, bound=1.0, applies=False)]
    good = ro.lemma_45(draws, t)
    assert verdict_of(good) == HOLDS  # the draw that breaks the bound has ⟨w0, w*⟩ ≤ 0: the lemma says nothing there
    assert good.values == {"draws": 3, "draws_with_positive_inner_product": 2, "scale_invariance_error": 1e-15,
                           "bn_gradient_at_w_star": 1e-16, "worst_relative_slack": 0.0}
    assert good.summary == ("invariance error 1.0e-15; ‖∇L̂(w*)‖ 1.0e-16 of scale; 2/3 draws with ⟨w0,w*⟩ > 0, "
                            "worst slack 0.0e+00 (tight)")
    for name, draw in {"scale invariance": init_distance(invariance=10 * t["max_invariance_error"]),
                       "stationary": init_distance(gradient=10 * t["max_gradient_at_optimum"]),
                       "distance bound": init_distance(nearest=1.0 + 1e-6)}.items():
        assert len(failed(ro.lemma_45([*draws, draw], t))) == 1 and name in failed(ro.lemma_45([*draws, draw], t))[0]
    at_limit = init_distance(invariance=t["max_invariance_error"], gradient=t["max_gradient_at_optimum"],
                             nearest=1.0 - t["min_slack"] / 2)
    assert verdict_of(ro.lemma_45([at_limit], t)) == HOLDS
    with pytest.raises(ValueError, match="untested"):
        ro.lemma_45([init_distance(applies=False)], t)
    with pytest.raises(ValueError, match="no draws"):
        ro.lemma_45([], t)
