"""The verdicts of the same claims in several runs, side by side: what fresh randomness changes.

Run the suite at several ``--seed-offset`` values (each into its own ``--report-dir``), then::

    python -m harness.claimkit.report compare offset0/claims.json offset1/claims.json offset2/claims.json

Records are matched on claim, case and profile. Each claim run present in every file is one of:

- **stable**: the same verdict in every run;
- **flipped**: ``holds`` in one run and ``refuted`` in another. A decided verdict that fresh
  randomness reverses was decided on noise; the verdict model is built so that this does not
  happen (a straddling interval is ``inconclusive``), so a flip is a defect of the claim's reading
  or of its number of seeds;
- **decided in some**: decided (holds or refuted) in some runs and ``inconclusive`` in others:
  the seed interval lies near the threshold, and which side of "clearly" it falls on depends on
  the draw. This is the verdict model doing its job, but a verdict that moves so is a weak one;
- **incomplete**: ``error`` or ``not run`` in some run (and no flip among the others).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from harness.claimkit.report.records import ReportError
from harness.claimkit.vocabulary import DECIDED

CLASSES = ("stable", "flipped", "decided in some", "incomplete")


def run_label(records: Sequence[Mapping[str, Any]], fallback: str) -> str:
    """``offset K`` when every record of a file ran at the same seed offset, else ``fallback``."""
    offsets = {r.get("seed_offset") for r in records}
    if len(offsets) == 1 and None not in offsets:
        return f"offset {offsets.pop()}"
    return fallback


def run_name(claim_id: str, case: str | None, profile: str) -> str:
    """How a claim run is named in the comparison: ``ID [case] (profile)``."""
    return f"{claim_id}{f' [{case}]' if case else ''} ({profile})"


def classify(verdicts: Sequence[str]) -> str:
    """One of CLASSES; a flip counts as one even when another run did not finish."""
    seen = set(verdicts)
    if set(DECIDED) <= seen:
        return "flipped"
    if seen & {"error", "not run"}:
        return "incomplete"
    return "stable" if len(seen) == 1 else "decided in some"


@dataclasses.dataclass(frozen=True)
class Row:
    claim_id: str
    case: str | None
    profile: str
    tier: str  # 'a/b' when the runs ran it at different tiers
    verdicts: tuple[str, ...]  # one per run, in the order the runs were given

    @property
    def kind(self) -> str:
        return classify(self.verdicts)

    @property
    def name(self) -> str:
        return run_name(self.claim_id, self.case, self.profile)


@dataclasses.dataclass(frozen=True)
class Comparison:
    labels: tuple[str, ...]
    rows: tuple[Row, ...]  # claim runs present in every run
    missing: tuple[tuple[str, tuple[str, ...]], ...]  # (claim run, labels of the runs that lack it)

    @property
    def flips(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.kind == "flipped")

    def counts(self) -> dict[str, Counter]:
        """Tier → Counter of the classes (every class present, possibly 0)."""
        out: dict[str, Counter] = {}
        for row in self.rows:
            out.setdefault(row.tier, Counter({c: 0 for c in CLASSES}))[row.kind] += 1
        return out

    def decided_at(self, i: int) -> int:
        return sum(r.verdicts[i] in DECIDED for r in self.rows)

    def markdown(self) -> str:
        lines = [f"Verdicts of {len(self.rows)} claim runs in {len(self.labels)} runs ({', '.join(self.labels)}).", "",
                 "| tier | " + " | ".join(CLASSES) + " |", "|---" * (len(CLASSES) + 1) + "|"]
        for tier, counter in sorted(self.counts().items()):
            lines.append(f"| {tier} | " + " | ".join(str(counter[c]) for c in CLASSES) + " |")
        lines += ["", "Decided (holds or refuted) per run: "
                  + "; ".join(f"{label}: {self.decided_at(i)}" for i, label in enumerate(self.labels))]
        changed = [r for r in self.rows if r.kind != "stable"]
        if changed:
            lines += ["", "| claim run | tier | " + " | ".join(self.labels) + " | |", "|---" * (len(self.labels) + 3) + "|"]
            for row in sorted(changed, key=lambda r: (CLASSES.index(r.kind), r.name)):
                lines.append(f"| {row.name} | {row.tier} | " + " | ".join(row.verdicts) + f" | {row.kind} |")
        for name, lacking in self.missing:
            lines.append(f"- {name}: not in {', '.join(lacking)}")
        return "\n".join(lines)


def compare(runs: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]) -> Comparison:
    """Match the records of several runs (label, records) on claim, case and profile."""
    if len(runs) < 2:
        raise ReportError(f"comparing verdicts needs at least two runs, got {len(runs)}")
    labels = tuple(label for label, _ in runs)
    if len(set(labels)) != len(labels):
        raise ReportError(f"runs need distinct labels, got {', '.join(labels)}")
    tables: list[dict[tuple, Mapping[str, Any]]] = []
    for label, records in runs:
        table: dict[tuple, Mapping[str, Any]] = {}
        for rec in records:
            key = (rec["claim_id"], rec.get("case"), rec["profile"])
            if key in table:
                raise ReportError(f"{label}: {key[0]} ({key[2]}) appears twice; compare one run per file "
                                  "(a merged report holds one record per claim run and tier)")
            table[key] = rec
        tables.append(table)
    keys = sorted(set().union(*tables), key=lambda k: (k[0], str(k[1]), k[2]))
    rows, missing = [], []
    for key in keys:
        present = [t.get(key) for t in tables]
        if any(r is None for r in present):
            missing.append((run_name(*key), tuple(label for label, r in zip(labels, present) if r is None)))
            continue
        tiers = sorted({str(r.get("tier")) for r in present})  # differs only when a run had other data
        rows.append(Row(key[0], key[1], key[2], "/".join(tiers), tuple(r["verdict"] for r in present)))
    return Comparison(labels, tuple(rows), tuple(missing))
