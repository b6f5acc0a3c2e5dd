"""harness.windows: per-seed training windows of the landscape and ICS claims."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from harness.claimkit.registry import Claim
from harness.claimkit.verdicts import ClaimInconclusive, Verdict
from harness.windows import checkpoint_weights, early, note_windows, seed_windows, share_quantile, weighted_median

CLAIM = Claim("S-X-1", "santurkar2018", "§3", "§3", "s", "p", "t", {"fast": {}}, {"fast": "x"}, None, "x.yaml", tiers={"fast": "stand-in"})


def _run(*losses):
    return SimpleNamespace(checkpoints=[SimpleNamespace(loss=v) for v in losses], final=losses[-1])


def test_seed_windows_take_the_checkpoints_where_every_net_trains_on_each_seed():
    runs = {"none": [_run(100, 95, 50, 20, 10), _run(100, 50, 20, 10, 10)],
            "batch": [_run(10, 5, 2, 1.5, 1), _run(10, 5, 2, 1.5, 1)]}
    windows = seed_windows(runs, ("none", "batch"), [0, 1], lambda r: r.final, 0.1)
    assert windows == [range(2, 4), range(1, 3)]  # seed 0's standard net sits on its start at checkpoint 1
    assert early(range(2, 7)) == range(2, 5) and early(range(1, 2)) == range(1, 2)
    v = Verdict(CLAIM, "fast", None, {}, seeds=[0, 1])
    note_windows(v, [0, 50, 100, 150, 200], windows)
    assert v.measured["window_steps"] == [[100, 150], [50, 100]] and "steps 100–150; 50–100 of 0–200" in v.notes[0]


def test_an_empty_window_makes_the_claim_inconclusive():
    runs = {"none": [_run(100, 95, 92, 91)], "batch": [_run(10, 1, 1, 1)]}
    v = Verdict(CLAIM, "fast", None, {}, seeds=[0])
    with pytest.raises(ClaimInconclusive, match=r"seed 7: no checkpoint at which standard, BN are all training"):
        seed_windows(runs, ("none", "batch"), [7], lambda r: r.final, 0.1, v, {"none": "standard", "batch": "BN"})


def test_a_diverged_run_has_no_window():
    runs = {"none": [_run(100, 50, float("inf"))], "batch": [_run(10, 5, 1)]}
    assert seed_windows(runs, ("none", "batch"), [0], lambda r: r.final, 0.1) == [range(0)]
    v = Verdict(CLAIM, "fast", None, {}, seeds=[0])
    with pytest.raises(ClaimInconclusive, match=r"seed 0: a run of none, batch diverged, so it has no training window"):
        seed_windows(runs, ("none", "batch"), [0], lambda r: r.final, 0.1, v)


def test_runs_by_seed_make_only_the_missing_nets_and_seeds():
    from fixtures.common import RunsBySeed

    made = []

    def make(keys):
        made.append(list(keys))
        return [f"{n}@{s}" for n, s in keys]

    runs = RunsBySeed(("none", "batch", "l1"), make)
    assert runs([0, 1], ("none", "batch")) == {"none": ["none@0", "none@1"], "batch": ["batch@0", "batch@1"]}
    assert runs([0, 1, 2]) == {"none": ["none@0", "none@1", "none@2"], "batch": ["batch@0", "batch@1", "batch@2"],
                               "l1": ["l1@0", "l1@1", "l1@2"]}
    assert made == [[("none", 0), ("none", 1), ("batch", 0), ("batch", 1)],
                    [("none", 2), ("batch", 2), ("l1", 0), ("l1", 1), ("l1", 2)]]  # each (net, seed) once
    with pytest.raises(KeyError, match="no runs of \\['linf'\\]"):
        runs([0], ("linf",))


# --- time weights over non-uniform checkpoints ----------------------------------------------------

def test_checkpoint_weights_are_the_time_until_the_next_checkpoint():
    assert checkpoint_weights([0, 1, 4, 9, 16]) == [1.0, 3.0, 5.0, 7.0, 7.0]
    assert checkpoint_weights([0, 10, 20]) == [10.0, 10.0, 10.0]
    assert checkpoint_weights([5]) == [1.0]
    with pytest.raises(ValueError, match="must increase"):
        checkpoint_weights([0, 4, 4])


def test_early_is_the_first_half_in_time():
    assert early(range(2, 7), [1.0] * 5) == early(range(2, 7)) == range(2, 5)
    assert early(list("abcd"), [1.0, 1.0, 1.0, 9.0]) == list("abcd")  # the last starts before half the time (3 of 12)
    assert early(list("abcdef"), [1.0, 1.0, 1.0, 1.0, 12.0, 12.0]) == list("abcde")  # f starts at 16 of 28
    assert early(list("abcd"), [9.0, 1.0, 1.0, 1.0]) == list("a")
    with pytest.raises(ValueError, match="one weight per checkpoint"):
        early(range(3), [1.0])


def reference_weighted_median(values, weights):
    """Slow reference for integer weights: repeat each value weight times, take numpy's median."""
    return float(np.median(np.repeat(values, weights)))


@pytest.mark.parametrize("seed", range(20))
def test_weighted_median_matches_repetition_on_integer_weights(seed):
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(int(rng.integers(1, 9)))
    weights = rng.integers(1, 4, size=values.size)
    assert weighted_median(values, weights) == pytest.approx(reference_weighted_median(values, weights))
    assert weighted_median(values, np.ones(values.size)) == pytest.approx(np.median(values))


def reference_share_quantile(values, weights, share):
    """Slow reference: the largest candidate t among the values such that values ≥ t hold at least
    ``share`` of the weight."""
    total = sum(weights)
    return max(t for t in values if sum(w for v, w in zip(values, weights) if v >= t) >= share * total - 1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_share_quantile_matches_the_reference(seed):
    rng = np.random.default_rng(seed)
    values = list(np.round(rng.standard_normal(int(rng.integers(1, 9))), 1))  # ties happen
    weights = list(rng.uniform(0.1, 3, size=len(values)))
    for share in (0.25, 0.5, 2 / 3, 1.0):
        assert share_quantile(values, weights, share) == reference_share_quantile(values, weights, share)


def test_window_statistics_reject_bad_input():
    with pytest.raises(ValueError, match="positive weights"):
        weighted_median([1.0, 2.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="positive weights"):
        share_quantile([1.0], [1.0, 1.0], 0.5)
    with pytest.raises(ValueError, match="share must be in"):
        share_quantile([1.0], [1.0], 0.0)
