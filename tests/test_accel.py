"""Speed levers for training-only runs (harness/accel.py) and the float32 guard of the probes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from harness.accel import LEVERS, Accel, PrecisionError, check_float32, float32_probe
from harness.data import synthetic_cifar
from harness.models import resnet_cifar
from harness.probes.functional import ParamLoss
from harness.train import EachBatch, TrainConfig, train

CFG = TrainConfig(lr=0.05, steps=6, batch_size=32, eval_every=3, seed=1)


@pytest.fixture(scope="module")
def data():
    return synthetic_cifar(256, 64, resolution=8, seed=0)


def small_resnet():
    torch.manual_seed(0)
    return resnet_cifar(8, "batch", width=4)


@pytest.fixture(scope="module")
def default_run(data):
    model = small_resnet()
    return train(model, data, CFG), model.state_dict()


@pytest.fixture
def tf32_flags_on():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_all_off_accel_is_bit_identical_to_the_default_run(data, default_run):
    result, state = default_run
    model = small_resnet()
    other = train(model, data, CFG, accel=Accel())
    assert other.losses == result.losses and other.evals == result.evals
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("lever", ["cudnn_benchmark", "tf32"])
def test_cuda_only_levers_change_nothing_on_the_cpu(data, default_run, lever):
    other = train(small_resnet(), data, CFG, accel=Accel.only(lever))
    assert other.losses == default_run[0].losses and other.evals == default_run[0].evals


@pytest.mark.parametrize("accel", [Accel(channels_last=True), Accel(compile=True, compile_backend="eager")],
                         ids=["channels_last", "compile-eager"])
def test_exact_levers_match_the_default_within_float_rounding(data, default_run, accel):
    other = train(small_resnet(), data, CFG, accel=accel)
    # other summation orders: float32 rounding (~1e-7 per op) compounded over 6 steps stays far below 1e-4
    assert other.losses == pytest.approx(default_run[0].losses, rel=1e-4)
    # 64 test images: one flipped prediction moves the accuracy by 0.016
    assert [e["test_acc"] for e in other.evals] == pytest.approx([e["test_acc"] for e in default_run[0].evals], abs=0.02)


def test_bf16_autocast_trains_on_the_cpu_with_finite_losses_near_float32(data, default_run):
    other = train(small_resnet(), data, CFG, accel=Accel(autocast_bf16=True))
    assert all(math.isfinite(v) for v in other.losses) and other.steps_done == CFG.steps
    # bf16 keeps 8 significant bits (relative rounding 2^-8 ≈ 0.4% per op); the first loss is one forward pass
    assert other.losses[0] == pytest.approx(default_run[0].losses[0], rel=0.02)
    assert other.losses != default_run[0].losses  # it did run in bf16


def test_channels_last_model_comes_back_in_the_default_layout(data):
    model = small_resnet()
    train(model, data, TrainConfig(lr=0.05, steps=2, batch_size=32), accel=Accel(channels_last=True))
    assert all(p.is_contiguous() for p in model.parameters())


def test_train_restores_the_backend_flags(data):
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark
    seen = []

    def spy(batch, model, x, y):
        seen.append((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32))

    train(small_resnet(), data, TrainConfig(lr=0.05, steps=2, batch_size=32), probes=[EachBatch(spy)], accel=Accel())
    assert seen == [(False, False)] * 2  # Accel() means TF32 off, whatever the process default
    train(small_resnet(), data, TrainConfig(lr=0.05, steps=2, batch_size=32), accel=Accel(tf32=True, cudnn_benchmark=True))
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark) == before


@pytest.mark.parametrize("lever", LEVERS)
def test_levers_are_refused_when_a_probe_sees_the_batches(data, lever):
    with pytest.raises(ValueError, match="training-only"):
        train(small_resnet(), data, CFG, probes=[EachBatch(lambda *a: None)], accel=Accel.only(lever))


@pytest.mark.parametrize("kwargs, error, message", [
    ({"tf32": 1}, TypeError, "tf32 must be a bool"),
    ({"compile": "fastest"}, ValueError, "compile must be"),
    ({"compile_backend": ""}, ValueError, "compile_backend"),
])
def test_bad_accel(kwargs, error, message):
    with pytest.raises(error, match=message):
        Accel(**kwargs)


def test_only_names_one_lever():
    assert Accel.only("channels_last") == Accel(channels_last=True) and Accel.only("compile").compile is True
    assert Accel().describe() == "none" and not Accel().any
    assert Accel(tf32=True, compile="max-autotune").describe() == "tf32+compile=max-autotune"
    with pytest.raises(ValueError, match="unknown lever 'fp8'"):
        Accel.only("fp8")


def test_float32_probe_switches_tf32_and_autocast_off_and_restores(tf32_flags_on):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with float32_probe():
            assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
            assert not torch.is_autocast_enabled("cpu")
            check_float32("inside")
        assert torch.is_autocast_enabled("cpu")
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32


def test_check_float32_names_what_is_wrong(tf32_flags_on):
    with pytest.raises(PrecisionError, match="probe-x: .*matmul.allow_tf32 is on; .*cudnn.allow_tf32 is on"):
        check_float32("probe-x")
    with float32_probe(), torch.autocast("cpu", dtype=torch.bfloat16):
        with pytest.raises(PrecisionError, match="autocast is enabled for cpu"):
            check_float32("probe-y")


def test_param_loss_measures_in_float32_whatever_the_caller_set(data, tf32_flags_on):
    model = small_resnet()
    x = (data.train_x[:16].float() / 255.0)
    y = data.train_y[:16]

    def loss_fn(logits, targets):
        check_float32("loss_fn")  # raises unless the probe switched TF32 and autocast off
        return F.cross_entropy(logits, targets)

    objective = ParamLoss(model, x, y, loss_fn)
    params = objective.params()
    reference = objective.loss_and_grad(params)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value, grads = objective.loss_and_grad(params)
        loss_only = objective.loss(params)
    assert value == reference[0] == loss_only
    assert all(g.dtype == torch.float32 and torch.equal(g, reference[1][k]) for k, g in grads.items())


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (the GPU half of the lever tests)")


@needs_cuda
@pytest.mark.parametrize("lever", LEVERS)
def test_each_lever_trains_on_cuda(data, lever):
    result = train(small_resnet(), data, CFG, "cuda", accel=Accel.only(lever))
    assert result.steps_done == CFG.steps and all(math.isfinite(v) for v in result.losses)


@needs_cuda
def test_on_cuda_tf32_changes_a_raw_matmul_but_no_probe(data, tf32_flags_on):
    a = torch.randn(512, 512, device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    with_tf32 = a @ a
    with float32_probe():
        full = a @ a
    if torch.cuda.get_device_capability()[0] >= 8:  # TF32 exists from Ampere on
        assert not torch.equal(with_tf32, full)
    model = small_resnet().cuda()
    x, y = data.train_x[:64].cuda().float() / 255.0, data.train_y[:64].cuda()
    objective = ParamLoss(model, x, y, F.cross_entropy)
    params = objective.params()
    deterministic, torch.backends.cudnn.deterministic = torch.backends.cudnn.deterministic, True  # no atomics
    try:
        value, grads = objective.loss_and_grad(params)  # the caller left TF32 on
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        reference = objective.loss_and_grad(params)
    finally:
        torch.backends.cudnn.deterministic = deterministic
    assert value == reference[0] and all(torch.equal(g, reference[1][k]) for k, g in grads.items())


def test_the_other_gradient_probes_measure_in_float32(data, tf32_flags_on):
    from harness.models import mlp
    from harness.probes.depth_gradients import first_layer_grad_norm
    from harness.probes.sgd_noise import per_example_gradients

    torch.manual_seed(0)
    net, flat_net = resnet_cifar(8, "none", width=4), mlp(3, width=16, in_features=3 * 8 * 8)
    x, y = data.train_x[:8].float() / 255.0, data.train_y[:8]
    reference = per_example_gradients(net, x, y), first_layer_grad_norm(flat_net, x.flatten(1), y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        measured = per_example_gradients(net, x, y), first_layer_grad_norm(flat_net, x.flatten(1), y)
    assert measured[0].dtype == torch.float32 and torch.equal(measured[0], reference[0])
    assert measured[1] == reference[1]
