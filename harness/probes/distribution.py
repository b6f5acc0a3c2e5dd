"""Distributional stability of layer activations over training (santurkar2018 Figs. 1c, 2, 7, 14).

The paper samples a few activations (units) of a layer and follows the distribution of each
over the batch (and over height and width after a conv, App. A.2.1) through training: Fig. 7
plots the change of its mean and variance between successive steps. Here:

- :class:`ActivationSampler` hooks one module and, inside ``capture()`` (the training forward of
  a step), records for fixed channels the mean, variance and a few quantiles of that module's
  output. Outside ``capture()`` (probe forwards, evaluation) it records nothing, so probes do not
  mix into the record; the hook itself changes nothing.
- :func:`step_changes` turns the record into the change between successive records,
  |Δμ|/σ + |Δσ²|/σ² (relative to the earlier step's σ), averaged over the sampled units.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from typing import ContextManager

import numpy as np
import torch
from torch import nn

from harness.train import Probe

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def unit_statistics(x: torch.Tensor, units: Sequence[int], quantiles: Sequence[float] = QUANTILES) -> dict[str, list]:
    """Mean, (biased) variance and quantiles of each unit (channel, dim 1) over every other dim."""
    if x.dim() < 2:
        raise ValueError(f"need activations of shape (batch, channels, ...), got {tuple(x.shape)}")
    bad = [u for u in units if not 0 <= u < x.shape[1]]
    if bad:
        raise ValueError(f"units {bad} are not among the {x.shape[1]} channels")
    values = x.detach().transpose(0, 1)[list(units)].reshape(len(units), -1).double()
    return {
        "mean": values.mean(dim=1).tolist(),
        "var": values.var(dim=1, unbiased=False).tolist(),
        "quantiles": torch.quantile(values, torch.tensor(quantiles, dtype=values.dtype), dim=1).T.tolist(),
    }


@dataclasses.dataclass
class UnitRecord:
    """Per recorded step: mean / var per unit, and per unit the quantiles ``QUANTILES``."""

    units: list[int]
    steps: list[int] = dataclasses.field(default_factory=list)
    mean: list[list[float]] = dataclasses.field(default_factory=list)
    var: list[list[float]] = dataclasses.field(default_factory=list)
    quantiles: list[list[list[float]]] = dataclasses.field(default_factory=list)


class ActivationSampler(Probe):
    """Records the output distribution of fixed units of ``module`` at every captured forward; as a
    training probe, at every training forward (not the forwards of other probes)."""

    def __init__(self, module: nn.Module, units: Sequence[int]):
        if not units:
            raise ValueError("sample at least one unit")
        self.record = UnitRecord(units=list(units))
        self._step: int | None = None
        # statistics are taken inside the hook, before an in-place ReLU can overwrite the output
        self._handle = module.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, inputs, output: torch.Tensor) -> None:
        if self._step is None:
            return
        stats = unit_statistics(output, self.record.units)
        self.record.steps.append(self._step)
        self.record.mean.append(stats["mean"])
        self.record.var.append(stats["var"])
        self.record.quantiles.append(stats["quantiles"])
        self._step = None  # one record per captured step, even if the module runs twice

    @contextlib.contextmanager
    def capture(self, step: int) -> Iterator[None]:
        self._step = step
        try:
            yield
        finally:
            self._step = None

    def watch(self, step: int) -> ContextManager:
        return self.capture(step)

    def remove(self) -> None:
        self._handle.remove()

    close = remove


def step_changes(mean: Sequence[Sequence[float]], var: Sequence[Sequence[float]]) -> list[float]:
    """For each pair of successive records: mean over units of |Δμ|/σ + |Δσ²|/σ² (earlier step's σ)."""
    m, v = np.asarray(mean, dtype=float), np.asarray(var, dtype=float)
    if m.shape != v.shape or m.ndim != 2 or m.shape[0] < 2:
        raise ValueError(f"need matching (steps ≥ 2, units) arrays of means and variances, got {m.shape} and {v.shape}")
    if np.any(v[:-1] <= 0) or not np.all(np.isfinite(v)):
        raise ValueError("variances must be positive and finite to measure a relative change")
    return list(np.mean(np.abs(np.diff(m, axis=0)) / np.sqrt(v[:-1]) + np.abs(np.diff(v, axis=0)) / v[:-1], axis=1))
