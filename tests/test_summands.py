"""Eq. 4 summands and Table 1 statistics against an explicit loop over b, x, y on a tiny conv."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness.probes.summands import STATISTICS, kernel_gradient, summand_statistics, table1_row


def _case(stride: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    conv = nn.Conv2d(2, 3, 3, stride=stride, padding=1, bias=False)
    inp = torch.randn(4, 2, 6, 6, generator=g, requires_grad=True)
    out = conv(inp)
    target = torch.randn(out.shape, generator=g)
    (out * target).sum().backward()  # ∂L/∂OUTPUT = target
    return conv, inp.detach(), target


def _summands_by_loop(conv, inp, grad_out) -> torch.Tensor:
    """d[b, x, y, co, ci, i, j], straight from Eq. 4 (zero padding, stride s)."""
    s, p = conv.stride[0], conv.padding[0]
    padded = F.pad(inp, (p, p, p, p)).double()
    B, CO, H, W = grad_out.shape
    d = torch.zeros(B, H, W, CO, conv.in_channels, 3, 3, dtype=torch.float64)
    for b, x, y, co, ci, i, j in itertools.product(range(B), range(H), range(W), range(CO), range(conv.in_channels), range(3), range(3)):
        d[b, x, y, co, ci, i, j] = float(grad_out[b, co, x, y]) * padded[b, ci, s * x + i, s * y + j]
    return d


@pytest.mark.parametrize("stride", [1, 2])
def test_statistics_match_an_explicit_loop(stride):
    conv, inp, grad_out = _case(stride)
    d = _summands_by_loop(conv, inp, grad_out)
    expected = {
        "sum_bxy_abs": d.abs().sum((0, 1, 2)),
        "sum_b_abs_sum_xy": d.sum((1, 2)).abs().sum(0),
        "sum_xy_abs_sum_b": d.sum(0).abs().sum((0, 1)),
        "abs_sum_bxy": d.sum((0, 1, 2)).abs(),
        "sum_xy_abs_sum_bij": d.sum((0, 5, 6)).abs().sum((0, 1)) / 9,
    }
    stats = summand_statistics(conv, inp, grad_out)
    assert set(stats) == set(STATISTICS)
    for name, value in expected.items():
        torch.testing.assert_close(stats[name].double(), value, rtol=1e-5, atol=1e-6, msg=name)


def test_sum_of_summands_is_autograds_weight_gradient():
    conv, inp, grad_out = _case(1)
    torch.testing.assert_close(kernel_gradient(conv, inp, grad_out), conv.weight.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(summand_statistics(conv, inp, grad_out)["abs_sum_bxy"], conv.weight.grad.abs(), rtol=1e-5, atol=1e-6)


def test_table1_row_applies_the_papers_factor():
    conv, inp, grad_out = _case(1)
    stats = summand_statistics(conv, inp, grad_out)
    row = table1_row(stats, batch=4, positions=36)
    assert row["sum_bxy_abs"] == pytest.approx(float(stats["sum_bxy_abs"].double().mean()) / (4 * 36))
    # |Σ d| ≤ every partial absolute sum ≤ Σ |d| (triangle inequality), per parameter and on average
    assert row["abs_sum_bxy"] <= row["sum_b_abs_sum_xy"] <= row["sum_bxy_abs"]
    assert row["abs_sum_bxy"] <= row["sum_xy_abs_sum_b"] <= row["sum_bxy_abs"]
    with pytest.raises(ValueError, match="positive"):
        table1_row(stats, batch=0, positions=36)


def test_bad_inputs_are_rejected():
    conv, inp, grad_out = _case(1)
    with pytest.raises(ValueError, match="float32"):
        summand_statistics(conv, inp.double(), grad_out)
    with pytest.raises(ValueError, match="do not fit"):
        summand_statistics(conv, inp[:, :1], grad_out)
    with pytest.raises(ValueError, match="positions"):
        summand_statistics(conv, inp, grad_out[:, :, :5, :5])
    with pytest.raises(ValueError, match="groups 1"):
        summand_statistics(nn.Conv2d(2, 2, 3, padding=1, groups=2), inp, grad_out[:, :2])
    with pytest.raises(TypeError, match="nn.Conv2d"):
        summand_statistics(nn.Linear(2, 3), inp, grad_out)
