"""The verdict history read for people: selections, one line per run, what changed, and the
report's timeline of each claim (the store itself is :mod:`harness.claimkit.report.history`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import math
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from markupsafe import Markup

from harness.claimkit.report.formatting import format_seeds, format_value
from harness.claimkit.vocabulary import ERROR, HOLDS, INCONCLUSIVE, NOT_RUN, REFUTED
from harness.claimkit.report.history import TIMELINE_RUNS, HistoryError, history_path, load

DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?)?")
COMMIT = re.compile(r"[0-9a-fA-F]{4,40}")


def since_time(rows: Sequence[Mapping[str, Any]], text: str, where: Path | str = ".") -> float:
    """The start time ``--since`` means: a date (``YYYY-MM-DD``, optionally ``HH:MM[:SS]``, UTC),
    or a commit: the first run made at it, else (a commit no run was made at) its commit time in
    the git checkout at ``where``."""
    text = text.strip()
    if DATE.fullmatch(text):
        try:
            return _dt.datetime.fromisoformat(text.replace(" ", "T")).replace(tzinfo=_dt.timezone.utc).timestamp()
        except ValueError as err:
            raise HistoryError(f"--since {text!r}: not a valid date ({err})") from None
    if COMMIT.fullmatch(text):
        lowered = text.lower()
        at = [r["started"] for r in rows if r["commit_id"] and (r["commit_id"].startswith(lowered) or lowered.startswith(r["commit_id"]))]
        if at:
            return min(at)
        with contextlib.suppress(OSError, subprocess.SubprocessError, ValueError):
            out = subprocess.run(["git", "show", "-s", "--format=%ct", text, "--"], cwd=where, capture_output=True,
                                 text=True, timeout=30)
            if out.returncode == 0:
                return float(out.stdout.split()[0])
    raise HistoryError(f"--since {text!r}: not a date (YYYY-MM-DD, optionally HH:MM) nor a commit of a run in the "
                       "history or of this git checkout")


def select(directory: Path | str, keywords: Sequence[str] = (), profile: str | None = None) -> list[dict]:
    """The rows of the claims that ``-k`` values name (every claim without any), of ``profile``."""
    rows = load(directory, profile=profile)
    if not keywords:
        return rows
    return load(directory, claims=select_claims(rows, keywords, history_path(directory)), profile=profile)


def select_claims(rows: Sequence[Mapping[str, Any]], keywords: Sequence[str], path: Path) -> list[str]:
    """The claim IDs (or ID prefixes) that ``-k`` values name, each checked against the history.
    A value may list several, as pytest's ``-k`` does: ``"S-THM41 or S-OBS43"``."""
    tokens = [t for k in keywords for t in re.split(r"[\s,]+", k) if t and t.lower() != "or"]
    known = sorted({r["claim_id"] for r in rows})
    unknown = [t for t in tokens if not any(c == t or c.startswith(t + "-") for c in known)]
    if unknown:
        shown = ", ".join(known[:30]) + (f", … ({len(known)} claims)" if len(known) > 30 else "")
        raise HistoryError(f"-k {', '.join(unknown)}: no run of such a claim in {path} (it holds: {shown or 'no claim'})")
    return tokens


# --- text -----------------------------------------------------------------------------------------

def commit_text(row: Mapping[str, Any]) -> str:
    return f"{row.get('commit_id') or 'no commit'}{'+dirty' if row.get('dirty') else ''}"


def machine_text(row: Mapping[str, Any]) -> str:
    return f"{row.get('host') or '?'}: {row.get('device') or '?'}, {row.get('cpu') or '?'}"


def run_name(row: Mapping[str, Any]) -> str:
    return f"{row['claim_id']}{' [' + row['case'] + ']' if row.get('case') else ''} ({row['profile']})"


OPS = {">=": "≥", "<=": "≤"}


def main_text(row: Mapping[str, Any]) -> str:
    """The main measured value, with its interval and threshold when a condition gives them."""
    if row.get("main_value") is None:
        return "–"
    text = f"{row['main_name']} = {format_value(row['main_value'])}"
    first = row["conditions"][0] if row.get("conditions") else None
    if first and first["name"] == row["main_name"]:
        if None not in (first["low"], first["high"]) and first["low"] != first["high"]:
            text += f" [{format_value(first['low'])}, {format_value(first['high'])}]"
        if first["op"] and first["threshold"] is not None:
            text += f" (needs {OPS.get(first['op'], first['op'])} {format_value(first['threshold'])})"
    return text


def seeds_text(row: Mapping[str, Any]) -> str:
    """The seeds used; a condition that drew seeds one after another adds how many of its cap and why it stopped."""
    text = format_seeds(row.get("seeds") or [])
    first = row["conditions"][0] if row.get("conditions") else None
    if first and first.get("cap"):
        stop = f", {first['stop']}" if first.get("stop") else ""
        text += f" ({first.get('n')} of ≤ {first['cap']}{stop})"
    return text


def history_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One block per claim run (claim, case, profile), one line per run: time, commit, torch,
    machine, threads, seed offset, seeds, verdict, main measured value."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["claim_id"], row["case_name"], row["profile"]), []).append(row)
    lines: list[str] = []
    for key in sorted(groups):
        group = groups[key]
        tiers = {r["tier"] or "no" for r in group}
        lines.append(f"{run_name(group[0])} · {group[0]['tier'] or 'no'} tier" if len(tiers) == 1 else run_name(group[0]))
        table = [[r["started_text"] or _utc(r["started"]), commit_text(r), f"torch {r['torch_version'] or '?'}",
                  machine_text(r), f"{r['threads'] or '?'} thread(s)", f"offset {r['seed_offset'] or 0}",
                  f"seeds {seeds_text(r)}",
                  r["verdict"] + (f" ({r['tier'] or 'no'} tier)" if len(tiers) > 1 else "")
                  + (" [interrupted run]" if r["interrupted"] else ""), main_text(r)] for r in group]
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
        lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] for row in table]
    return lines


def _utc(started: float) -> str:
    return _dt.datetime.fromtimestamp(started, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- changes --------------------------------------------------------------------------------------

def differences(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """What differed between two rows' runs: commit, code, torch, machine, threads, seed offset,
    seeds, settings, tier, data (a sentence saying so when nothing did)."""
    out = []

    def diff(label: str, a: Any, b: Any) -> None:
        if a != b:
            out.append(f"{label} {a if a not in (None, '') else '?'} → {b if b not in (None, '') else '?'}")

    diff("commit", commit_text(before), commit_text(after))
    if commit_text(before) == commit_text(after) and before.get("code_version") != after.get("code_version"):
        out.append("code changed (uncommitted edits)")
    diff("torch", before.get("torch_version"), after.get("torch_version"))
    diff("host", before.get("host"), after.get("host"))
    diff("device", before.get("device"), after.get("device"))
    diff("cpu", before.get("cpu"), after.get("cpu"))
    diff("threads", before.get("threads"), after.get("threads"))
    diff("seed offset", before.get("seed_offset"), after.get("seed_offset"))
    diff("seeds", format_seeds(before.get("seeds") or []), format_seeds(after.get("seeds") or []))
    if before.get("settings_hash") != after.get("settings_hash"):
        out.append("settings changed (the claims YAML)")
    diff("tier", before.get("tier"), after.get("tier"))
    diff("data", before.get("dataset"), after.get("dataset"))
    return out or ["nothing recorded differs (same commit, torch, machine, threads, seeds and settings)"]


@dataclasses.dataclass
class ProfileChanges:
    """The latest run of one profile against the previous run of each claim run it measured."""
    profile: str
    latest: Mapping[str, Any]  # a row of the latest run (for its time, commit and machine)
    changed: list[tuple[Mapping[str, Any], Mapping[str, Any], list[str]]]  # (before, after, what differed)
    compared: int
    first: int  # claim runs with no earlier run

    @property
    def run_text(self) -> str:
        r = self.latest
        return f"run of {r['started_text'] or _utc(r['started'])} at {commit_text(r)} on {r.get('host') or '?'}"

    def lines(self) -> list[str]:
        head = f"{self.profile}: the {self.run_text}"
        if not self.compared:
            return [f"{head} is the first run of its {self.first} claim run(s): nothing to compare"]
        first = f"; {self.first} ran for the first time" if self.first else ""
        if not self.changed:
            return [f"{head}: no verdict changed since the previous run ({self.compared} claim run(s) compared{first})"]
        out = [f"{head}: {len(self.changed)} of {self.compared} verdict(s) changed since the previous run{first}"]
        for before, after, what in self.changed:
            out.append(f"  {run_name(after)}: {before['verdict']} → {after['verdict']} (previous: "
                       f"{before['started_text'] or _utc(before['started'])}); {'; '.join(what)}")
        return out


def changes(rows: Sequence[Mapping[str, Any]]) -> list[ProfileChanges]:
    """Per profile, the verdicts of its latest run that differ from the previous run of the same
    claim run (claim, case, profile), each with what differed between the two runs. A ``-k`` run
    measures a few claims, so "previous" is per claim run: the last earlier run that measured it."""
    ordered = sorted(rows, key=lambda r: (r["started"], r["run_id"]))
    out = []
    for profile in sorted({r["profile"] for r in ordered}):
        mine = [r for r in ordered if r["profile"] == profile]
        latest_run = mine[-1]["run_id"]
        previous: dict[tuple, Mapping[str, Any]] = {}  # claim run → its last row before the latest run
        for row in mine:
            if row["run_id"] != latest_run:
                previous[row["claim_id"], row["case_name"]] = row
        latest = [r for r in mine if r["run_id"] == latest_run]
        changed, compared, first = [], 0, 0
        for row in latest:
            before = previous.get((row["claim_id"], row["case_name"]))
            if before is None:
                first += 1
                continue
            compared += 1
            if before["verdict"] != row["verdict"]:
                changed.append((before, row, differences(before, row)))
        out.append(ProfileChanges(profile, latest[0], changed, compared, first))
    return out


# --- the HTML's view ------------------------------------------------------------------------------

VERDICT_COLORS = {HOLDS: "#1a7f37", REFUTED: "#b42318", INCONCLUSIVE: "#b07d00", ERROR: "#7a2e0e", NOT_RUN: "#98a2b3"}


def sparkline(rows: Sequence[Mapping[str, Any]], width: int = 200, height: int = 46) -> Markup | None:
    """A small inline SVG of the main measured value over ``rows`` (oldest first): one dot per run
    in its verdict's colour, the seeds' interval as a whisker, the threshold dashed. Rows whose
    main value has another name than the newest row's are gaps. The markup holds only numbers and
    fixed names, so it is safe to inline."""
    name = rows[-1].get("main_name") if rows else None
    points = []
    for i, r in enumerate(rows):
        if name is None or r.get("main_name") != name or r.get("main_value") is None:
            continue
        first = r["conditions"][0] if r.get("conditions") and r["conditions"][0]["name"] == name else {}
        points.append((i, r["main_value"], first.get("low"), first.get("high"), first.get("threshold"), first.get("log"), r["verdict"]))
    if not points:
        return None
    values = [v for p in points for v in p[1:5] if v is not None]
    log = any(p[5] for p in points) or (min(values) > 0 and max(values) / min(values) > 100)
    if log and min(values) <= 0:
        log = False
    f = (lambda v: math.log10(v)) if log else (lambda v: v)
    lo, hi = min(map(f, values)), max(map(f, values))
    if hi - lo < 1e-12 * max(1.0, abs(hi)):
        lo, hi = lo - 1, hi + 1
    pad = 5
    x = (lambda i: width / 2) if len(rows) == 1 else (lambda i: pad + i * (width - 2 * pad) / (len(rows) - 1))

    def y(v: float) -> float:
        return height - pad - (f(v) - lo) / (hi - lo) * (height - 2 * pad)

    parts = [f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="main measured value over the last {len(rows)} runs{" (log scale)" if log else ""}">']
    threshold = points[-1][4]
    if threshold is not None:
        parts.append(f'<line x1="0" x2="{width}" y1="{y(threshold):.1f}" y2="{y(threshold):.1f}" stroke="#98a2b3" '
                     'stroke-dasharray="3 2"/>')
    if len(points) > 1:
        parts.append('<polyline fill="none" stroke="#475467" stroke-width="1" points="'
                     + " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v, *_ in points) + '"/>')
    for i, v, low, high, _, _, verdict in points:
        color = VERDICT_COLORS.get(verdict, "#475467")
        if low is not None and high is not None:
            parts.append(f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{y(low):.1f}" y2="{y(high):.1f}" stroke="{color}"/>')
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{color}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclasses.dataclass
class Timeline:
    """One claim run's last runs in the HTML: verdict chips and the main value's sparkline."""
    label: str
    rows: list[Mapping[str, Any]]

    @property
    def chips(self) -> list[dict]:
        return [{"verdict": r["verdict"], "commit": commit_text(r), "host": r.get("host") or "?",
                 "when": (r["started_text"] or _utc(r["started"]))[:16],
                 "title": f"{r['started_text'] or _utc(r['started'])} · commit {commit_text(r)} · {machine_text(r)} · "
                          + (f"torch {r['torch_version']} · " if r.get("torch_version") else "")  # a suite's library, when it names one
                          + f"{r.get('threads') or '?'} thread(s) · seed offset "
                          f"{r.get('seed_offset') or 0} · seeds {seeds_text(r)} · tier {r.get('tier') or '?'} · "
                          f"{r['verdict']}: {main_text(r)}"} for r in self.rows]

    @property
    def svg(self) -> Markup | None:
        return sparkline(self.rows)

    @property
    def value(self) -> str:
        return main_text(self.rows[-1])


@dataclasses.dataclass
class HistoryView:
    """What claims.html shows of the history beside it."""
    rows: list[Mapping[str, Any]]
    problem: str | None = None

    @classmethod
    def beside(cls, report: Path | str, claim_ids: Iterable[str] = ()) -> HistoryView | None:
        """The history in the folder of ``report`` (an HTML file), for the claims it shows; None
        when there is none. A history that cannot be read is a problem to show, not an error."""
        directory = Path(report).parent
        if not history_path(directory).is_file():
            return None
        try:
            return cls(load(directory, claims=sorted(set(claim_ids)), last=TIMELINE_RUNS))
        except HistoryError as err:
            return cls([], str(err))

    @property
    def changes(self) -> list[ProfileChanges]:
        return changes(self.rows)

    def timelines(self, claim_id: str) -> list[Timeline]:
        groups: dict[tuple, list] = {}
        for row in self.rows:
            if row["claim_id"] == claim_id:
                groups.setdefault((row["profile"], row["case_name"]), []).append(row)
        return [Timeline(f"{case} · {profile}" if case else profile, rows) for (profile, case), rows in sorted(groups.items())]


def runs_for_compare(directory: Path | str, last: int, claims: Sequence[str] = (), profile: str | None = None) -> list[tuple[str, list[dict]]]:
    """The newest ``last`` runs of the history as (label, records) for harness.claimkit.report.compare:
    ``offset K`` when the runs' seed offsets tell them apart, else their start time and commit."""
    rows = select(directory, claims, profile)
    by_run: dict[str, list[dict]] = {}
    for row in rows:
        by_run.setdefault(row["run_id"], []).append(row)
    chosen = list(by_run.values())[-last:]  # rows come oldest first
    offsets = [{r["seed_offset"] for r in run} for run in chosen]
    if all(len(o) == 1 for o in offsets) and len({next(iter(o)) for o in offsets}) == len(chosen):
        labels = [f"offset {next(iter(o)) or 0}" for o in offsets]
    else:
        labels = [f"{run[0]['started_text'] or _utc(run[0]['started'])} {commit_text(run[0])}" for run in chosen]
        if len(set(labels)) < len(labels):
            labels = [run[0]["run_id"] for run in chosen]
    return list(zip(labels, chosen))
