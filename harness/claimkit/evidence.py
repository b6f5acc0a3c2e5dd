"""Deciding a claim from seeds: holds, refuted or inconclusive, with a stated error rate.

A stochastic claim is measured once per seed. Each condition of its threshold becomes one
:class:`Condition` over the seed-level values, and :func:`decide` combines them. The seeds come in
*looks* (:class:`Design`): the claim is judged on its first ``n₀ ≥ 3`` seeds and, while a condition
is undecided, on more seeds at the next look, up to a cap. Whatever the look at which a claim
stops, **each condition decides wrongly with probability at most 5%** (:data:`ALPHA`): it says
``holds`` when the truth lies on the refuted side of the threshold or at it, or ``refuted`` when
the truth lies on the holding side or at it, with probability ≤ 5% over all looks together.

How each kind of condition keeps that rate:

- a **numeric** condition (``ratio ≥ 10``) decides on the Student-t interval of the seed mean (of
  log10 values for ratios and scales, ``log=True``, where their spread is symmetric): clearly met
  when the whole interval lies on the holding side, clearly failed when it lies wholly on the other
  side, undecided when it straddles. When every seed gives the very same value (a capped or
  discrete measure at its floor, such as no one-signed channel at all), a t-interval of zero width
  would claim a certainty it does not have: such a condition decides like a yes/no one, on the
  share of seeds on the holding side (below). The error rate is *spent* over the looks: the interval at
  look k has two-sided level ``α_k`` (:meth:`Design.spend`: half of the 5% at the first look, the
  rest in equal parts at the later ones), and ``Σ α_k = 5%``. The intervals at all looks are then
  simultaneously right with probability ≥ 95% (a union bound), so the guarantee holds for any rule
  of stopping, and a condition may be judged again at a later look. It assumes the seed-level
  values (or their logs) are normal; ``tests/test_evidence_error_rates.py`` measures the rate on
  normal and log-normal values and on skewed ones;
- a **yes/no** condition that no continuous margin can replace (a run diverged, an LR on a grid was
  achievable) decides on the share of seeds that show it, against one half: the claim reads "a
  typical seed shows it" (the paper reports one run). It holds when an exact sequential sign test
  rejects "at most half the seeds show it", is refuted when the test rejects "at least half", with
  boundaries (:meth:`Design.sign_boundaries`) computed exactly under p = ½ so that each side's
  error, summed over the looks, stays within half the spent rate. So 3/3 decides nothing
  (probability ⅛ under p = ½); at looks 3, 6, 10 it takes 6/6, or 9 of 10;
- an **exact** check (a theorem's identity in float64, a spectrum pooled over thousands of draws:
  claims the YAML marks ``seed_exempt``) is one measurement compared with its tolerance.

The claim **holds** when every condition is clearly met, is **refuted** when at least one is
clearly failed, and is **inconclusive** otherwise. An undecided condition still says which way it
leans (:meth:`Condition.lean`), whether every seed lies on that side, and about how many seeds at
the same spread would decide it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence

import numpy as np
import scipy.stats

from harness.claimkit.vocabulary import HOLDS, INCONCLUSIVE, REFUTED  # noqa: E402,F401 - the verdicts a decision reaches
MIN_SEEDS = 3  # a stochastic claim decides from at least this many seeds
ALPHA = 0.05  # the probability that a condition decides wrongly, over all looks together
CONFIDENCE = 1 - ALPHA
OPERATORS = {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less}
NUMERIC, SHARE, EXACT = "numeric", "share", "exact"
LEAN_SEARCH_LIMIT = 10_000  # seeds beyond which "how many would decide" is not worth saying


@dataclasses.dataclass(frozen=True)
class Design:
    """The looks of a sequential decision: the number of seeds at each look (``looks``, strictly
    increasing, the last one the cap) and the error each look spends (:meth:`spend`)."""

    looks: tuple[int, ...]

    def __post_init__(self):
        looks = tuple(self.looks)
        object.__setattr__(self, "looks", looks)
        if not looks or any(not isinstance(n, int) or n < 1 for n in looks) or list(looks) != sorted(set(looks)):
            raise ValueError(f"looks must be strictly increasing seed counts ≥ 1, got {list(looks)}")

    @classmethod
    def fixed(cls, n: int) -> Design:
        """One look at ``n`` seeds: the whole error rate is spent there (a fixed-sample test)."""
        return cls((n,))

    @property
    def cap(self) -> int:
        return self.looks[-1]

    def spend(self) -> tuple[float, ...]:
        """The two-sided error rate spent at each look: α/2 at the first, α/2 split equally over the
        later ones (all of α when there is one look). Front-loaded because most claims are decided
        by large effects at the first look, where the t-interval of three seeds is widest."""
        if len(self.looks) == 1:
            return (ALPHA,)
        later = ALPHA / 2 / (len(self.looks) - 1)
        return (ALPHA / 2, *([later] * (len(self.looks) - 1)))

    def index(self, n: int) -> int:
        """The look at which ``n`` seeds are judged; ``n`` must be one of the looks."""
        if n not in self.looks:
            raise ValueError(f"{n} seed-level values, but decisions are made at {list(self.looks)} seeds only")
        return self.looks.index(n)

    def alpha_at(self, n: int) -> float:
        """The two-sided level of the interval at the look with ``n`` seeds."""
        return self.spend()[self.index(n)]

    def sign_boundaries(self) -> tuple[int | None, ...]:
        """Per look, the number of seeds out of ``looks[k]`` that must show a yes/no outcome for it
        to be decided (``None``: no count decides at that look); see :func:`sign_boundaries`."""
        return sign_boundaries(self.looks, self.spend())

    def next_look(self, n: int) -> int | None:
        """The seed count of the look after the one with ``n`` seeds (None at the cap)."""
        k = self.index(n)
        return self.looks[k + 1] if k + 1 < len(self.looks) else None


@dataclasses.dataclass(frozen=True)
class SeedPlan:
    """The seeds of a stochastic claim: ``sequence`` lists every seed up to the cap in the order
    they are used (the profile's ``seeds``, then the next integers), ``design`` the looks."""

    sequence: tuple[int, ...]
    design: Design

    def __post_init__(self):
        if len(self.sequence) != self.design.cap or len(set(self.sequence)) != len(self.sequence):
            raise ValueError(f"a seed plan needs {self.design.cap} distinct seeds for looks {list(self.design.looks)}, "
                             f"got {list(self.sequence)}")

    @classmethod
    def extend(cls, seeds: Sequence[int], looks: Sequence[int]) -> SeedPlan:
        """``seeds`` (the first look's), then the integers after the largest of them, up to the cap."""
        seeds = [int(s) for s in seeds]
        design = Design(tuple(looks))
        if len(seeds) != design.looks[0]:
            raise ValueError(f"the first look takes {design.looks[0]} seeds, but the profile lists {len(seeds)}: {seeds}")
        more = range(max(seeds) + 1, max(seeds) + 1 + design.cap - len(seeds))
        return cls(tuple(seeds) + tuple(more), design)

    def seeds_at(self, look: int) -> list[int]:
        return list(self.sequence[: self.design.looks[look]])


@functools.cache
def sign_boundaries(looks: tuple[int, ...], spend: tuple[float, ...]) -> tuple[int | None, ...]:
    """Boundaries of the exact sequential sign test: at look k a yes/no condition holds when at
    least ``c_k`` of its ``n_k`` seeds show it (refuted when at least ``c_k`` do not). ``c_k`` is the
    smallest count such that, under p = ½ (each seed shows it with probability one half,
    independently), the probability of reaching ``c_k`` at some look up to k stays within half the
    error spent up to look k. Computed exactly by dynamic programming over the seed counts; p > ½
    only makes crossing the refuting boundary less likely (and the reverse), so each side's error
    is at most α/2 whatever p is on the other side."""
    budget, crossed, previous = 0.0, 0.0, 0
    alive = np.zeros(1)  # probability of each count of "yes" so far among paths that never crossed
    alive[0] = 1.0
    out = []
    for n, alpha in zip(looks, spend):
        step = scipy.stats.binom.pmf(np.arange(n - previous + 1), n - previous, 0.5)
        alive = np.convolve(alive, step)
        budget += alpha / 2
        tails = np.cumsum(alive[::-1])[::-1]  # tails[c] = P(count ≥ c, never crossed before)
        feasible = [c for c in range(n // 2 + 1, n + 1) if crossed + tails[c] <= budget * (1 + 1e-12)]
        c = feasible[0] if feasible else None
        if c is not None:
            crossed += tails[c]
            alive[c:] = 0.0
        out.append(c)
        previous = n
    return tuple(out)


@functools.lru_cache(maxsize=4096)
def t_quantile(probability: float, df: int) -> float:
    """Student-t quantile (memoized: the same few levels and seed counts come up again and again)."""
    return float(scipy.stats.t.ppf(probability, df))


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
    half = t_quantile(0.5 + confidence / 2, x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, mean - half, mean + half


def _pct(confidence: float) -> str:
    return f"{100 * confidence:.4g}%"


@dataclasses.dataclass(frozen=True)
class Condition:
    """One condition of a threshold, measured once per seed (or once, for an exact check).

    ``kind`` is :data:`NUMERIC` (``values op threshold`` on the seed mean's interval), :data:`SHARE`
    (booleans: the share of seeds showing it, against one half) or :data:`EXACT` (one boolean of
    a deterministic check). Build them with :meth:`at_least`, :meth:`at_most`, :meth:`most_seeds`
    and :meth:`exact`.
    """

    name: str
    values: tuple
    threshold: float | None = None
    op: str | None = None
    log: bool = False
    kind: str = NUMERIC

    def __post_init__(self):
        if not self.values:
            raise ValueError(f"condition '{self.name}': no seed-level values")
        if self.kind in (SHARE, EXACT):
            if self.op is not None or self.threshold is not None or not all(isinstance(v, (bool, np.bool_)) for v in self.values):
                raise ValueError(f"condition '{self.name}': a yes/no condition takes booleans and no threshold")
            if self.kind == EXACT and len(self.values) != 1:
                raise ValueError(f"condition '{self.name}': an exact check is one measurement, got {len(self.values)}")
            return
        if self.kind != NUMERIC:
            raise ValueError(f"condition '{self.name}': unknown kind {self.kind!r} (known: {NUMERIC}, {SHARE}, {EXACT})")
        if self.op not in OPERATORS:
            raise ValueError(f"condition '{self.name}': unknown operator {self.op!r} (known: {', '.join(OPERATORS)})")
        if self.threshold is None or not math.isfinite(self.threshold):
            raise ValueError(f"condition '{self.name}': needs a finite threshold")
        if not all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in self.values):
            raise ValueError(f"condition '{self.name}': seed-level values must be numbers, got {list(self.values)}")
        if self.log and (self.threshold <= 0 or any(v <= 0 for v in self.values)):
            raise ValueError(f"condition '{self.name}': a log-scale condition needs positive values and threshold, "
                             f"got {list(self.values)} vs {self.threshold}")

    # --- builders -------------------------------------------------------------------------------

    @classmethod
    def at_least(cls, name: str, values: Sequence[float], threshold: float, *, log: bool = False, strict: bool = False):
        return cls(name, tuple(float(v) for v in values), float(threshold), ">" if strict else ">=", log)

    @classmethod
    def at_most(cls, name: str, values: Sequence[float], threshold: float, *, log: bool = False, strict: bool = False):
        return cls(name, tuple(float(v) for v in values), float(threshold), "<" if strict else "<=", log)

    @classmethod
    def most_seeds(cls, name: str, flags: Sequence[bool]):
        """A yes/no outcome per seed with no continuous margin behind it (a run diverged, an LR on
        a grid was achievable): holds when a typical seed shows it (the sequential sign test against
        one half), refuted when a typical seed does not."""
        return cls(name, tuple(bool(f) for f in flags), kind=SHARE)

    @classmethod
    def exact(cls, name: str, ok: bool):
        """A deterministic check (an identity in float64, a pooled spectrum): one yes/no."""
        return cls(name, (bool(ok),), kind=EXACT)

    # --- evaluation -----------------------------------------------------------------------------

    @property
    def n(self) -> int:
        return len(self.values)

    def _design(self, design: Design | None) -> Design:
        return design if design is not None else Design.fixed(self.n)

    def confidence(self, design: Design | None = None) -> float:
        """The two-sided confidence of this condition's interval at its look."""
        return 1 - self._design(design).alpha_at(self.n)

    def interval(self, design: Design | None = None) -> tuple[float, float, float]:
        """(mean, low, high) of the seed values at this look, back on the values' own scale; for a
        yes/no condition the share of seeds showing it (a point)."""
        if self.kind != NUMERIC:
            share = float(np.mean(self.values))
            return share, share, share
        values = np.log10(self.values) if self.log else np.asarray(self.values)
        mean, low, high = mean_interval(values, self.confidence(design))
        return (10 ** mean, 10 ** low, 10 ** high) if self.log else (mean, low, high)

    @property
    def tied(self) -> bool:
        """Every seed gave the very same value (a capped or discrete measure, at its floor or cap)."""
        return self.kind == NUMERIC and self.n > 1 and len(set(self.values)) == 1

    def as_signs(self) -> Condition:
        """The yes/no per seed of a numeric condition: is the seed's value on the holding side."""
        return Condition.most_seeds(self.name, [bool(OPERATORS[self.op](v, self.threshold)) for v in self.values])

    def boundary(self, design: Design | None = None) -> int | None:
        """A yes/no condition's deciding count at its look (None: no count decides there)."""
        d = self._design(design)
        return d.sign_boundaries()[d.index(self.n)]

    def state(self, design: Design | None = None) -> str:
        """holds / refuted / inconclusive at this look; ``design`` is the claim's sequence of looks
        (default: a single look at this many seeds)."""
        if self.kind == EXACT:
            return HOLDS if self.values[0] else REFUTED
        if self.kind == SHARE:
            c, yes = self.boundary(design), sum(map(bool, self.values))
            if c is not None and yes >= c:
                return HOLDS
            if c is not None and self.n - yes >= c:
                return REFUTED
            return INCONCLUSIVE
        if self.tied:
            return self.as_signs().state(design)
        _, low, high = self.interval(design)
        ok = OPERATORS[self.op]
        if ok(low, self.threshold) and ok(high, self.threshold):
            return HOLDS
        if not ok(low, self.threshold) and not ok(high, self.threshold):
            return REFUTED
        return INCONCLUSIVE

    def lean(self, design: Design | None = None) -> dict | None:
        """For a condition undecided at this look: the side its evidence leans to (``holds`` /
        ``refuted``; None on the threshold), whether every seed lies on that side, and about how
        many seeds at the same spread would decide it at the error rate of the design's last look
        (``seeds_to_decide``; None when more than :data:`LEAN_SEARCH_LIMIT`). None when decided."""
        if self.kind == EXACT or self.state(design) != INCONCLUSIVE:
            return None
        if self.tied:
            return self.as_signs().lean(design)
        d = self._design(design)
        if self.kind == SHARE:
            yes = sum(map(bool, self.values))
            side = HOLDS if 2 * yes > self.n else REFUTED if 2 * yes < self.n else None
            unanimous = yes in (0, self.n)
            # seeds all on one side decide once (½)^n ≤ α_last / 2
            need = math.ceil(math.log2(2 / d.spend()[-1])) if unanimous else None
            return {"side": side, "all_seeds": unanimous, "seeds_to_decide": need}
        values = np.log10(self.values) if self.log else np.asarray(self.values, dtype=float)
        target = math.log10(self.threshold) if self.log else self.threshold
        mean, sd = float(values.mean()), float(values.std(ddof=1)) if self.n > 1 else 0.0
        holding = bool(OPERATORS[self.op](mean, target))
        side = None if mean == target else HOLDS if holding else REFUTED
        on_side = [bool(OPERATORS[self.op](v, target)) == holding and v != target for v in values]
        need = None
        if side is not None and sd > 0:
            level, gap = 1 - d.spend()[-1] / 2, abs(mean - target)

            def decides(m: int) -> bool:  # the half-width t·sd/√m falls as m grows: bisect for the first m
                return t_quantile(level, m - 1) * sd / math.sqrt(m) < gap

            low, high = max(2, self.n), LEAN_SEARCH_LIMIT
            if decides(high):
                while low < high:
                    mid = (low + high) // 2
                    low, high = (low, mid) if decides(mid) else (mid + 1, high)
                need = low
        return {"side": side, "all_seeds": all(on_side), "seeds_to_decide": need}

    def describe(self, design: Design | None = None) -> str:
        n = self.n
        if self.kind == EXACT:
            return f"{self.name}: {'yes' if self.values[0] else 'no'}"
        if self.kind == SHARE:
            c = self.boundary(design)
            rule = f"decides at {c} of {n}" if c is not None else f"no count of {n} decides"
            return f"{self.name}: {sum(map(bool, self.values))}/{n} seeds ({rule})"
        mean, low, high = self.interval(design)
        scale = "geometric mean" if self.log else "mean"
        if self.tied:
            c = self.boundary(design)
            rule = f"decides at {c} of {n}" if c is not None else f"no count of {n} decides"
            return (f"{self.name} {mean:.3g} on every one of {n} seeds (no spread: decided by the share of seeds, {rule}; "
                    f"needs {self.op} {self.threshold:g})")
        if n == 1:
            return f"{self.name} {mean:.3g} (needs {self.op} {self.threshold:g})"
        return (f"{self.name} {mean:.3g} ({scale} of {n} seeds, {_pct(self.confidence(design))} [{low:.3g}, {high:.3g}]; "
                f"needs {self.op} {self.threshold:g})")

    def as_record(self, design: Design | None = None) -> dict:
        mean, low, high = self.interval(design)
        record = {"kind": self.kind, "values": list(self.values), "threshold": self.threshold, "op": self.op, "log": self.log,
                  "n": self.n, "mean": mean, "low": low, "high": high, "state": self.state(design)}
        if self.kind == NUMERIC:
            record["confidence"] = self.confidence(design)
        if self.kind == SHARE:
            record["boundary"] = self.boundary(design)
        lean = self.lean(design)
        if lean is not None:
            record["lean"] = lean
        return record


@dataclasses.dataclass(frozen=True)
class Decision:
    verdict: str
    conditions: tuple[Condition, ...]
    design: Design | None = None

    @property
    def summary(self) -> str:
        return "; ".join(f"{c.describe(self.design)} [{c.state(self.design)}]" if len(self.conditions) > 1
                         else c.describe(self.design) for c in self.conditions)

    def as_record(self) -> dict:
        return {c.name: c.as_record(self.design) for c in self.conditions}

    def undecided(self) -> list[Condition]:
        return [c for c in self.conditions if c.state(self.design) == INCONCLUSIVE]

    def lean(self) -> str | None:
        """A one-line account of an inconclusive decision's evidence: which way each undecided
        condition leans, with every seed on that side or not, and the seeds that would decide it.
        None unless some condition leans."""
        parts = []
        for c in self.undecided():
            lean = c.lean(self.design)
            if not lean or lean["side"] is None:
                continue
            seeds = "every seed" if lean["all_seeds"] else "the seed mean"
            need = (f"; ≈ {lean['seeds_to_decide']} seeds at this spread would decide it" if lean["seeds_to_decide"]
                    else "")
            parts.append(f"'{c.name}' leans {lean['side']} ({seeds} on that side{need})")
        return "; ".join(parts) or None


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
        """The decision of a single look at this many seeds (what a readout's unit test checks)."""
        return decide(*self.conditions)

    @property
    def verdict(self) -> str:
        return self.decision.verdict


def decide(*conditions: Condition, design: Design | None = None) -> Decision:
    """holds: every condition clearly met; refuted: one clearly failed; else inconclusive. Each
    condition is judged at the look of ``design`` its number of values names (default: one look)."""
    if not conditions:
        raise ValueError("decide() needs at least one condition")
    names = [c.name for c in conditions]
    if len(set(names)) != len(names):
        raise ValueError(f"condition names must be distinct, got {names}")
    states = [c.state(design) for c in conditions]
    verdict = REFUTED if REFUTED in states else HOLDS if all(s == HOLDS for s in states) else INCONCLUSIVE
    return Decision(verdict, tuple(conditions), design)
