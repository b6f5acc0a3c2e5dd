"""Training loop: learning, LR schedule, divergence as a measured outcome, reproducibility."""

from __future__ import annotations

import math

import pytest
import torch

from harness.data import synthetic_cifar
from harness.models import resnet_cifar
from harness.train import TrainConfig, evaluate, train


@pytest.fixture(scope="module")
def data():
    return synthetic_cifar(1024, 256, resolution=8, seed=0)


def small_resnet(norm="batch"):
    torch.manual_seed(0)
    return resnet_cifar(8, norm, width=4)


def test_lr_schedule_divides_at_half_and_three_quarters():
    cfg = TrainConfig(lr=0.1, steps=100)
    assert [cfg.lr_at(s) for s in (0, 49, 50, 74, 75, 99)] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_training_reduces_loss_and_evaluates(data):
    result = train(small_resnet(), data, TrainConfig(lr=0.05, steps=60, batch_size=64, eval_every=30))
    assert not result.diverged and result.steps_done == 60
    assert sum(result.losses[-10:]) / 10 < sum(result.losses[:10]) / 10
    assert [e["step"] for e in result.evals] == [30, 60]
    assert 0.0 <= result.final["test_acc"] <= 1.0


def test_divergence_is_recorded_not_raised(data):
    result = train(small_resnet("none"), data, TrainConfig(lr=1e4, steps=50, batch_size=64))
    assert result.diverged and result.diverged_at == result.steps_done <= 50
    last = result.losses[-1]
    assert not math.isfinite(last) or last > 1e3
    assert result.evals == []


def test_same_seed_same_run(data):
    cfg = TrainConfig(lr=0.05, steps=10, batch_size=64, seed=3)
    assert train(small_resnet(), data, cfg).losses == train(small_resnet(), data, cfg).losses


def test_evaluate_restores_training_mode(data):
    model = small_resnet().train()
    evaluate(model, data.test_x, data.test_y, data)
    assert model.training


@pytest.mark.parametrize("kwargs, message", [({"lr": -1}, "lr"), ({"lr": float("nan")}, "lr"), ({"steps": 0}, "steps"),
                                             ({"milestones": (1.5,)}, "milestones")])
def test_bad_configs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**({"lr": 0.1, "steps": 10} | kwargs))
