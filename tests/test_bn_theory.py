"""BatchNorm theory probes against slow, explicit references: torch's BatchNorm, full Hessians,
Fact C.1 written as a loop, and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.probes import bn_theory as T


def test_batchnorm_matches_torch_training_mode_without_eps():
    y = torch.randn(16, 5, dtype=torch.float64) * 3 + 1
    bn = torch.nn.BatchNorm1d(5, eps=1e-30, dtype=torch.float64).train()  # torch refuses eps = 0; 1e-30 ≪ var ≈ 9
    with torch.no_grad():
        bn.weight.fill_(2.0)
        bn.bias.fill_(-0.5)
    assert torch.allclose(T.batchnorm(y, 2.0, -0.5), bn(y), atol=1e-12)


def test_quadratic_form_matches_the_full_hessian():
    A = torch.randn(6, 6, dtype=torch.float64)
    f = lambda x: (x @ A @ x) + torch.sin(x).sum()
    x, v = torch.randn(6, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
    H = torch.autograd.functional.hessian(f, x)
    assert T.quadratic_form(f, x, v) == pytest.approx(float(v @ H @ v), rel=1e-10)


def test_gradient_through_bn_matches_fact_c1_as_a_loop():
    rng = np.random.default_rng(0)
    d = T.random_draw(rng, convex=True)
    sigma, yhat, z, g = T._stats(d)
    m = d.m
    expected = torch.stack([
        d.gamma / (m * sigma) * (m * g[b] - g.sum() - yhat[b] * sum(g[k] * yhat[k] for k in range(m))) for b in range(m)
    ])
    got = T._grad(lambda y: d.loss(T.batchnorm(y, d.gamma, d.beta)), d.y)
    assert torch.allclose(got, expected, rtol=1e-10, atol=1e-14)


def test_draws_are_never_degenerate_and_mix_losses():
    rng = np.random.default_rng(1)
    draws = [T.random_draw(rng, convex=i % 2 == 0) for i in range(50)]
    assert min(d.m for d in draws) >= 3 and {d.convex for d in draws} == {True, False}


def test_convex_losses_have_psd_hessians():
    rng = np.random.default_rng(2)
    d = T.random_draw(rng, convex=True)
    H = torch.autograd.functional.hessian(d.loss, torch.randn(d.m, dtype=torch.float64))
    assert torch.linalg.eigvalsh(H).min() >= -1e-10


def test_theorem_44_maximum_is_attained_by_a_rank_one_input():
    rng = np.random.default_rng(3)
    d = T.random_draw(rng, convex=True)
    lam = 2.0
    bound = T.theorem_44(d, lam, rng)
    u = T._grad(lambda y: d.loss(T.batchnorm(y, d.gamma, d.beta)), d.y)
    w = torch.zeros(8, dtype=torch.float64)
    w[0] = 1.0
    X = lam * torch.outer(u / u.norm(), w)  # ‖X‖₂ = λ
    assert float((X.T @ u).pow(2).sum()) == pytest.approx(bound.g_hat, rel=1e-12)
    assert bound.random_x_max <= bound.g_hat * (1 + 1e-12)


def test_lemma_45_nearest_point_on_the_ray_has_a_closed_form():
    rng = np.random.default_rng(4)
    r = T.lemma_45(rng)
    assert r.nearest_bn_optimum <= r.bound * (1 + 1e-8) or not r.applies
    assert r.scale_invariance_error < 1e-12 and r.bn_gradient_at_w_star < 1e-10
