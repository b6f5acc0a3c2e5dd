"""Random-matrix products (bjorck2018 §4, Theorem 1, App. D/E).

X = X_1 X_2 … X_M with independent N×N factors whose entries have mean 0 and variance σ²/N.
Theorem 1 (Liu, Song, Wang 2018) gives the limiting density of Eq. 5 on [0, (M+1)^{M+1}/M^M],
parametrized by φ ∈ (0, π/(M+1)):

    x(φ)   = sin((M+1)φ)^{M+1} / (sin φ · sin(Mφ)^M)
    ρ(x)   = 1/(π x) · sin((M+1)φ) / sin(Mφ) · sin φ

This is the Fuss–Catalan law: its moments are ∫x ρ = 1 and ∫x² ρ = M+1 for σ = 1, which the unit
tests check. Those are the moments of the *squared* singular values of X (E tr(XXᵀ)/N = 1), so the
law describes σ², not σ; claim B-RMT-DENSITY tests both readings against data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np
import scipy.linalg

ENTRY_DISTRIBUTIONS = ("gaussian", "uniform", "rademacher")


def edge(M: int) -> float:
    """Right end of the support of Eq. 5: (M+1)^{M+1} / M^M (→ (M+1)·e for large M)."""
    _check_factors(M)
    return float((M + 1) ** (M + 1) / M**M)


def _check_factors(M: int) -> None:
    if not isinstance(M, (int, np.integer)) or M < 1:
        raise ValueError(f"number of factors M must be a positive integer, got {M!r}")


def random_factor(
    rng: np.random.Generator, N: int, distribution: str = "gaussian", variance: float = 1.0
) -> np.ndarray:
    """An N×N matrix with iid entries of mean 0 and variance ``variance / N``."""
    if N < 1:
        raise ValueError(f"matrix size N must be positive, got {N}")
    if variance <= 0:
        raise ValueError(f"variance must be positive, got {variance}")
    scale = np.sqrt(variance / N)
    if distribution == "gaussian":
        z = rng.standard_normal((N, N))
    elif distribution == "uniform":
        z = rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), (N, N))  # unit variance
    elif distribution == "rademacher":
        z = rng.choice(np.array([-1.0, 1.0]), (N, N))
    else:
        raise ValueError(
            f"unknown entry distribution '{distribution}' (known: {', '.join(ENTRY_DISTRIBUTIONS)})"
        )
    return z * scale


@dataclasses.dataclass(frozen=True)
class ProductSpectrum:
    """Spectrum of one product of M random factors."""

    M: int
    N: int
    singular_values: np.ndarray  # descending
    kappa: float | None  # ‖X‖₂ ‖X⁻¹‖₂, see product_spectra; None when not computed

    @property
    def sigma_max(self) -> float:
        return float(self.singular_values[0])


def product_spectra(
    N: int,
    factors: Iterable[int],
    seed: int,
    distribution: str = "gaussian",
    variance: float = 1.0,
    kappa: bool = True,
) -> dict[int, ProductSpectrum]:
    """Spectra of X_1…X_M for each M in ``factors``, all prefixes of one chain of factors.

    The condition number is computed as κ = ‖X‖₂·‖X⁻¹‖₂ with X⁻¹ = X_M⁻¹ … X_1⁻¹: both are
    largest singular values, which floating point gets to relative precision, whereas σ_min read
    off an SVD of X is floored near ε·σ_max once κ passes ~1e13 (products of a few factors at
    N = 1000 get there). The inverses cost as much as the spectra; ``kappa=False`` skips them (κ is
    then None) for callers that read only the singular values. The factors, hence the singular
    values, are the same either way.
    """
    wanted = sorted(set(factors))
    if not wanted:
        raise ValueError("factors must name at least one number of factors")
    for M in wanted:
        _check_factors(M)
    rng = np.random.default_rng(seed)
    product = inverse = None
    out: dict[int, ProductSpectrum] = {}
    for M in range(1, wanted[-1] + 1):
        factor = random_factor(rng, N, distribution, variance)
        product = factor if product is None else product @ factor
        if kappa:
            factor_inv = np.linalg.inv(factor)
            inverse = factor_inv if inverse is None else factor_inv @ inverse
        if M in wanted:
            s = scipy.linalg.svdvals(product)
            k = float(s[0] * scipy.linalg.svdvals(inverse)[0]) if kappa else None
            out[M] = ProductSpectrum(M=M, N=N, singular_values=s, kappa=k)
    return out


class FussCatalan:
    """Eq. 5 for M factors, tabulated on a fine φ grid: density, CDF and moments."""

    def __init__(self, M: int, grid: int = 200_001):
        _check_factors(M)
        self.M = M
        # midpoint rule in φ over (0, π/(M+1)): the φ-space density ρ(x(φ))·|x'(φ)| is bounded there
        edges = np.linspace(0.0, np.pi / (M + 1), grid)
        mids = 0.5 * (edges[1:] + edges[:-1])
        cell_mass = self.density_at_phi(mids) * np.abs(self.dx_dphi(mids)) * np.diff(edges)
        total = cell_mass.sum()
        # x decreases in φ, from edge(M) at φ = 0 to 0 at φ = π/(M+1): CDF(x(φ)) = mass of (φ, π/(M+1))
        x = np.concatenate([[edge(M)], self.x_of_phi(edges[1:-1]), [0.0]])
        cdf = np.concatenate([[0.0], np.cumsum(cell_mass[::-1])])[::-1] / total
        self._x, self._cdf = x[::-1], cdf[::-1]
        self.mass = float(total)
        self.upper = edge(M)

    def x_of_phi(self, phi: np.ndarray) -> np.ndarray:
        M = self.M
        return np.sin((M + 1) * phi) ** (M + 1) / (np.sin(phi) * np.sin(M * phi) ** M)

    def dx_dphi(self, phi: np.ndarray) -> np.ndarray:
        """Analytic derivative: d ln x / dφ = (M+1)² cot((M+1)φ) − cot φ − M² cot(Mφ)."""
        M = self.M
        dlog = (M + 1) ** 2 / np.tan((M + 1) * phi) - 1 / np.tan(phi) - M**2 / np.tan(M * phi)
        return self.x_of_phi(phi) * dlog

    def density_at_phi(self, phi: np.ndarray) -> np.ndarray:
        M = self.M
        return np.sin((M + 1) * phi) / (np.pi * self.x_of_phi(phi) * np.sin(M * phi)) * np.sin(phi)

    def pdf(self, x: np.ndarray) -> np.ndarray:
        """ρ(x) on a grid of x values (0 outside the support)."""
        x = np.asarray(x, dtype=float)
        phi_grid = np.linspace(0.0, np.pi / (self.M + 1), 200_001)[1:-1]
        xs = self.x_of_phi(phi_grid)[::-1]  # increasing
        phis = phi_grid[::-1]
        inside = (x > 0) & (x < self.upper)
        out = np.zeros_like(x)
        out[inside] = self.density_at_phi(np.interp(x[inside], xs, phis))
        return out

    def cdf(self, x: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(x, dtype=float), self._x, self._cdf, left=0.0, right=1.0)

    def moment(self, k: int) -> float:
        """∫ x^k ρ(x) dx from the tabulated CDF (Stieltjes sum)."""
        mid = 0.5 * (self._x[1:] + self._x[:-1])
        return float(np.sum(mid**k * np.diff(self._cdf)))


def ks_distance(samples: np.ndarray, cdf) -> float:
    """Kolmogorov–Smirnov distance sup |F_n − F| between samples and a CDF callable."""
    import scipy.stats

    return float(scipy.stats.kstest(np.asarray(samples, dtype=float), cdf).statistic)


def tail_ratio(singular_values: np.ndarray, q: float = 0.99) -> float:
    """Heavy-tail statistic: the q-quantile of the singular values over their median."""
    if not 0.5 < q < 1.0:
        raise ValueError(f"quantile q must lie in (0.5, 1), got {q}")
    s = np.asarray(singular_values, dtype=float)
    return float(np.quantile(s, q) / np.median(s))
