"""The API a claim test calls to record what it measured and state its verdict.

    def test_kappa_grows(verdict, settings):
        kappa = ...
        verdict.measure(kappa_mean=kappa)                 # plain numbers, lists or strings
        verdict.add_figure("κ vs M (Fig. 11)", svg)       # made by harness.report.figures
        verdict.conclude(holds=..., summary="κ(1) = 2e3 → κ(8) = 4e9")

``conclude`` records the verdict and raises :class:`ClaimRefuted` when the claim does not hold,
so a refuted claim fails its test unless the expected-verdicts file lists it (strict xfail).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from harness.registry import Claim

# verdicts a record can carry; the first two come from conclude(), the others from pytest
HOLDS, REFUTED, NOT_RUN, ERROR = "holds", "refuted", "not run", "error"


class ClaimRefuted(pytest.fail.Exception):
    """The measurement does not meet the claim's threshold.

    A ``pytest.fail`` outcome without a traceback: the message (claim, profile, what was measured)
    is the whole report. Formatting a traceback would also render the test's arguments, the shared
    run records, with ``repr``: that took 15 s of a warm fast run for its 39 expected refutations.
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
    settings: dict[str, Any]
    dataset: str = "synthetic"
    seeds: list[int] = dataclasses.field(default_factory=list)
    measured: dict[str, Any] = dataclasses.field(default_factory=dict)
    figures: list[dict[str, str]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    summary: str | None = None
    verdict: str | None = None

    def measure(self, **values: Any) -> None:
        for name, value in values.items():
            self.measured[name] = to_plain(value)

    def add_figure(self, title: str, svg: str) -> None:
        if not isinstance(svg, str) or "<svg" not in svg:
            raise ValueError(f"{self.claim.id}: figure '{title}' is not an SVG document")
        self.figures.append({"title": title, "svg": svg})

    def note(self, text: str) -> None:
        self.notes.append(text)

    def conclude(self, holds: bool, summary: str) -> None:
        """Record the verdict and fail the test when the claim does not hold."""
        if self.verdict is not None:
            raise RuntimeError(f"{self.claim.id}: conclude() called twice")
        self.summary = summary
        self.verdict = HOLDS if bool(holds) else REFUTED
        if not holds:
            raise ClaimRefuted(f"{self.claim.id} refuted at profile '{self.profile}': {summary}")
