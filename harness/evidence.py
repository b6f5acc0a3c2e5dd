"""Deciding a claim from several seeds: holds, refuted, or inconclusive.

A stochastic claim is measured once per seed. Each condition of its threshold becomes one
:class:`Condition` over the seed-level values, and :func:`decide` combines them:

- a numeric condition (``ratio ≥ 10``) is *clearly met* when the whole 95% t-interval of the seed
  mean lies on the holding side of the threshold, *clearly failed* when it lies wholly on the
  other side, and *undecided* when it straddles the threshold. Ratios and scales are compared on
  a log10 axis (``log=True``), where their seed-to-seed spread is symmetric;
- a yes/no condition (``strictly increasing over layers 18, 54, 90``) is clearly met when it holds
  for every seed, clearly failed when it fails for every seed, and undecided when the seeds
  disagree.

The claim **holds** when every condition is clearly met, is **refuted** when at least one is
clearly failed, and is **inconclusive** otherwise: the evidence straddles the threshold.

With one value there is no interval: a single measurement is compared with the threshold as it
is. Only exact or self-averaging checks (theorem identities, random-matrix spectra pooled over
many draws) may decide so; the plugin turns a one-seed decision of any other claim into
``inconclusive``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import scipy.stats

HOLDS, REFUTED, INCONCLUSIVE = "holds", "refuted", "inconclusive"
MIN_SEEDS = 3  # a stochastic claim decides from at least this many seeds
CONFIDENCE = 0.95
OPERATORS = {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less}


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Seed mean and its two-sided Student-t interval; one value gives a point interval."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"need a non-empty list of seed-level values, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"seed-level values must be finite, got {x.tolist()}")
    mean = float(x.mean())
    if x.size == 1:
        return mean, mean, mean
    half = float(scipy.stats.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return mean, mean - half, mean + half


@dataclasses.dataclass(frozen=True)
class Condition:
    """One condition of a threshold, measured once per seed.

    ``op`` and ``threshold`` state the holding side (``values op threshold``); a yes/no condition
    has ``op=None`` and boolean values.
    """

    name: str
    values: tuple
    threshold: float | None = None
    op: str | None = None
    log: bool = False

    def __post_init__(self):
        if not self.values:
            raise ValueError(f"condition '{self.name}': no seed-level values")
        if self.op is None:
            if self.threshold is not None or not all(isinstance(v, (bool, np.bool_)) for v in self.values):
                raise ValueError(f"condition '{self.name}': a yes/no condition takes booleans and no threshold")
            return
        if self.op not in OPERATORS:
            raise ValueError(f"condition '{self.name}': unknown operator {self.op!r} (known: {', '.join(OPERATORS)})")
        if self.threshold is None or not math.isfinite(self.threshold):
            raise ValueError(f"condition '{self.name}': needs a finite threshold")
        if self.log and (self.threshold <= 0 or any(not v > 0 for v in self.values)):
            raise ValueError(f"condition '{self.name}': a log-scale condition needs positive values and threshold, "
                             f"got {list(self.values)} vs {self.threshold}")

    @classmethod
    def at_least(cls, name: str, values: Sequence[float], threshold: float, *, log: bool = False, strict: bool = False):
        return cls(name, tuple(float(v) for v in values), float(threshold), ">" if strict else ">=", log)

    @classmethod
    def at_most(cls, name: str, values: Sequence[float], threshold: float, *, log: bool = False, strict: bool = False):
        return cls(name, tuple(float(v) for v in values), float(threshold), "<" if strict else "<=", log)

    @classmethod
    def every_seed(cls, name: str, flags: Sequence[bool]):
        return cls(name, tuple(bool(f) for f in flags))

    def interval(self) -> tuple[float, float, float]:
        """(mean, low, high) of the seed values, back on the values' own scale."""
        if self.op is None:
            share = float(np.mean(self.values))
            return share, share, share
        values = np.log10(self.values) if self.log else np.asarray(self.values)
        mean, low, high = mean_interval(values)
        return (10 ** mean, 10 ** low, 10 ** high) if self.log else (mean, low, high)

    def state(self) -> str:
        if self.op is None:
            return HOLDS if all(self.values) else REFUTED if not any(self.values) else INCONCLUSIVE
        _, low, high = self.interval()
        ok = OPERATORS[self.op]
        if ok(low, self.threshold) and ok(high, self.threshold):
            return HOLDS
        if not ok(low, self.threshold) and not ok(high, self.threshold):
            return REFUTED
        return INCONCLUSIVE

    def describe(self) -> str:
        n = len(self.values)
        if self.op is None:
            return f"{self.name}: {sum(map(bool, self.values))}/{n} seeds"
        mean, low, high = self.interval()
        scale = "geometric mean" if self.log else "mean"
        if n == 1:
            return f"{self.name} {mean:.3g} (needs {self.op} {self.threshold:g})"
        return f"{self.name} {mean:.3g} ({scale} of {n} seeds, 95% [{low:.3g}, {high:.3g}]; needs {self.op} {self.threshold:g})"

    def as_record(self) -> dict:
        mean, low, high = self.interval()
        return {"values": list(self.values), "threshold": self.threshold, "op": self.op, "log": self.log,
                "mean": mean, "low": low, "high": high, "state": self.state()}


@dataclasses.dataclass(frozen=True)
class Decision:
    verdict: str
    conditions: tuple[Condition, ...]

    @property
    def summary(self) -> str:
        return "; ".join(f"{c.describe()} [{c.state()}]" if len(self.conditions) > 1 else c.describe()
                         for c in self.conditions)

    def as_record(self) -> dict:
        return {c.name: c.as_record() for c in self.conditions}


@dataclasses.dataclass
class Readout:
    """What a claim's readout function (harness.readouts) returns: the values to record, the
    conditions of the claim's threshold over the seeds, and a one-line summary of the values.
    The test records the values and hands the conditions to ``verdict.decide``."""

    values: dict
    conditions: tuple[Condition, ...]
    summary: str

    @property
    def decision(self) -> Decision:
        return decide(*self.conditions)

    @property
    def verdict(self) -> str:
        return self.decision.verdict


def decide(*conditions: Condition) -> Decision:
    """holds: every condition clearly met; refuted: one clearly failed; else inconclusive."""
    if not conditions:
        raise ValueError("decide() needs at least one condition")
    names = [c.name for c in conditions]
    if len(set(names)) != len(names):
        raise ValueError(f"condition names must be distinct, got {names}")
    states = [c.state() for c in conditions]
    verdict = REFUTED if REFUTED in states else HOLDS if all(s == HOLDS for s in states) else INCONCLUSIVE
    return Decision(verdict, tuple(conditions))
