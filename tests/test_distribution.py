"""Distributional-stability probe: unit statistics, the sampler's capture window, step changes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from harness.probes.distribution import QUANTILES, ActivationSampler, step_changes, unit_statistics


def test_unit_statistics_match_a_loop_over_channels():
    x = torch.randn(6, 5, 3, 4, generator=torch.Generator().manual_seed(0)) * 3 + 1
    stats = unit_statistics(x, [4, 1])
    for i, unit in enumerate([4, 1]):
        values = np.array([float(x[b, unit, h, w]) for b in range(6) for h in range(3) for w in range(4)])  # batch, H, W
        assert stats["mean"][i] == pytest.approx(values.mean(), rel=1e-9)
        assert stats["var"][i] == pytest.approx(values.var(), rel=1e-9)
        assert stats["quantiles"][i] == pytest.approx(list(np.quantile(values, QUANTILES)), rel=1e-9)
    assert unit_statistics(x[:, :, 0, 0], [2])["mean"][0] == pytest.approx(float(x[:, 2, 0, 0].mean()), rel=1e-6)


def test_unit_statistics_reject_bad_input():
    with pytest.raises(ValueError, match=r"units \[7\] are not among the 5 channels"):
        unit_statistics(torch.zeros(2, 5), [0, 7])
    with pytest.raises(ValueError, match="need activations of shape"):
        unit_statistics(torch.zeros(5), [0])


def test_sampler_records_inside_capture_only_and_before_an_inplace_relu():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Identity(), nn.ReLU(inplace=True))
    sampler = ActivationSampler(model[1], [0, 2])
    x = torch.randn(4, 2, 6, 6)
    model(x)  # not captured: a probe or an evaluation
    assert sampler.record.steps == []
    with sampler.capture(7):
        model(x)
        model(x)  # a second forward in the same step is not recorded twice
    conv = model[0](x).detach()
    assert sampler.record.steps == [7]
    assert sampler.record.mean[0] == pytest.approx([float(conv[:, 0].mean()), float(conv[:, 2].mean())], rel=1e-6)
    assert min(sampler.record.quantiles[0][0]) < 0  # the pre-ReLU values, not the rectified ones
    sampler.remove()
    with sampler.capture(8):
        model(x)
    assert sampler.record.steps == [7]
    with pytest.raises(ValueError, match="at least one unit"):
        ActivationSampler(model[1], [])


def test_step_changes_match_a_loop():
    rng = np.random.default_rng(0)
    mean, var = rng.normal(size=(5, 3)), rng.uniform(0.5, 2, size=(5, 3))
    expected = [np.mean([abs(mean[t + 1, u] - mean[t, u]) / np.sqrt(var[t, u]) + abs(var[t + 1, u] - var[t, u]) / var[t, u]
                         for u in range(3)]) for t in range(4)]
    assert step_changes(mean, var) == pytest.approx(expected, rel=1e-12)
    assert step_changes([[0.0], [0.0]], [[1.0], [1.0]]) == [0.0]


def test_step_changes_reject_bad_input():
    with pytest.raises(ValueError, match="matching"):
        step_changes([[0.0, 1.0]], [[1.0, 1.0]])  # one step: no change to measure
    with pytest.raises(ValueError, match="matching"):
        step_changes([[0.0], [1.0]], [[1.0, 1.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match="positive and finite"):
        step_changes([[0.0], [1.0]], [[0.0], [1.0]])
    with pytest.raises(ValueError, match="positive and finite"):
        step_changes([[0.0], [1.0]], [[1.0], [float("inf")]])
