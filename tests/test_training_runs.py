"""The training claims' lab protocol (harness.training_runs) and deciding on a readout."""

from __future__ import annotations

import math

import pytest

from harness.cache import ModelCache
from harness.claimkit.evidence import Condition, Readout
from harness.claimkit.registry import Claim
from harness.claimkit.verdicts import ClaimInconclusive, Verdict
from harness.data import synthetic_cifar
from harness import training_runs
from harness.resnet_lab import ResNetLab
from harness.train import TrainConfig, TrainResult

SETTINGS = {"dataset": "synthetic", "resolution": 8, "depth": 8, "width": 4, "grid": [0.1, 0.01], "search_steps": 10,
            "learning_margin": 0.05, "train_steps": 10, "eval_every": 5, "seeds": [0]}
SEEDED = Claim("B-X-2", "bjorck2018", "§1", "§1", "s", "p", "t", {"fast": {}}, {"fast": "stand-in"}, None, "x.yaml",
               tiers={"fast": "stand-in"})


@pytest.fixture
def lab(tmp_path):
    data = synthetic_cifar(n_train=256, n_test=64, resolution=8, seed=0)
    return ResNetLab(SETTINGS, data, {"name": data.name}, ModelCache(tmp_path))


def test_an_lr_per_seed_or_one_for_all():
    assert training_runs.per_seed([0, 1, 2], 0.1) == [0.1, 0.1, 0.1]
    assert training_runs.per_seed([0, 1], [0.1, 0.01]) == [0.1, 0.01]
    with pytest.raises(ValueError, match=r"need one LR per seed \(\[0, 1, 2\]\), got \[0.1, 0.01\]"):
        training_runs.per_seed([0, 1, 2], [0.1, 0.01])


def test_the_grid_adds_a_claims_lrs_highest_first(lab):
    assert training_runs.grid(lab) == [0.1, 0.01]
    assert training_runs.grid(lab, [0.03, 0.1]) == [0.1, 0.03, 0.01]


def test_a_diverged_run_has_no_final_value():
    runs = [TrainResult(10, None, [1.0], [{"step": 10, "test_acc": 0.5, "train_acc": 0.7}]), TrainResult(3, 3, [1e9], [])]
    assert training_runs.final(runs)[0] == 0.5 and math.isnan(training_runs.final(runs)[1])
    assert training_runs.final(runs[:1], "train_acc") == [0.7]


def test_full_runs_are_served_per_net_and_seed_as_the_lab_makes_them(lab):
    """What the protocol serves is what the lab makes when asked directly, in the order asked."""
    seeds = [0, 1]
    runs = training_runs.full_runs(lab, seeds, {"BN": (lab.model("batch"), 0.1), "none": (lab.model("none"), [0.01, 0.1])})
    assert list(runs) == ["BN", "none"] and [len(r) for r in runs.values()] == [2, 2]
    assert runs["none"][1] is lab.trained(lab.model("none"), 0.1, 1)  # one LR per seed: seed 1 at 0.1
    assert runs["BN"][0] is lab.trained(lab.model("batch"), 0.1, 0)
    searched = training_runs.searches(lab, {"BN": lab.model("batch")}, seeds)
    assert [s.as_dict() for s in searched["BN"]] == [lab.max_lr(lab.model("batch"), seed=s).as_dict() for s in seeds]


def test_constant_lr_runs_keep_the_lr_throughout(lab):
    runs = training_runs.constant_lr_runs(lab, lab.model("batch"), (0.1,), [0], steps=6)
    assert list(runs) == [(0.1, 0)] and runs[0.1, 0].steps_done == 6
    stored = TrainConfig(lr=0.1, steps=6, seed=0, pad=lab.pad, milestones=())  # App. B's would divide the LR halfway
    assert lab.cache.contains(lab.store.config(lab.model("batch"), stored)) and stored.lr_at(5) == 0.1


def _readout(values):
    return Readout({"acc": values}, (Condition.at_least("BN accuracy", values, 0.5),), "BN accuracy")


def test_deciding_on_a_readout_records_its_values():
    v = Verdict(SEEDED, "fast", None, {}, seeds=[0, 1, 2])
    v.decide_readout(_readout([0.9, 0.91, 0.92]))
    assert v.verdict == "holds" and v.measured["acc"] == [0.9, 0.91, 0.92]


def test_a_seed_without_a_finite_value_makes_the_claim_inconclusive_when_asked():
    v = Verdict(SEEDED, "fast", None, {}, seeds=[0, 1, 2])
    with pytest.raises(ClaimInconclusive, match=r"BN accuracy: no finite value on seed\(s\) \[1\] \(a run diverged\)"):
        v.decide_readout(_readout([0.9, float("nan"), 0.92]), every_seed_finite=True)
    assert v.measured["acc"][1] == "nan"  # the values are recorded before the claim stops
