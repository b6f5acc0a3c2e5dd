"""santurkar2018 Algorithm 1: the noise statistics, its own RNG stream, and the norm kinds using it."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from harness.models import vgg_cifar
from harness.norms import NoiseInjection, make_norm, seed_noise

N_MU, N_SIGMA, R_MU, R_SIGMA = 0.5, 1.25, 0.1, 0.1  # App. A.2.1


def _draw(layer: NoiseInjection, steps: int, channels: int = 64, size: int = 4000):
    """Per step and channel: mean and std of m (rows where a = 0) and of s (a = 1 minus a = 0).

    The first half of the batch is 0 (output = m), the second 1 (output = s + m), so the two
    halves separate the shift m from the scale s; each element draws its own pair.
    """
    a = torch.cat([torch.zeros(size, channels), torch.ones(size, channels)]).double()
    out = []
    for _ in range(steps):
        y = layer(a)
        m, sm = y[:size], y[size:]
        out.append((m.mean(0), m.std(0), sm.mean(0) - m.mean(0), sm.std(0)))
    return [torch.stack(v) for v in zip(*out)]  # each (steps, channels)


def test_noise_statistics_follow_algorithm_1():
    m_mean, m_std, s_mean, sm_std = _draw(NoiseInjection(seed=3).train(), steps=20)
    # μ_t ~ U(−0.5, 0.5) per step and unit: over 1280 draws its mean ≈ 0 and std ≈ 0.5/√3
    # (tolerances ≈ 4 standard errors: 0.289/√1280 = 0.008)
    assert abs(float(m_mean.mean())) < 0.035
    assert float(m_mean.std()) == pytest.approx(N_MU / math.sqrt(3), abs=0.02)
    assert float(m_mean.min()) > -N_MU - 0.01 and float(m_mean.max()) < N_MU + 0.01
    # within a step, m ~ U(μ_t ± 0.1): std 0.1/√3 = 0.0577 per unit
    assert float(m_std.mean()) == pytest.approx(R_MU / math.sqrt(3), rel=0.02)
    # σ_t ~ U(1, 1.25): mean 1.125, std 0.25/√12 = 0.072, inside [1, 1.25] up to the sampling error
    assert float(s_mean.mean()) == pytest.approx((1 + N_SIGMA) / 2, abs=0.01)
    assert float(s_mean.std()) == pytest.approx((N_SIGMA - 1) / math.sqrt(12), abs=0.008)
    assert float(s_mean.min()) > 1 - 0.01 and float(s_mean.max()) < N_SIGMA + 0.01
    # s + m with s ~ N(σ_t, 0.1) and m ~ U(μ_t ± 0.1) independent: std √(0.1² + 0.1²/3)
    assert float(sm_std.mean()) == pytest.approx(math.sqrt(R_SIGMA**2 + R_MU**2 / 3), rel=0.02)


def test_noise_is_resampled_every_step_and_hw_counts_as_batch():
    layer = NoiseInjection().train()
    a = torch.zeros(2, 3, 5, 5)
    first, second = layer(a), layer(a)
    assert not torch.equal(first, second)  # D_t changes with t
    # one conv channel: every (sample, h, w) draws its own m, around one μ_t per channel
    assert first[:, 0].unique().numel() == 50
    assert float((first[:, 0] - first[:, 0].mean()).abs().max()) <= 2 * R_MU


def test_noise_uses_its_own_generator_and_is_off_in_eval():
    a = torch.randn(4, 6)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    first = NoiseInjection(seed=5).train()(a)
    assert torch.equal(torch.get_rng_state(), before)  # the global stream did not move
    assert torch.equal(NoiseInjection(seed=5).train()(a), first)  # same seed, same noise
    assert not torch.equal(NoiseInjection(seed=6).train()(a), first)
    assert torch.equal(NoiseInjection().eval()(a), a)


def test_seed_noise_gives_each_layer_its_own_stream():
    model = nn.Sequential(NoiseInjection(), NoiseInjection()).train()
    a = torch.zeros(8, 4)
    assert torch.equal(model[0](a), model[1](a))  # both default to seed 0
    assert seed_noise(model, 10) == 2
    assert (model[0].seed, model[1].seed) == (10, 11)
    assert not torch.equal(model[0](a), model[1](a))


def test_bad_noise_parameters_are_rejected():
    with pytest.raises(ValueError, match="n_sigma ≥ 1"):
        NoiseInjection(n_sigma=0.5)
    with pytest.raises(ValueError, match="≥ 0"):
        NoiseInjection(r_mu=-0.1)


def test_noisy_kinds_in_the_factory():
    noisy = make_norm("noisy_batch")(8, dims=2)
    assert isinstance(noisy[0], nn.BatchNorm2d) and isinstance(noisy[1], NoiseInjection)
    assert isinstance(make_norm("noisy_batch")(8, dims=1)[0], nn.BatchNorm1d)
    assert isinstance(make_norm("noise")(8), NoiseInjection)
    # "standard + noise" is the standard network: its convs keep their bias; noisy BN's do not
    assert vgg_cifar("vgg11", "noise", width=1 / 16).layer(1).bias is not None
    assert vgg_cifar("vgg11", "noisy_batch", width=1 / 16).layer(1).bias is None
    assert vgg_cifar("vgg11", "noisy_batch", width=1 / 16)(torch.randn(4, 3, 32, 32)).shape == (4, 10)
