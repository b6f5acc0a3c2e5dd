"""Linear-network probes (Proposition 1, GD on least squares) against direct references."""

from __future__ import annotations

import numpy as np
import pytest

from harness.probes import linear


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    return rng.standard_normal((5, 3)), rng.standard_normal((4, 12)), rng.standard_normal((5, 12)), rng


def test_loss_identity_and_optimum(problem):
    Abar, x, y, rng = problem
    dec = linear.decouple(Abar, x, y)
    A1 = rng.standard_normal((3, 4))
    assert dec.loss(Abar, dec.to_columns(A1)) == pytest.approx(linear.loss_direct(Abar, A1, x, y), rel=1e-12)
    assert np.allclose(dec.from_columns(dec.to_columns(A1)), A1)
    assert np.allclose(linear.solve_direct(Abar, x, y), linear.solve_decoupled(Abar, dec))


def test_optimum_has_zero_gradient(problem):
    Abar, x, y, _ = problem
    A1 = linear.solve_direct(Abar, x, y)
    grad = 2 * Abar.T @ (Abar @ A1 @ x - y) @ x.T
    assert np.abs(grad).max() < 1e-10


def test_gd_trajectories_coincide(problem):
    Abar, x, y, rng = problem
    dec = linear.decouple(Abar, x, y)
    A1 = rng.standard_normal((3, 4))
    a = linear.gd_direct(Abar, x, y, A1, 1e-3, 20)
    b = linear.gd_decoupled(Abar, dec, A1, 1e-3, 20)
    assert np.allclose(a, b, rtol=1e-12) and a[-1] < a[0]


def test_max_stable_lr_is_two_over_sigma_max_squared():
    rng = np.random.default_rng(1)
    A = linear.matrix_with_condition(rng, 10, 5.0) * 3
    assert linear.max_stable_lr(A, rng.standard_normal(10)) == pytest.approx(2 / np.linalg.norm(A, 2) ** 2, rel=0.02)


def test_matrix_with_condition_and_iterations():
    rng = np.random.default_rng(2)
    A = linear.matrix_with_condition(rng, 8, 10.0)
    assert np.linalg.cond(A) == pytest.approx(10.0)
    b = rng.standard_normal(8)
    slow = linear.gd_iterations_to_tolerance(A, b, 1.0, 1e-6, 10**5)
    assert slow is not None and linear.gd_iterations_to_tolerance(A, b, 1.0, 1e-6, 3) is None


@pytest.mark.parametrize(
    "shapes, message",
    [(((5, 3), (4, 4), (5, 4)), "more samples than features"), (((5, 3), (4, 12), (6, 12)), "do not chain")],
)
def test_bad_problems(shapes, message):
    a, x, y = (np.ones(s) for s in shapes)
    with pytest.raises(ValueError, match=message):
        linear.decouple(a, np.random.default_rng(0).standard_normal(x.shape), y)


def test_rank_deficient_x_is_rejected():
    x = np.ones((3, 10))
    with pytest.raises(ValueError, match="full rank"):
        linear.decouple(np.ones((2, 2)), x, np.ones((2, 10)))
    with pytest.raises(ValueError, match="at least 1"):
        linear.matrix_with_condition(np.random.default_rng(), 3, 0.5)
