"""Norm variants of bjorck2018 App. H / J and review 3: parts of BN, alternating BN, GroupNorm,
LayerNorm; and Fixup (X-FIXUP). Each against a slow, obviously-correct reference."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harness.models import resnet_cifar
from harness.norms import AlternatingBatchNorm, BatchNormParts, make_norm


def _x(seed=0, shape=(16, 4, 5, 5)):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 3 + 2


def test_all_parts_is_batchnorm_in_train_and_eval():
    x, bn, parts = _x(), nn.BatchNorm2d(4), make_norm("bn_parts:gamma+beta+mu+sigma2")(4)
    with torch.no_grad():
        for m in (bn, parts):
            m.weight.copy_(torch.arange(1.0, 5.0))
            m.bias.copy_(torch.arange(4.0))
    torch.testing.assert_close(parts(x), bn(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(parts.running_var, bn.running_var)
    bn.eval(), parts.eval()
    torch.testing.assert_close(parts(x), bn(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("parts", ["mu", "sigma2", "mu+sigma2", "gamma+mu+sigma2", "beta+mu+sigma2"])
def test_each_part_against_per_channel_loop(parts):
    x = _x(1)
    layer = make_norm(f"bn_parts:{parts}")(4)
    out = layer(x)
    for c in range(4):  # reference: one channel at a time, statistics over (N, H, W)
        v = x[:, c]
        ref = v - v.mean() if "mu" in parts else v
        if "sigma2" in parts:
            ref = ref / torch.sqrt(v.var(unbiased=False) + 1e-5)
        torch.testing.assert_close(out[:, c], ref, atol=1e-5, rtol=1e-5)
    assert (layer.weight is not None) == ("gamma" in parts) and (layer.bias is not None) == ("beta" in parts)


def test_empty_parts_is_identity_and_not_normalizing():
    x = _x()
    assert torch.equal(make_norm("bn_parts:")(4)(x), x)
    assert not make_norm("bn_parts:").normalizes and not make_norm("bn_parts:sigma2").normalizes
    assert make_norm("bn_parts:mu").normalizes


@pytest.mark.parametrize("kind", ["bn_parts:mu+foo", "bn_parts:mu+mu", "bn_parts:mu,sigma2"])
def test_bad_parts_are_named(kind):
    with pytest.raises(ValueError, match="bad BN parts"):
        make_norm(kind)
    with pytest.raises(ValueError, match="unknown BN parts"):
        BatchNormParts(4, {"delta"})


def test_alternating_measures_every_other_batch():
    layer, bn = AlternatingBatchNorm(4), nn.BatchNorm2d(4)
    a, b, c = _x(0), _x(1) * 5, _x(2)
    torch.testing.assert_close(layer(a), bn(a), atol=1e-5, rtol=1e-5)  # batch 1: measured, exactly BN
    reused = layer(b)  # batch 2: a's statistics as constants
    mean, var = a.mean(dim=(0, 2, 3)).view(1, 4, 1, 1), a.var(dim=(0, 2, 3), unbiased=False).view(1, 4, 1, 1)
    torch.testing.assert_close(reused, (b - mean) / torch.sqrt(var + 1e-5), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer(c), nn.BatchNorm2d(4)(c), atol=1e-5, rtol=1e-5)  # batch 3: measured again
    assert int(layer.batches_seen) == 3
    # gradients flow through measured statistics, not through reused ones
    x = _x(3).requires_grad_(True)
    layer(x).sum().backward()  # batch 4: reused → gradient of sum is γ/σ per element
    assert x.grad.abs().sum() > 0


def test_alternating_eval_uses_running_statistics_and_does_not_count():
    layer = AlternatingBatchNorm(4)
    layer(_x(0))
    layer.eval()
    out = layer(_x(1))
    torch.testing.assert_close(out, (_x(1) - layer.running_mean.view(1, 4, 1, 1)) / torch.sqrt(layer.running_var.view(1, 4, 1, 1) + 1e-5))
    assert int(layer.batches_seen) == 1


def test_group_and_layer_norm_statistics():
    x = _x(4, (3, 16, 4, 4))
    gn, ln = make_norm("group")(16), make_norm("layer")(16)
    assert gn.num_groups == 4 and ln.num_groups == 1
    g = x.view(3, 4, -1)
    ref = (g - g.mean(-1, keepdim=True)) / torch.sqrt(g.var(-1, unbiased=False, keepdim=True) + 1e-5)
    torch.testing.assert_close(gn(x), ref.view_as(x), atol=1e-5, rtol=1e-5)
    flat = x.view(3, -1)
    ref = (flat - flat.mean(-1, keepdim=True)) / torch.sqrt(flat.var(-1, unbiased=False, keepdim=True) + 1e-5)
    torch.testing.assert_close(ln(x), ref.view_as(x), atol=1e-5, rtol=1e-5)


def test_variants_thread_through_the_resnet():
    for kind in ("alternating", "group", "layer", "bn_parts:mu+sigma2"):
        model = resnet_cifar(8, kind, 4)
        assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_fixup_initialization():
    model = resnet_cifar(20, "none", 8, fixup=True)
    blocks = list(model.blocks)
    assert all(torch.count_nonzero(b.conv2.weight) == 0 for b in blocks)
    assert torch.count_nonzero(model.fc.weight) == 0
    w = blocks[0].conv1.weight  # He std × L^(-1/2), L = 9 branches
    expected = (2 / (w.shape[0] * 9)) ** 0.5 / 9**0.5
    assert abs(float(torch.cat([b.conv1.weight.flatten() for b in blocks[:3]]).detach().std()) - expected) / expected < 0.1
    assert float(model(torch.randn(4, 3, 16, 16)).detach().abs().max()) == 0.0  # zero classifier: uniform output at init
    x = torch.randn(4, 3, 16, 16)
    torch.testing.assert_close(model.blocks[1](model.blocks[0](model.conv1(x).relu())),
                               model.conv1(x).relu(), msg="each branch starts at zero: blocks are identities")


def test_fixup_needs_an_unnormalized_net():
    with pytest.raises(ValueError, match="Fixup is an initialization for unnormalized"):
        resnet_cifar(20, "batch", 8, fixup=True)
