"""Models and norms: the paper's ResNet-110, layer numbering, the norm factory, initialization."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harness.models import deep_linear, init_weights, resnet_cifar, vgg_cifar
from harness.models.resnet import ShortcutA
from harness.norms import make_norm


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_resnet110_with_bn_has_the_papers_parameter_count():
    assert n_params(resnet_cifar(110, "batch")) == 1_727_962  # He et al. 2016: "1.7M"


def test_resnet110_layer_numbering_follows_bjorck2018():
    model = resnet_cifar(110, "none")
    assert list(model.layer_numbers()) == list(range(1, 111))
    assert model.layer(1) is model.conv1 and model.layer(110) is model.fc
    # layer 54: block (54 − 2) // 2 = 26, i.e. the 9th block of the second stage, its first conv
    assert model.layer(54) is model.blocks[26].conv1
    assert model.layer(54).in_channels == 32
    with pytest.raises(IndexError, match="layer 111 does not exist: this network has layers 1..110"):
        model.layer(111)
    with pytest.raises(IndexError):
        model.layer(0)


@pytest.mark.parametrize("depth", [20, 32, 56])
def test_resnet_depths_and_forward(depth):
    model = resnet_cifar(depth, "batch", width=8)
    assert len(model.numbered_layers()) == depth
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_resnet_rejects_bad_depth_and_width():
    with pytest.raises(ValueError, match="6n\\+2"):
        resnet_cifar(100)
    with pytest.raises(ValueError, match="multiple of 4"):
        resnet_cifar(20, width=6)


def test_option_a_shortcut_subsamples_and_zero_pads():
    x = torch.randn(2, 16, 8, 8)
    out = ShortcutA(16, 32, 2)(x)
    assert out.shape == (2, 32, 4, 4)
    assert torch.equal(out[:, 8:24], x[:, :, ::2, ::2])
    assert out[:, :8].abs().sum() == 0 and out[:, 24:].abs().sum() == 0
    assert n_params(ShortcutA(16, 32, 2)) == 0


def test_norm_factory_threads_through_every_model():
    assert not any(isinstance(m, nn.BatchNorm2d) for m in resnet_cifar(20, "none").modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in resnet_cifar(20, "batch").modules()) == 19
    assert sum(isinstance(m, nn.BatchNorm2d) for m in vgg_cifar("vgg11", "batch", width=0.25).modules()) == 8
    assert sum(isinstance(m, nn.BatchNorm1d) for m in deep_linear(5, 4, norm="batch").modules()) == 4


def test_norm_factory_errors():
    with pytest.raises(ValueError, match="unknown norm 'magic'"):
        make_norm("magic")
    with pytest.raises(ValueError, match="dims must be 1"):
        make_norm("batch")(8, dims=3)
    with pytest.raises(ValueError, match="num_features must be positive"):
        make_norm("batch")(0)


def test_vgg_forward_and_errors():
    model = vgg_cifar("vgg16", "none", width=0.125)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert len(model.numbered_layers()) == 14
    with pytest.raises(ValueError, match="unknown VGG config"):
        vgg_cifar("vgg7")


def test_deep_linear_end_to_end_matches_forward():
    net = deep_linear(depth=6, width=5, norm="none")
    x = torch.randn(3, 5)
    assert torch.allclose(net(x), x @ net.end_to_end().T, atol=1e-6)
    with pytest.raises(ValueError, match="depth must be at least 1"):
        deep_linear(depth=0)


def test_xavier_init_variance_and_bn_affine():
    torch.manual_seed(0)
    model = resnet_cifar(20, "batch")
    conv = model.layer(10)
    fan_in = conv.in_channels * 9
    fan_out = conv.out_channels * 9
    assert conv.weight.var().item() == pytest.approx(2 / (fan_in + fan_out), rel=0.1)
    assert torch.all(model.bn1.weight == 1) and torch.all(model.bn1.bias == 0)
    with pytest.raises(ValueError, match="unknown init 'orthogonal'"):
        init_weights(model, "orthogonal")
