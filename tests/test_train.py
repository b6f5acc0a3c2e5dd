"""The one training loop: learning, LR schedule, divergence as a measured outcome, reproducibility,
full-batch gradient descent against a hand-written reference, and the probe interface."""

from __future__ import annotations

import math

import pytest
import torch

from harness.data import synthetic_cifar
from harness.models import resnet_cifar
from torch import nn

from harness.probes.checkpoints import LandscapeProbe
from harness.probes.distribution import ActivationSampler
from harness.train import BatchAccuracy, EachBatch, FullBatch, Probe, TrainConfig, evaluate, train


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
                                             ({"milestones": (1.5,)}, "milestones"), ({"eval_every": -1}, "eval_every"),
                                             ({"divergence_loss": 0.0}, "divergence_loss")])
def test_bad_configs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**({"lr": 0.1, "steps": 10} | kwargs))


class Recorder(Probe):
    """Logs every call the loop makes, in order."""

    def __init__(self, every):
        self.every, self.calls = every, []

    def due(self, step):
        return step % self.every == 0

    def measure(self, step, model, x, y):
        self.calls.append(("measure", step, len(x)))

    def watch(self, step):
        self.calls.append(("watch", step))
        return super().watch(step)

    def seen(self, step, output, y, loss):
        self.calls.append(("seen", step, loss))

    def close(self):
        self.calls.append(("close",))


def test_probe_hooks_are_called_in_order_at_the_due_steps(data):
    probe = Recorder(every=2)
    result = train(small_resnet(), data, TrainConfig(lr=0.05, steps=3, batch_size=32), probes=[probe])
    assert probe.calls == [("measure", 0, 32), ("watch", 0), ("seen", 0, result.losses[0]), ("watch", 1), ("seen", 1, result.losses[1]),
                           ("measure", 2, 32), ("watch", 2), ("seen", 2, result.losses[2]), ("close",)]


def test_probes_are_closed_when_the_run_fails(data):
    probe = Recorder(every=1)

    def fail(batch, model, x, y):
        raise RuntimeError("probe failed")

    with pytest.raises(RuntimeError, match="probe failed"):
        train(small_resnet(), data, TrainConfig(lr=0.05, steps=3, batch_size=32), probes=[probe, EachBatch(fail)])
    assert probe.calls[-1] == ("close",)


def test_probes_never_change_a_resnet_run(data):
    cfg = TrainConfig(lr=0.05, steps=6, batch_size=32, eval_every=3)
    plain = train(small_resnet(), data, cfg)
    model = small_resnet()
    carried = [LandscapeProbe(model, 2, cfg.lr, [0.5, 2.0], [1, 3], torch.nn.functional.cross_entropy, torch.Generator().manual_seed(1)),
               ActivationSampler(model.layer(2), [0, 1]), BatchAccuracy(), EachBatch(lambda *a: None)]
    probed = train(model, data, cfg, probes=carried)
    assert probed == plain  # bit for bit: losses, evaluations
    assert [c.step for c in carried[0].record] == [0, 2, 4] and len(carried[0].record[0].ics) == 2
    assert carried[1].record.steps == list(range(6)) and len(carried[2].record) == 6


def test_batches_are_numbered_from_one_for_each_batch_probes(data):
    seen = []
    train(small_resnet(), data, TrainConfig(lr=0.05, steps=3, batch_size=32), probes=[EachBatch(lambda b, m, x, y: seen.append(b))])
    assert seen == [1, 2, 3]


def test_evaluation_at_the_start_and_after_a_divergence(data):
    cfg = TrainConfig(lr=1e4, steps=50, batch_size=64, eval_every=1, eval_at_start=True, eval_diverged=True)
    result = train(small_resnet("none"), data, cfg)
    assert result.diverged
    steps = [e["step"] for e in result.evals]
    assert steps == list(range(result.diverged_at))  # every update, the diverged state last (diverged_at − 1 updates)


def _regression(seed=0, n=40, d=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    return x, x @ torch.randn(d, 2, generator=g, dtype=torch.float64)


def _sum_squares(pred, target):
    return (pred - target).pow(2).sum()


def test_full_batch_descent_matches_a_hand_written_reference():
    x, y = _regression()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)).double()
    reference = [p.detach().clone() for p in model.parameters()]
    cfg = TrainConfig(lr=1e-3, steps=15, momentum=0.0, weight_decay=0.0, milestones=(), augment=False, loss_at_end=True)
    result = train(model, FullBatch(x, y, _sum_squares), cfg)
    expected = []
    for step in range(16):  # the obviously correct loop: W ← W − η ∇L, the loss after the last update too
        w1, b1, w2, b2 = [p.requires_grad_(True) for p in reference]
        loss = _sum_squares((x @ w1.T + b1) @ w2.T + b2, y)
        expected.append(float(loss.detach()))
        if step == 15:
            break
        grads = torch.autograd.grad(loss, reference)
        reference = [(p - 1e-3 * g).detach() for p, g in zip(reference, grads)]
    assert result.losses == pytest.approx(expected, rel=1e-12) and result.steps_done == 16 and result.evals == []
    assert all(torch.allclose(p, r) for p, r in zip(model.parameters(), reference))


def test_relative_divergence_is_measured_against_the_first_loss():
    x, y = _regression()
    torch.manual_seed(0)
    cfg = TrainConfig(lr=0.5, steps=30, momentum=0.0, weight_decay=0.0, milestones=(), augment=False,
                      divergence_loss=10.0, divergence_relative=True)
    result = train(nn.Linear(3, 2).double(), FullBatch(x, y, _sum_squares), cfg)
    assert result.diverged and result.diverged_at == len(result.losses)
    assert result.losses[-1] > 10 * result.losses[0] and all(v <= 10 * result.losses[0] for v in result.losses[:-1])


def test_bad_data_and_probes_are_refused(data):
    with pytest.raises(TypeError, match="ImageData or a FullBatch"):
        train(small_resnet(), (data.train_x, data.train_y), TrainConfig(lr=0.1, steps=1))
    with pytest.raises(ValueError, match="as many targets as inputs"):
        FullBatch(torch.zeros(4, 3), torch.zeros(3, 2), _sum_squares)
    with pytest.raises(ValueError, match="every 0 updates"):
        LandscapeProbe(small_resnet(), 0, 0.1, [1.0], None, torch.nn.functional.cross_entropy, torch.Generator())
