"""santurkar2018 §4 and App. C: the BatchNorm theorems as numeric checks, float64 autograd.

Setup (Fig. 5 of the paper): one unit j of a layer, batch of m pre-activations y ∈ R^m,
ŷ = (y − μ)/σ with the batch mean μ and the biased batch std σ (no ε), z = γŷ + β, and a
downstream loss L that maps z ∈ R^m to a scalar. The standard network applies L to y directly;
the BN network's loss is L̂(y) = L(z(y)). Following the paper, ∇_y L in a bound means the
downstream gradient ĝ = ∂L/∂z at the BN output.

Each function returns the two sides of one statement for one random draw, as floats.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch

Loss = Callable[[torch.Tensor], torch.Tensor]


def batchnorm(y: torch.Tensor, gamma: float | torch.Tensor = 1.0, beta: float | torch.Tensor = 0.0) -> torch.Tensor:
    """BN over dim 0 with the biased variance and no ε, exactly as in the paper's analysis."""
    mu = y.mean(dim=0)
    sigma = y.var(dim=0, unbiased=False).sqrt()
    return gamma * (y - mu) / sigma + beta


@dataclasses.dataclass(frozen=True)
class Draw:
    """One random instance: pre-activations, BN parameters and a downstream loss."""

    y: torch.Tensor
    gamma: float
    beta: float
    loss: Loss
    convex: bool

    @property
    def m(self) -> int:
        return int(self.y.shape[0])


def random_draw(rng: np.random.Generator, convex: bool) -> Draw:
    """Batch size 3–64, arbitrary location and scale of y, γ ∈ [0.1, 5], β ∈ [−2, 2].

    m = 2 is excluded: BN then outputs the constant ±γ + β, every gradient through it is zero
    and both sides of every statement vanish.

    Convex losses: a PSD quadratic plus a sum of softplus terms. Non-convex ones add sine terms
    and an indefinite quadratic. Both are smooth, so Hessians exist everywhere.
    """
    m = int(rng.integers(3, 65))
    y = torch.from_numpy(rng.normal(rng.normal(0, 3), np.exp(rng.uniform(-2, 2)), m))
    gamma, beta = float(rng.uniform(0.1, 5)), float(rng.uniform(-2, 2))
    B = torch.from_numpy(rng.normal(size=(m, m)) / np.sqrt(m))
    a, c, d = (torch.from_numpy(rng.normal(size=m)) for _ in range(3))
    if convex:
        A = B @ B.T
        loss = lambda z: 0.5 * (z - a) @ A @ (z - a) + torch.nn.functional.softplus(c * z + d).sum()
    else:
        S = B + B.T
        loss = lambda z: 0.5 * z @ S @ z + torch.sin(c * z + d).sum() + (a * z).sum()
    return Draw(y, gamma, beta, loss, convex)


def _grad(f: Loss, x: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x), x, create_graph=create_graph)
    return g


def quadratic_form(f: Loss, x: torch.Tensor, v: torch.Tensor) -> float:
    """vᵀ ∇²f(x) v by a Hessian-vector product (double backward), never forming the Hessian."""
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x), x, create_graph=True)
    (hv,) = torch.autograd.grad(g @ v, x)
    return float(v @ hv)


def _stats(d: Draw):
    y = d.y
    mu, sigma = y.mean(), y.var(unbiased=False).sqrt()
    yhat = (y - mu) / sigma
    z = d.gamma * yhat + d.beta
    g = _grad(d.loss, z)  # ĝ = ∂L/∂z
    return sigma, yhat, z, g


def theorem_41(d: Draw) -> tuple[float, float, float]:
    """(‖∇_y L̂‖², γ²/σ² (‖ĝ‖² − ⟨1,ĝ⟩²/m − ⟨ĝ,ŷ⟩²/m), γ²/σ² ‖ĝ‖²); the proof makes the first
    two equal. The third is the leading term, the scale for a relative error: the right side is
    a difference of terms and can itself be small."""
    sigma, yhat, _, g = _stats(d)
    lhs = _grad(lambda y: d.loss(batchnorm(y, d.gamma, d.beta)), d.y).pow(2).sum()
    lead = d.gamma**2 / sigma**2 * (g @ g)
    rhs = lead - d.gamma**2 / sigma**2 * (g.sum() ** 2 / d.m + (g @ yhat) ** 2 / d.m)
    return float(lhs), float(rhs), float(lead)


@dataclasses.dataclass(frozen=True)
class Smoothness:
    lhs: float  # (∇_y L̂)ᵀ ∇²_y L̂ (∇_y L̂)
    rhs_first: float  # γ²/σ² vᵀHv − γ/(mσ²) ⟨ĝ,ŷ⟩ ‖v‖², v = ∇_y L̂
    rhs_second: float  # γ²/σ² (ĝᵀHĝ − ⟨ĝ,ŷ⟩ ‖v‖² / (mγ))
    conditions: bool  # the theorem's: H PSD (convex loss) and ⟨ĝ, ŷ⟩ > 0
    scale: float  # magnitude of the terms, for relative slack


def theorem_42(d: Draw) -> Smoothness:
    sigma, yhat, z, g = _stats(d)
    bn_loss = lambda y: d.loss(batchnorm(y, d.gamma, d.beta))
    v = _grad(bn_loss, d.y)
    lhs = quadratic_form(bn_loss, d.y, v)
    vHv, gHg = quadratic_form(d.loss, z, v), quadratic_form(d.loss, z, g)
    g_yhat, vv = float(g @ yhat), float(v @ v)
    s2 = float(sigma**2)
    first = d.gamma**2 / s2 * vHv - d.gamma / (d.m * s2) * g_yhat * vv
    second = d.gamma**2 / s2 * (gHg - g_yhat * vv / (d.m * d.gamma))
    scale = abs(d.gamma**2 / s2 * vHv) + abs(d.gamma / (d.m * s2) * g_yhat * vv) + abs(lhs)
    return Smoothness(lhs, first, second, d.convex and g_yhat > 0, scale)


def observation_43(rng: np.random.Generator) -> float:
    """Relative error between y = Wx and BN(y) with γ = σ and β = μ per unit (should be rounding)."""
    m, d_in, d_out = (int(v) for v in rng.integers(2, 40, size=3))
    X = torch.from_numpy(rng.normal(size=(m, d_in)) * rng.uniform(0.1, 10))
    W = torch.from_numpy(rng.normal(size=(d_in, d_out)))
    y = X @ W
    restored = batchnorm(y, y.var(dim=0, unbiased=False).sqrt(), y.mean(dim=0))
    return float((restored - y).norm() / y.norm())


@dataclasses.dataclass(frozen=True)
class WeightBound:
    g_hat: float  # max over ‖X‖₂ ≤ λ of ‖∇_W L̂‖² (attained; checked against random X)
    proved: float  # γ²/σ² (g² − λ²⟨1,ĝ⟩²/m − λ²⟨ĝ,ŷ⟩²/m), eqs. (16)–(18) of the proof
    printed: float  # γ²/σ² (g² − m μ_g² − λ²⟨ĝ,ŷ⟩²), the statement as printed (g = max ‖∇_W L‖)
    random_x_max: float  # largest ‖Xᵀ ∂L̂/∂y‖² over random X with ‖X‖₂ = λ (must not exceed g_hat)


def theorem_44(d: Draw, lam: float, rng: np.random.Generator, d_in: int = 8, samples: int = 64) -> WeightBound:
    """Weight-space gradient of column j: ∂L̂/∂W_·j = Xᵀ ∂L̂/∂y, with the activation gradients fixed
    while X ranges over ‖X‖₂ ≤ λ, as in the proof. max ‖Xᵀu‖² = λ²‖u‖² (X = λ u wᵀ/‖u‖)."""
    sigma, yhat, _, g = _stats(d)
    u = _grad(lambda y: d.loss(batchnorm(y, d.gamma, d.beta)), d.y)
    g_hat = lam**2 * float(u @ u)
    g_sq = lam**2 * float(g @ g)  # max over X of ‖Xᵀ ∂L/∂y‖² in the standard network, squared norm
    s2, m = float(sigma**2), d.m
    ones, g_yhat = float(g.sum()), float(g @ yhat)
    proved = d.gamma**2 / s2 * (g_sq - lam**2 * ones**2 / m - lam**2 * g_yhat**2 / m)
    printed = d.gamma**2 / s2 * (g_sq - m * (ones / m) ** 2 - lam**2 * g_yhat**2)
    best = 0.0
    for _ in range(samples):
        X = torch.from_numpy(rng.normal(size=(m, d_in)))
        X = X * lam / torch.linalg.matrix_norm(X, ord=2)
        best = max(best, float((X.T @ u).pow(2).sum()))
    return WeightBound(g_hat, proved, printed, best)


@dataclasses.dataclass(frozen=True)
class InitDistance:
    scale_invariance_error: float  # max relative change of BN(X(aw)) over a > 0
    bn_gradient_at_w_star: float  # ‖∇L̂(w*)‖ / (‖X‖₂‖t‖), its natural scale: w* is also a BN optimum
    nearest_bn_optimum: float  # ‖w0 − ŵ*‖², ŵ* the nearest point of {c w*: c > 0}, found numerically
    bound: float  # ‖w0 − w*‖² − (‖w*‖² − ⟨w*, w0⟩)² / ‖w*‖²
    applies: bool  # the lemma's condition ⟨w0, w*⟩ > 0


def lemma_45(rng: np.random.Generator) -> InitDistance:
    """Least squares with a constant feature: w* minimizes ½‖Xw − t‖²; the BN network with
    γ = σ(Xw*), β = μ(Xw*) (Observation 4.3) has w* and every c·w* (c > 0) among its optima."""
    import scipy.optimize

    m, d = int(rng.integers(20, 60)), int(rng.integers(2, 10))
    X = torch.from_numpy(np.column_stack([np.ones(m), rng.normal(size=(m, d - 1))]))
    t = torch.from_numpy(rng.normal(size=m))
    w_star = torch.linalg.lstsq(X, t.unsqueeze(1)).solution.squeeze(1)
    y_star = X @ w_star
    gamma, beta = y_star.var(unbiased=False).sqrt(), y_star.mean()
    bn_loss = lambda w: 0.5 * (batchnorm(X @ w, gamma, beta) - t).pow(2).sum()
    scales = torch.from_numpy(np.exp(rng.uniform(-3, 3, 8)))
    invariance = max(float((batchnorm(X @ (a * w_star)) - batchnorm(X @ w_star)).norm() / batchnorm(X @ w_star).norm())
                     for a in scales)
    w0 = torch.from_numpy(rng.normal(size=d))
    grad_ratio = float(_grad(bn_loss, w_star).norm() / (torch.linalg.matrix_norm(X, ord=2) * t.norm()))
    res = scipy.optimize.minimize_scalar(lambda c: float((w0 - c * w_star).pow(2).sum()), bounds=(1e-12, 1e6),
                                         method="bounded", options={"xatol": 1e-12})
    ws2, inner = float(w_star @ w_star), float(w_star @ w0)
    bound = float((w0 - w_star).pow(2).sum()) - (ws2 - inner) ** 2 / ws2
    return InitDistance(invariance, grad_ratio, float(res.fun), bound, inner > 0)
