"""The highest-achievable-LR search (App. J) and its run store."""

from __future__ import annotations

import pytest
import torch

from harness.cache import ModelCache
from harness.data import synthetic_cifar
from harness.lr_search import RunStore, max_lr
from harness.models import resnet_cifar
from harness.resnet_lab import ResNetLab, overridden
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


def test_early_stop_when_clearly_learning(tmp_path):
    data = synthetic_cifar(n_train=512, n_test=200, resolution=8, seed=0)
    store = RunStore(ModelCache(tmp_path), resnet_cifar, data, {"name": data.name})
    config = TrainConfig(lr=0.05, steps=200, batch_size=64, eval_every=10, stop_at_test_acc=0.2, min_steps=10)
    result = store.run({"depth": 8, "norm": "batch", "width": 8}, config)
    assert not result.diverged and result.final["test_acc"] >= 0.2 and result.steps_done < 200


def test_train_config_validates_stop_and_warm_start():
    with pytest.raises(ValueError, match="eval_every > 0"):
        TrainConfig(lr=0.1, steps=10, stop_at_test_acc=0.2)
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
    with pytest.raises(KeyError, match="search_steps"):
        ResNetLab({k: v for k, v in LAB_SETTINGS.items() if k != "search_steps"}, data, {"name": data.name}, ModelCache(tmp_path))


LAB_SETTINGS = {"depth": 8, "width": 4, "grid": [0.1], "search_steps": 20, "check_every": 10, "learning_margin": 0.05,
                "train_steps": 20, "eval_every": 10, "seeds": [0]}


def test_profile_overrides_settings_for_some_claims():
    shared = {"depth": 110, "width": 4, "lr_lab": {"depth": 56, "width": 8}}
    assert overridden(shared, "lr_lab") == {"depth": 56, "width": 8}
    assert overridden({"depth": 110}, "lr_lab") is None
    with pytest.raises(KeyError, match="do not exist"):
        overridden({"depth": 110, "lr_lab": {"dpeth": 56}}, "lr_lab")
    with pytest.raises(ValueError, match="non-empty mapping"):
        overridden({"depth": 110, "lr_lab": []}, "lr_lab")


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
    assert not lab.store.is_stored(lambda: lab.max_lr(**searches[0]))
    lab.prefetch(searches=searches, runs=runs)  # two worker processes train and store
    assert lab.store.trained == 0 and all(lab.store.is_stored(lambda kw=kw: lab.max_lr(**kw)) for kw in searches)
    monkeypatch.setattr("harness.resnet_lab.parallel_map", lambda *a: pytest.fail("stored runs were made again"))
    lab.prefetch(searches=searches, runs=runs)  # all stored: nothing to do
    assert ([lab.max_lr(**kw).as_dict() for kw in searches], [lab.trained(**kw) for kw in runs]) == expected
    assert lab.store.trained == 0  # every run was loaded, with the values made in this process
