"""Linear networks and least squares (bjorck2018 §4, App. C, Proposition 1).

Problem (6): min over A_1 of ‖Ā A_1 x − y‖²_F with Ā = A_t ⋯ A_2 fixed, x ∈ R^{n×m} (n features,
m > n samples), y ∈ R^{d×m}. With the SVD x = U [Σ 0] V*, Proposition 1 rewrites it as independent
least-squares problems (7), one per column c of Ā_1 = A_1 U Σ:

    ‖Ā A_1 x − y‖² = Σ_c ‖Ā ā_c − ȳ_c‖² + C,   ȳ = (y V)_{1:n},   C = ‖(y V)_{n+1:m}‖².

Gradient descent carries over exactly: a GD step on A_1 with rate η moves column c of Ā_1 by a GD
step on its own problem with rate η σ_c² (differentiate the identity), which the claim test checks.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Decoupled:
    """Problem (6) rewritten as independent column problems of type (7)."""

    U: np.ndarray  # n×n
    sigma: np.ndarray  # n singular values of x
    ybar: np.ndarray  # d×n, column c is the target of problem c
    constant: float  # the part of the loss that no A_1 can change

    def to_columns(self, A1: np.ndarray) -> np.ndarray:
        return A1 @ self.U * self.sigma  # A_1 U Σ

    def from_columns(self, A1bar: np.ndarray) -> np.ndarray:
        return (A1bar / self.sigma) @ self.U.T

    def loss(self, Abar: np.ndarray, A1bar: np.ndarray) -> float:
        return float(np.sum((Abar @ A1bar - self.ybar) ** 2) + self.constant)


def _check_problem(Abar: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
    n, m = x.shape
    if m <= n:
        raise ValueError(f"Proposition 1 assumes more samples than features (m > n), got x of shape {x.shape}")
    if y.shape[1] != m or Abar.shape[0] != y.shape[0]:
        raise ValueError(f"shapes do not chain: Ā {Abar.shape}, x {x.shape}, y {y.shape}")
    if np.linalg.matrix_rank(x) < n:
        raise ValueError("Proposition 1 assumes x has full rank")


def decouple(Abar: np.ndarray, x: np.ndarray, y: np.ndarray) -> Decoupled:
    _check_problem(Abar, x, y)
    n = x.shape[0]
    U, sigma, Vt = np.linalg.svd(x, full_matrices=True)
    yV = y @ Vt.T
    return Decoupled(U=U, sigma=sigma, ybar=yV[:, :n], constant=float(np.sum(yV[:, n:] ** 2)))


def loss_direct(Abar: np.ndarray, A1: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum((Abar @ A1 @ x - y) ** 2))


def solve_direct(Abar: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Reference: least squares over vec(A_1), vec(Ā A_1 x) = (xᵀ ⊗ Ā) vec(A_1) (column-major)."""
    h, n = Abar.shape[1], x.shape[0]
    design = np.kron(x.T, Abar)
    vec, *_ = np.linalg.lstsq(design, y.reshape(-1, order="F"), rcond=None)
    return vec.reshape((h, n), order="F")


def solve_decoupled(Abar: np.ndarray, problem: Decoupled) -> np.ndarray:
    """Solve each column problem min ‖Ā a − ȳ_c‖ on its own, then map back to A_1."""
    columns = [np.linalg.lstsq(Abar, problem.ybar[:, c], rcond=None)[0] for c in range(problem.ybar.shape[1])]
    return problem.from_columns(np.stack(columns, axis=1))


def gd_direct(Abar, x, y, A1, lr: float, steps: int) -> list[float]:
    """Losses of plain GD on problem (6), one entry per iterate (the start included)."""
    losses = []
    for _ in range(steps):
        residual = Abar @ A1 @ x - y
        losses.append(float(np.sum(residual**2)))
        A1 = A1 - lr * 2 * Abar.T @ residual @ x.T
    losses.append(loss_direct(Abar, A1, x, y))
    return losses


def gd_decoupled(Abar, problem: Decoupled, A1, lr: float, steps: int) -> list[float]:
    """Losses of GD run column by column on the problems (7), column c with rate lr·σ_c²."""
    columns = problem.to_columns(A1)
    rates = lr * problem.sigma**2
    losses = []
    for _ in range(steps):
        losses.append(problem.loss(Abar, columns))
        for c in range(columns.shape[1]):
            residual = Abar @ columns[:, c] - problem.ybar[:, c]
            columns[:, c] -= rates[c] * 2 * Abar.T @ residual
    losses.append(problem.loss(Abar, columns))
    return losses


def matrix_with_condition(rng: np.random.Generator, n: int, kappa: float) -> np.ndarray:
    """n×n matrix with singular values log-spaced from 1 down to 1/κ (random orthogonal frames)."""
    if kappa < 1:
        raise ValueError(f"a condition number is at least 1, got {kappa}")
    q1, _ = np.linalg.qr(rng.standard_normal((n, n)))
    q2, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return q1 @ np.diag(np.logspace(0, -np.log10(kappa), n)) @ q2.T


def gd_iterations_to_tolerance(A: np.ndarray, b: np.ndarray, lr: float, tol: float, max_steps: int) -> int | None:
    """GD on ½‖Ax − b‖² from x = 0: steps until ‖x − x*‖ ≤ tol·‖x*‖ (None if not within max_steps)."""
    x_star = np.linalg.solve(A, b)
    target = tol * np.linalg.norm(x_star)
    AtA, Atb = A.T @ A, A.T @ b
    x = np.zeros_like(b)
    for step in range(1, max_steps + 1):
        x = x - lr * (AtA @ x - Atb)
        if np.linalg.norm(x - x_star) <= target:
            return step
    return None


def gd_diverges(A: np.ndarray, b: np.ndarray, lr: float, steps: int) -> bool:
    """Whether GD on ½‖Ax − b‖² from x = 0 ends with a larger loss than it started with."""
    AtA, Atb = A.T @ A, A.T @ b
    x = np.zeros_like(b)
    start = 0.5 * float(b @ b)
    for _ in range(steps):
        x = x - lr * (AtA @ x - Atb)
        loss = 0.5 * float(np.sum((A @ x - b) ** 2))
        if not np.isfinite(loss) or loss > 1e6 * start:
            return True
    return loss > start


def max_stable_lr(A: np.ndarray, b: np.ndarray, steps: int = 2000, rel_tol: float = 1e-3) -> float:
    """Largest GD learning rate that does not diverge, by bisection in log space.

    Theory says 2/σ_max(A)²; the measurement brackets the boundary between 1e-3 and 1e3 times
    that value, so a wrong theory would show rather than be assumed.
    """
    guess = 2.0 / np.linalg.norm(A, 2) ** 2
    lo, hi = guess * 1e-3, guess * 1e3
    if gd_diverges(A, b, lo, steps) or not gd_diverges(A, b, hi, steps):
        raise RuntimeError("the stability boundary is not inside the bracket [1e-3, 1e3] × 2/σ_max²")
    while hi / lo > 1 + rel_tol:
        mid = np.sqrt(lo * hi)
        if gd_diverges(A, b, mid, steps):
            hi = mid
        else:
            lo = mid
    return float(lo)
