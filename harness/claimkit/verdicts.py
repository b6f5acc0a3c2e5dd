"""The API a claim test calls to record what it measured and state its verdict.

    def test_kappa_grows(verdict, settings):
        kappa = ...
        verdict.measure(kappa_mean=kappa)                 # plain numbers, lists or strings
        verdict.add_figure("κ vs M (Fig. 11)", svg)       # made by harness.claimkit.report.figures
        verdict.conclude(holds=..., summary="κ(1) = 2e3 → κ(8) = 4e9")

A stochastic claim measures once per seed and decides on the seed-level evidence
(harness.claimkit.evidence)::

        verdict.seeds = seeds
        verdict.decide(Condition.at_least("none/BN |grad|", ratios, 10, log=True))

``conclude`` and ``decide`` record the verdict and raise :class:`ClaimRefuted` (or
:class:`ClaimInconclusive`) when the claim does not hold, so such a verdict fails its test unless
the expected-verdicts file lists it (strict xfail).

A stochastic claim runs look by look (:meth:`Verdict.run`, called by the pytest plugin): its
test reads its seeds from ``verdict.seeds`` (never from the settings), and when ``decide`` finds a
condition undecided while the claim's :class:`SeedPlan` has another look, the test runs again on
more seeds (:class:`MoreSeeds`; the runs of the seeds it had are served from the labs' memory and
the model cache). The record keeps every look, the seeds used against the cap, and why the claim
stopped.

A claim decides from at least ``MIN_SEEDS`` seeds unless its YAML exempts it (``seed_exempt``:
exact identities, spectra pooled over many draws). A decision from fewer seeds is recorded as
``inconclusive``, with what the seeds it had would have said (``tentative``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from harness.claimkit.evidence import HOLDS, INCONCLUSIVE, MIN_SEEDS, REFUTED, Condition, Design, Readout, SeedPlan, decide
from harness.claimkit.registry import Claim

from harness.claimkit.vocabulary import ERROR, NOT_RUN, VERDICTS  # noqa: E402,F401 - conclude() gives the first three

# why a claim stopped adding seeds
STOP_DECIDED, STOP_CAP, STOP_PRECONDITION, STOP_UNJUDGED, STOP_EXEMPT = (
    "decided", "cap reached", "precondition failed", "cannot be judged", "seed-exempt")


class MoreSeeds(Exception):
    """Raised by :meth:`Verdict.decide` when a condition is undecided and the claim's seed plan has
    another look: :meth:`Verdict.run` then runs the claim again on the next look's seeds. Control
    flow only; it never escapes ``Verdict.run``."""


class ClaimRefuted(pytest.fail.Exception):
    """The measurement does not meet the claim's threshold.

    A ``pytest.fail`` outcome without a traceback: the message (claim, profile, what was measured)
    is the whole report. Formatting a traceback would also render the test's arguments, the shared
    run records, with ``repr``: that took 15 s of a warm fast run for its 39 expected refutations.
    """

    def __init__(self, message: str):
        super().__init__(message, pytrace=False)


class ClaimInconclusive(pytest.fail.Exception):
    """The evidence straddles the threshold, or the profile cannot decide the claim.

    Like :class:`ClaimRefuted`, an unexpected one fails its test, and an expected one is a strict
    xfail that fails the run when the claim turns decided.
    """

    def __init__(self, message: str):
        super().__init__(message, pytrace=False)


def to_plain(value: Any) -> Any:
    """Measurements as JSON-ready data: numpy/torch scalars and arrays become floats and lists."""
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return [to_plain(v) for v in value.tolist()] if value.ndim else to_plain(value.item())
    if isinstance(value, np.generic):
        return to_plain(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)  # JSON has no inf/nan
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [to_plain(v) for v in value]
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    raise TypeError(f"cannot record a measurement of type {type(value).__name__}: {value!r}")


@dataclasses.dataclass
class Verdict:
    """Collects one claim test's measurements; the pytest plugin turns it into a report record."""

    claim: Claim
    profile: str
    case: str | None
    settings: Mapping[str, Any]  # the claim's typed settings (harness.settings) at its profile
    tier: str = "stand-in"
    dataset: str = "synthetic"
    stands_in_for: str | None = None  # the paper's data that ``dataset`` replaced, as its source declares (ran_on)
    plan: SeedPlan | None = None  # sequential seeds of a stochastic claim; None: the test names its own seeds
    seeds: list[int] = dataclasses.field(default_factory=list)  # with a plan: this look's seeds, set by the plan
    measured: dict[str, Any] = dataclasses.field(default_factory=dict)
    figures: list[dict[str, str]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    summary: str | None = None
    verdict: str | None = None
    tentative: str | None = None  # what the measurement would have decided, inconclusive for too few seeds or an unmet precondition
    preconditions: dict[str, dict] = dataclasses.field(default_factory=dict)  # name → {met, detail, requires}
    look: int = 0  # index of the current look of ``plan``
    looks: list[dict] = dataclasses.field(default_factory=list)  # per finished look: seeds, verdict, undecided conditions
    stop: str | None = None  # why the claim stopped adding seeds (STOP_*)

    def __post_init__(self):
        if self.plan is not None and not self.seeds:
            self.seeds = self.plan.seeds_at(0)

    def ran_on(self, dataset: str, stands_in_for: str | None = None) -> None:
        """Name the data the claim ran on. ``stands_in_for``: the paper's data it replaced, as the
        data source declares it; the record then counts as a stand-in whatever tier its profile
        declares, and says which data stood in."""
        self.dataset, self.stands_in_for = dataset, stands_in_for

    @property
    def design(self) -> Design | None:
        return self.plan.design if self.plan is not None else None

    def run(self, body: Callable[[], None]) -> None:
        """Run the claim's test ``body`` look by look: on the first look's seeds, then, while
        ``decide`` raises :class:`MoreSeeds`, again on the next look's (everything measured at a
        look is discarded but the look's summary in ``looks``). Without a seed plan, once."""
        if self.plan is None:
            body()
            return
        for look in range(len(self.plan.design.looks)):
            self._start_look(look)
            try:
                body()
                return
            except MoreSeeds:
                continue
        raise RuntimeError(f"{self.claim.id}: asked for more seeds after the last look")  # decide() never does

    def _start_look(self, look: int) -> None:
        self.look, self.seeds = look, self.plan.seeds_at(look)
        self.measured, self.figures, self.notes, self.preconditions = {}, [], [], {}
        self.summary = self.verdict = self.tentative = self.stop = None

    def measure(self, **values: Any) -> None:
        for name, value in values.items():
            self.measured[name] = to_plain(value)

    def add_figure(self, title: str, svg: str) -> None:
        if not isinstance(svg, str) or "<svg" not in svg:
            raise ValueError(f"{self.claim.id}: figure '{title}' is not an SVG document")
        self.figures.append({"title": title, "svg": svg})

    def add_table(self, title: str, columns: Sequence[str], rows: Mapping[str, Sequence[Any]]) -> None:
        """A table for the report (as the paper's Tables 1–3): one row per label, one cell per
        column, rendered as an HTML table (searchable, copyable, readable by a screen reader)."""
        columns = [str(c) for c in columns]
        bad = {label: len(cells) for label, cells in rows.items() if len(cells) != len(columns)}
        if not columns or not rows or bad:
            raise ValueError(f"{self.claim.id}: table '{title}' needs columns and rows of {len(columns)} cells each, got {bad or 'none'}")
        self.figures.append({"title": title, "table": {"columns": columns,
                                                       "rows": [[str(label), *map(str, cells)] for label, cells in rows.items()]}})

    def note(self, text: str) -> None:
        self.notes.append(text)

    def check_precondition(self, name: str, met: bool, detail: str, known: bool = True) -> None:
        """Record whether the run meets one of the preconditions its claim ``requires`` (YAML). A
        claim with an unmet precondition concludes ``inconclusive``, whatever it measured.
        ``known=False``: not measured yet (under --plan, before the lab's runs are stored): unmet,
        but no reason to stop declaring the claim's own runs."""
        if name not in self.claim.preconditions:
            declared = ", ".join(self.claim.preconditions) or "none"
            raise ValueError(f"{self.claim.id}: precondition '{name}' is not in the claim's 'requires' (declared: {declared})")
        self.preconditions[name] = {"met": bool(met), "detail": detail, "requires": self.claim.preconditions[name]}
        if not known:
            self.preconditions[name]["known"] = False
        self.measure(preconditions=self.preconditions)

    def stop_unless_preconditions_met(self) -> None:
        """For a claim about to make runs of its own: when a precondition it checked failed, stop
        here, inconclusive, without spending more compute (its lab cannot show the claim at this
        profile; the record says what failed)."""
        if any(not p["met"] and p.get("known", True) for p in self.preconditions.values()):
            self.conclude(INCONCLUSIVE, "not measured at this profile: its lab cannot show the claim")

    def finite(self, name: str, values: Sequence[float]) -> list[float]:
        """Seed-level values of ``name`` for a condition. A seed without a finite value (its run
        diverged, so it has no final loss or accuracy) cannot be judged: the claim then concludes
        inconclusive, saying which seeds (``conclude`` raises)."""
        values = [float(v) for v in values]
        if len(values) != len(self.seeds):
            raise ValueError(f"{self.claim.id}: {name} has {len(values)} values for the seeds {self.seeds}")
        bad = [seed for seed, v in zip(self.seeds, values) if not math.isfinite(v)]
        if bad:
            self.conclude(INCONCLUSIVE, f"{name}: no finite value on seed(s) {bad} (a run diverged): {values}")
        return values

    def decide(self, *conditions: Condition, summary: str | None = None) -> None:
        """Decide on seed-level conditions (harness.claimkit.evidence.decide) at this look and conclude with
        the result; ``summary`` goes before the conditions' own description. Undecided while the
        seed plan has another look and every precondition holds: :class:`MoreSeeds`."""
        if self.plan is not None:
            if self.seeds != self.plan.seeds_at(self.look):
                raise RuntimeError(f"{self.claim.id}: its seeds come from its seed plan (this look: {self.plan.seeds_at(self.look)}), "
                                   f"but the test set {self.seeds}: read verdict.seeds instead of setting them")
            wrong = [f"'{c.name}' ({c.n})" for c in conditions if c.kind != "exact" and c.n != len(self.seeds)]
            if wrong:
                raise ValueError(f"{self.claim.id}: every seed-level condition needs one value per seed "
                                 f"({len(self.seeds)}: {self.seeds}); got {', '.join(wrong)}")
        decision = decide(*conditions, design=self.design)
        self.measure(evidence=decision.as_record())
        failed = any(not p["met"] for p in self.preconditions.values())
        self.looks.append({"seeds": len(self.seeds), "verdict": decision.verdict,
                           "undecided": [c.name for c in decision.undecided()]})
        if (decision.verdict == INCONCLUSIVE and not failed and self.plan is not None
                and self.plan.design.next_look(len(self.seeds)) is not None):
            raise MoreSeeds
        text = f"{summary}; {decision.summary}" if summary else decision.summary
        lean = decision.lean() if decision.verdict == INCONCLUSIVE else None
        if lean:
            self.measure(lean=lean)
            text = f"{text}. Leans: {lean}"
        self.conclude(decision.verdict, text, stop=None if failed else STOP_DECIDED if decision.verdict != INCONCLUSIVE else STOP_CAP)

    def decide_readout(self, readout: Readout, every_seed_finite: bool = False) -> None:
        """Record a readout's values and decide on its conditions (:meth:`decide`). With
        ``every_seed_finite`` (conditions on the seed-level values of full runs), each seed-level
        condition's values must be finite first (:meth:`finite`): a seed whose run diverged has
        none, and the claim is then inconclusive, named by the condition."""
        self.measure(**readout.values)
        if every_seed_finite:
            for condition in readout.conditions:
                if condition.op is not None:
                    self.finite(condition.name, condition.values)
        self.decide(*readout.conditions, summary=readout.summary)

    def conclude_exact(self, readout: Readout) -> None:
        """Conclude a seed-exempt claim on its readout's exact checks: the checks are recorded as
        evidence, and the summary is the readout's own (the checks' names stay out of it)."""
        self.measure(evidence=readout.decision.as_record())
        self.conclude(readout.verdict, readout.summary)

    def why(self) -> list[str]:
        """What kept the claim from holding, as the expected-verdicts file records it (``why``):
        the failed preconditions; or that it could not be judged on its seeds (a run diverged, a
        window held no checkpoint); or, refuted, each condition that refuted it; or, undecided,
        that the seed cap was reached (which conditions were still open there is in the record,
        not here: it may change with rounding while the verdict does not). Empty for a claim that
        holds. A verdict recorded for one reason and reached for another is not the recorded
        result."""
        if self.verdict in (None, HOLDS):
            return []
        failed = sorted(f"precondition failed: {name}" for name, p in self.preconditions.items() if not p["met"])
        if failed:
            return failed
        if self.stop == STOP_UNJUDGED:
            return [STOP_UNJUDGED]
        if self.verdict == INCONCLUSIVE and self.stop == STOP_CAP:
            return ["undecided at the seed cap"]
        evidence = self.measured.get("evidence") or {}
        named = sorted(f"{name}: {c['state']}" for name, c in evidence.items() if c["state"] == self.verdict)
        return named or [f"{self.verdict}: {self.summary}"[:200]]

    def conclude(self, holds: bool | str, summary: str, stop: str | None = None) -> None:
        """Record the verdict (a bool, or holds/refuted/inconclusive) and fail the test unless it
        holds. ``stop`` says why no more seeds were added (default: the claim was concluded here,
        as it stands: decided, or it cannot be judged on these seeds)."""
        if self.verdict is not None:
            raise RuntimeError(f"{self.claim.id}: conclude() called twice")
        if isinstance(holds, str):
            if holds not in (HOLDS, REFUTED, INCONCLUSIVE):
                raise ValueError(f"{self.claim.id}: unknown verdict {holds!r}")
            verdict = holds
        else:
            verdict = HOLDS if bool(holds) else REFUTED
        unchecked = [n for n in self.claim.preconditions if n not in self.preconditions]
        if unchecked:
            raise RuntimeError(f"{self.claim.id}: concluded without checking its precondition(s) {unchecked}")
        failed = [f"{p['requires']} ({p['detail']})" for p in self.preconditions.values() if not p["met"]]
        if failed:
            if verdict != INCONCLUSIVE:
                self.tentative, verdict = verdict, INCONCLUSIVE
            would = f"; would be {self.tentative}" if self.tentative else ""
            summary = f"precondition failed: {'; '.join(failed)}{would}. {summary}"
            stop = STOP_PRECONDITION
        seeds = len(set(self.seeds))
        if verdict != INCONCLUSIVE and self.claim.seed_exempt is None and seeds < MIN_SEEDS:
            self.tentative, verdict = verdict, INCONCLUSIVE
            summary = f"{seeds} seed(s), needs ≥ {MIN_SEEDS}: would be {self.tentative}. {summary}"
        if stop is None:
            stop = (STOP_EXEMPT if self.plan is None and self.claim.seed_exempt is not None
                    else STOP_DECIDED if verdict != INCONCLUSIVE else STOP_UNJUDGED)
        self.summary, self.verdict, self.stop = summary, verdict, stop
        if verdict == REFUTED:
            raise ClaimRefuted(f"{self.claim.id} refuted at profile '{self.profile}': {summary}")
        if verdict == INCONCLUSIVE:
            raise ClaimInconclusive(f"{self.claim.id} inconclusive at profile '{self.profile}': {summary}")

    def seed_record(self) -> dict:
        """What the report shows of the seeds: used against the cap, the looks, and why it stopped."""
        return {"used": len(self.seeds), "cap": self.plan.design.cap if self.plan else len(self.seeds),
                "looks": list(self.plan.design.looks) if self.plan else [len(self.seeds)],
                "history": self.looks, "stop": self.stop}


@dataclasses.dataclass(frozen=True)
class Preconditions:
    """What a family's lab showed, by precondition name (the claims file's ``preconditions``):
    whether it is met and the measured detail. :meth:`check` records the ones a claim requires."""

    met: dict[str, bool]
    detail: dict[str, str]
    known: bool = True  # False: not measured yet (under --plan); every one counts as unmet

    def check(self, verdict: Verdict) -> None:
        for name in verdict.claim.preconditions:
            if name not in self.met:
                raise KeyError(f"{verdict.claim.id} requires precondition '{name}', which its family does not "
                               f"measure (it measures {', '.join(self.met)})")
            verdict.check_precondition(name, self.met[name], self.detail[name], self.known)
