"""The highest-achievable-LR search (App. J) and its run store."""

from __future__ import annotations

import pytest

from harness.cache import ModelCache
from harness.data import synthetic_cifar
from harness.lr_search import SEARCH_EVAL_TRAIN, LRSearch, RunStore, Trial, classify, max_lr
from harness.models import resnet_cifar
from harness.preconditions import LabPreconditions
from harness.resnet_lab import ResNetLab
from harness.settings import SettingsError, TrainingShared, parse
from harness.train import TrainConfig, TrainResult


def _result(diverged_at=None, acc=0.5):
    return TrainResult(steps_done=diverged_at or 10, diverged_at=diverged_at, losses=[1.0],
                       evals=[] if diverged_at else [{"step": 10, "test_acc": acc}])


def test_search_walks_down_and_stops_at_the_first_achievable():
    outcomes = {0.1: _result(diverged_at=2), 0.01: _result(acc=0.1), 0.001: _result(acc=0.4), 0.0001: _result(acc=0.9)}
    asked = []
    search = max_lr(lambda lr: asked.append(lr) or outcomes[lr], [0.0001, 0.1, 0.001, 0.01], learning_acc=0.15)
    assert search.max_lr == 0.001 and asked == [0.1, 0.01, 0.001]
    assert [t.status for t in search.trials] == ["diverged", "chance", "learning"]
    assert search.as_dict()["max_lr"] == 0.001


def test_search_with_nothing_achievable():
    search = max_lr(lambda lr: _result(diverged_at=1), [0.1, 0.01], learning_acc=0.15)
    assert search.max_lr is None and len(search.trials) == 2


@pytest.mark.parametrize("grid, acc, match", [([], 0.2, "non-empty"), ([0.1, -1.0], 0.2, "positive"), ([0.1], 0.1, "above chance")])
def test_search_rejects_bad_input(grid, acc, match):
    with pytest.raises(ValueError, match=match):
        max_lr(lambda lr: _result(), grid, acc)


def test_run_store_trains_each_config_once_and_records_divergence(tmp_path):
    data = synthetic_cifar(n_train=256, n_test=64, resolution=8, seed=0)
    store = RunStore(ModelCache(tmp_path), resnet_cifar, data, {"name": data.name})
    model = {"depth": 8, "norm": "none", "width": 4}
    huge = TrainConfig(lr=1e4, steps=20, batch_size=32)  # an unnormalized net at LR 1e4 diverges: recorded, not raised
    first = store.run(model, huge)
    assert first.diverged and first.diverged_at <= 20 and store.trained == 1
    assert store.run(model, huge) is first and store.trained == 1  # same session: memo
    again = RunStore(ModelCache(tmp_path), resnet_cifar, data, {"name": data.name})
    assert again.run(model, huge).diverged_at == first.diverged_at and again.trained == 0  # next session: disk


def test_a_search_run_is_judged_over_its_whole_budget(tmp_path):
    """App. J: a run that learns early is not cut short; only divergence ends a search run early."""
    data = synthetic_cifar(n_train=256, n_test=64, resolution=8, seed=0)
    lab = ResNetLab(LAB_SETTINGS, data, {"name": data.name}, ModelCache(tmp_path))
    config = lab.search_config(0.1)
    assert config.eval_every == 0 and config.steps == LAB_SETTINGS["search_steps"]
    result = lab.store.run(lab.model("batch"), config)
    assert result.steps_done == LAB_SETTINGS["search_steps"] and [e["step"] for e in result.evals] == [result.steps_done]


def test_a_run_that_learned_and_then_diverged_is_not_achievable():
    learned_then_diverged = TrainResult(steps_done=30, diverged_at=30, losses=[2.3] * 29 + [1e4],
                                        evals=[{"step": 20, "train_acc": 0.9, "train_loss": 0.3, "test_acc": 0.9, "test_loss": 0.3}])
    assert classify(learned_then_diverged, 0.15) == "diverged"
    search = max_lr(lambda lr: learned_then_diverged if lr == 0.1 else TrainResult(10, None, [2.3] * 10, [{"step": 10, "test_acc": 0.5}]),
                    [0.1, 0.01], 0.15)
    assert search.max_lr == 0.01 and [t.status for t in search.trials] == ["diverged", "learning"]


def test_train_config_validates_the_warm_start():
    with pytest.raises(ValueError, match="warm start"):
        TrainConfig(lr=0.1, steps=10, warm_start_steps=-1)
    config = TrainConfig(lr=0.1, steps=100, warm_start_steps=10, warm_start_lr=1e-4)
    assert config.total_steps == 110 and config.lr_at(9) == 1e-4 and config.lr_at(10) == 0.1
    assert config.lr_at(10 + 50) == pytest.approx(0.01) and config.lr_at(10 + 75) == pytest.approx(0.001)


def test_crop_padding_is_validated_and_scaled_with_the_resolution(tmp_path):
    with pytest.raises(ValueError, match="pad must be"):
        TrainConfig(lr=0.1, steps=10, pad=-1)
    for resolution, pad in ((32, 4), (16, 2), (8, 1)):  # App. B's 4 pixels on 32×32, scaled
        data = synthetic_cifar(n_train=256, n_test=64, resolution=resolution, seed=0)
        lab = ResNetLab(LAB_SETTINGS, data, {"name": data.name}, ModelCache(tmp_path))
        assert lab.pad == pad and lab.search_config(0.1).pad == pad and lab.train_config(0.1).pad == pad


def test_lab_rejects_incomplete_settings(tmp_path):
    data = synthetic_cifar(n_train=256, n_test=64, resolution=8, seed=0)
    with pytest.raises(SettingsError, match=r"ResNetLab settings: missing settings key\(s\) search_steps \(required by TrainingShared\)"):
        ResNetLab({k: v for k, v in LAB_SETTINGS.items() if k != "search_steps"}, data, {"name": data.name}, ModelCache(tmp_path))


LAB_SETTINGS = {"dataset": "synthetic", "resolution": 8, "depth": 8, "width": 4, "grid": [0.1], "search_steps": 20, "learning_margin": 0.05,
                "train_steps": 20, "eval_every": 10, "seeds": [0]}


def test_profile_overrides_settings_for_some_claims():
    shared = parse(TrainingShared, {**LAB_SETTINGS, "depth": 110, "lr_lab": {"depth": 56, "width": 8}}, "shared")
    lab = shared.overridden("lr_lab")
    assert (lab.depth, lab.width, lab.grid, lab.lr_lab) == (56, 8, [0.1], None)
    assert parse(TrainingShared, LAB_SETTINGS, "shared").overridden("lr_lab") is None
    with pytest.raises(SettingsError, match=r"'lr_lab' overrides unknown setting\(s\) \['dpeth'\]"):
        parse(TrainingShared, {**LAB_SETTINGS, "lr_lab": {"dpeth": 56}}, "shared")
    with pytest.raises(SettingsError, match="'lr_lab' must map settings of TrainingShared"):
        parse(TrainingShared, {**LAB_SETTINGS, "lr_lab": []}, "shared")


def test_prefetch_makes_runs_side_by_side_and_the_lab_then_loads_them(tmp_path, monkeypatch):
    # two side-by-side workers even when this test itself runs on one of several xdist workers
    monkeypatch.setattr("harness.concurrent.cpu_share", lambda: 2)
    data = synthetic_cifar(n_train=256, n_test=64, resolution=8, seed=0)
    settings = {**LAB_SETTINGS, "grid": [1e4, 0.1, 0.01]}
    searches = [{"model": {"depth": 8, "norm": "none", "width": 4}}, {"model": {"depth": 8, "norm": "batch", "width": 4}}]
    runs = [{"model": {"depth": 8, "norm": "batch", "width": 4}, "lr": 0.05, "seed": 0}]
    here = ResNetLab(settings, data, {"name": data.name}, ModelCache(tmp_path / "here"))
    expected = [here.max_lr(**kw).as_dict() for kw in searches], [here.trained(**kw) for kw in runs]

    lab = ResNetLab(settings, data, {"name": data.name}, ModelCache(tmp_path / "prefetched"))

    def searches_stored() -> list[bool]:  # read from the cache's keys: no training code runs
        return [all(lab.store.is_stored(kw["model"], c, SEARCH_EVAL_TRAIN) for c in lab._search(**kw)[0]) for kw in searches]

    assert searches_stored() == [False, False]
    lab.prefetch(searches=searches, runs=runs)  # two worker processes train and store
    assert lab.store.trained == 0 and searches_stored() == [True, True]
    monkeypatch.setattr("harness.resnet_lab.parallel_map", lambda *a: pytest.fail("stored runs were made again"))
    lab.prefetch(searches=searches, runs=runs)  # all stored: nothing to do
    assert ([lab.max_lr(**kw).as_dict() for kw in searches], [lab.trained(**kw) for kw in runs]) == expected
    assert lab.store.trained == 0  # every run was loaded, with the values made in this process


def _search(*trials: tuple[float, str, float | None]) -> LRSearch:
    return LRSearch(tuple(sorted({t[0] for t in trials}, reverse=True)),
                    tuple(Trial(lr, status, 10, 3 if status == "diverged" else None, acc) for lr, status, acc in trials))


class _FakeLab:
    """A lab whose searches are given: (norm, seed) → LRSearch."""

    def __init__(self, searches: dict):
        self.settings = {"grid": [0.1, 0.01, 0.001]}
        self.searches = searches

    def model(self, norm):
        return {"norm": norm}

    def prefetch(self, searches=(), runs=()):
        pass

    def max_lr(self, model, seed=0):
        return self.searches[model["norm"], seed]


def test_lab_preconditions_need_every_seed():
    good = {("batch", s): _search((0.1, "learning", 0.9)) for s in range(3)}
    good |= {("none", s): _search((0.1, "diverged", None), (0.01, "learning", 0.5)) for s in range(3)}
    pre = LabPreconditions.measure(_FakeLab(good), [0, 1, 2])
    assert pre.met == {"bn_learns": True, "none_learns": True, "none_fails_top": True}
    assert pre.detail["none_fails_top"] == "unnormalized at 0.1, seeds [0, 1, 2]: diverged, diverged, diverged"
    one_learns_at_top = good | {("none", 1): _search((0.1, "learning", 0.4))}
    at_chance = good | {("none", 2): _search((0.1, "chance", 0.1), (0.01, "chance", 0.1), (0.001, "chance", 0.1))}
    pre = LabPreconditions.measure(_FakeLab(one_learns_at_top), [0, 1, 2])
    assert pre.met["none_fails_top"] is False and "learning (0.40)" in pre.detail["none_fails_top"]
    pre = LabPreconditions.measure(_FakeLab(at_chance), [0, 1, 2])
    assert pre.met["none_learns"] is False and pre.detail["none_learns"].endswith("0.01, 0.01, none on grid")
    pre = LabPreconditions.measure(_FakeLab(at_chance), [0, 1])  # the seeds of the look: seed 2 is not among them
    assert pre.met["none_learns"] is True and pre.detail["none_learns"].endswith("seeds [0, 1]: 0.01, 0.01")


def test_lab_preconditions_reach_the_verdict_of_a_claim_that_requires_them():
    from harness.claimkit.registry import Claim
    from harness.claimkit.verdicts import ClaimInconclusive, Verdict

    claim = Claim("B-X-1", "bjorck2018", "§1", "§1", "s", "p", "t", {"fast": {}}, {"fast": "x"}, None, "x.yaml",
                  tiers={"fast": "stand-in"}, preconditions={"none_fails_top": "fails at 0.1", "bn_learns": "learns"})
    pre = LabPreconditions({"bn_learns": True, "none_learns": True, "none_fails_top": False},
                           {"bn_learns": "ok", "none_learns": "ok", "none_fails_top": "learning at 0.1"})
    verdict = Verdict(claim, "fast", None, {}, seeds=[0, 1, 2])
    pre.check(verdict)
    assert set(verdict.measured["preconditions"]) == {"none_fails_top", "bn_learns"}
    with pytest.raises(ClaimInconclusive, match=r"precondition failed: fails at 0.1 \(learning at 0.1\); would be holds"):
        verdict.conclude(True, "max LR 0.1 vs 1e-4")
    unknown = Claim("B-X-2", "bjorck2018", "§1", "§1", "s", "p", "t", {"fast": {}}, {"fast": "x"}, None, "x.yaml",
                    tiers={"fast": "stand-in"}, preconditions={"gpu_present": "a GPU"})
    with pytest.raises(KeyError, match="requires precondition .gpu_present., which its family does not measure"):
        pre.check(Verdict(unknown, "fast", None, {}, seeds=[0, 1, 2]))


