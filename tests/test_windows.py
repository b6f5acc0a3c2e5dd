"""harness.windows: per-seed training windows of the landscape and ICS claims."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.registry import Claim
from harness.verdicts import ClaimInconclusive, Verdict
from harness.windows import early, note_windows, seed_windows

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
