"""Fully connected nets without skips (harness.models.mlp) and the gradient-growth probe."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harness.models import mlp
from harness.probes.depth_gradients import YANG_RATE, first_layer_grad_norm, gradient_growth
from harness.claimkit.report import figures


def _data(n=64, d=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_mlp_layout_and_numbering():
    model = mlp(3, width=16, in_features=12, num_classes=3, norm="batch")
    assert list(model.layer_numbers()) == [1, 2, 3, 4] and model.layer(4) is model.fc
    assert sum(isinstance(m, nn.BatchNorm1d) for m in model.modules()) == 3
    assert model.layer(1).bias is None and mlp(2, 8, 12, 3, norm="none").layer(1).bias is not None
    assert model(torch.randn(5, 3, 2, 2)).shape == (5, 3)  # images are flattened
    with pytest.raises(ValueError, match="positive"):
        mlp(0, 8, 12, 3)


def test_first_layer_gradient_norm_is_autograds():
    x, y = _data()
    torch.manual_seed(0)
    model = mlp(4, 16, 12, 3, "batch")
    norm = first_layer_grad_norm(model, x, y)
    ref = mlp(4, 16, 12, 3, "batch")
    ref.load_state_dict(model.state_dict())
    torch.nn.functional.cross_entropy(ref(x), y).backward()
    assert norm == pytest.approx(float(ref.layer(1).weight.grad.norm()), rel=1e-5)


def test_bn_gradients_grow_with_depth_near_yangs_rate():
    # Yang et al.'s rate holds for wide nets and large batches; at width 128 it is within ~10%
    x, y = _data(n=128, d=32)
    run = gradient_growth("batch", [2, 6, 10], 128, x, y, [0, 1])
    assert run["grad_norm"].shape == (3, 2)
    assert run["per_layer_low"] > 1 and run["per_layer"] == pytest.approx(YANG_RATE, rel=0.1)
    with pytest.raises(ValueError, match="at least two depths"):
        gradient_growth("batch", [4], 16, x, y, [0, 1, 2])


def test_new_figures_are_svg():
    import numpy as np

    svgs = [
        figures.histogram_panels({"a": np.random.randn(50), "b": np.random.randn(50) * 100}, xlabel="g", title="t"),
        figures.heatmaps({"a": np.random.randn(4, 5)}, xlabel="x", ylabel="y", title="t", symmetric=True),
        figures.scatter({"a": ([1, 2, 3], [1, 10, 100])}, xlabel="x", ylabel="y", title="t", logy=True),
        figures.bars({"a": [1, 2, 3]}, [0, 1, 2], ylabel="y", title="t", logy=True),
    ]
    assert all(s.lstrip().startswith("<?xml") and "<svg" in s for s in svgs)
