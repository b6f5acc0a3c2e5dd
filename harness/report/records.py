"""Reading, merging and atomically writing claims records."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
REQUIRED_KEYS = ("nodeid", "claim_id", "paper", "verdict", "profile")


class ReportError(ValueError):
    """A claims JSON file cannot be read as a report."""


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write through a temporary file and rename, so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a report is for reading
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(records: Iterable[Mapping[str, Any]], path: Path | str, runs: Iterable[Mapping[str, Any]] = ()) -> None:
    payload = {"schema": SCHEMA_VERSION, "runs": [dict(r) for r in runs], "records": list(records)}
    atomic_write_text(path, json.dumps(payload, indent=1, sort_keys=True))


def load_records(path: Path | str) -> tuple[list[dict], list[dict]]:
    """Records and run descriptions of one claims JSON file."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"{path}: no such claims JSON file") from None
    except json.JSONDecodeError as err:
        raise ReportError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(payload, dict) or payload.get("schema") != SCHEMA_VERSION:
        raise ReportError(f"{path}: not a claims report of schema {SCHEMA_VERSION}")
    records = payload.get("records")
    if not isinstance(records, list):
        raise ReportError(f"{path}: 'records' must be a list")
    for i, rec in enumerate(records):
        missing = [k for k in REQUIRED_KEYS if not isinstance(rec, dict) or k not in rec]
        if missing:
            raise ReportError(f"{path}: record #{i + 1} lacks {', '.join(missing)}")
    return records, list(payload.get("runs", []))


def record_key(rec: Mapping[str, Any]) -> tuple:
    """What one record speaks for: the claim, its case, the profile and the tier it ran at."""
    return rec["claim_id"], rec.get("case"), rec["profile"], rec.get("tier")


def run_time(run_id: str | None) -> float:
    """When a run started, from its id ("<unix time> <host> <pid>"); 0 for records without one."""
    try:
        return float(str(run_id).split()[0])
    except (ValueError, IndexError):
        return 0.0


def merge_records(*groups: Iterable[Mapping[str, Any]]) -> list[dict]:
    """Union of records; for the same claim, case, profile and tier the newest run wins (records
    without a run id count as oldest), and on a tie the later group."""
    merged: dict[tuple, dict] = {}
    for group in groups:
        for rec in group:
            key = record_key(rec)
            if key not in merged or run_time(rec.get("run_id")) >= run_time(merged[key].get("run_id")):
                merged[key] = dict(rec)
    return sorted(merged.values(), key=lambda r: (r["paper"], r.get("section", ""), r["claim_id"], r["nodeid"]))


def merge_runs(*groups: Iterable[Mapping[str, Any]]) -> list[dict]:
    """Run descriptions of every group, one per run id, oldest first."""
    runs: dict[Any, dict] = {}
    for group in groups:
        for run in group:
            runs[run.get("id") or run.get("started") or len(runs)] = dict(run)
    return sorted(runs.values(), key=lambda r: run_time(r.get("id")))


def update_store(path: Path | str, records: Iterable[Mapping[str, Any]], run: Mapping[str, Any],
                 fresh: bool = False) -> tuple[list[dict], list[dict], str | None]:
    """Merge ``records`` and ``run`` into the claims JSON at ``path`` under a file lock, keeping
    every record this run did not produce; ``fresh`` ignores what the file holds. Returns the
    merged records and runs, and a warning when an unreadable file had to be set aside (renamed
    to ``<name>.unreadable``) rather than merged."""
    from filelock import FileLock

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    warning = None
    with FileLock(str(path.with_name(f".{path.name}.lock"))):
        old_records, old_runs = [], []
        if path.exists() and not fresh:
            try:
                old_records, old_runs = load_records(path)
            except ReportError as err:
                aside = path.with_name(path.name + ".unreadable")
                os.replace(path, aside)
                warning = f"{err}; moved it to {aside} and started a new report"
        merged, runs = merge_records(old_records, records), merge_runs(old_runs, [run])
        write_json(merged, path, runs)
    return merged, runs, warning


def write_report(records: list[dict], directory: Path | str, runs: list[dict] | None = None, stem: str = "claims") -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.html`` into ``directory`` (replacing them)."""
    directory = Path(directory)
    json_path = directory / f"{stem}.json"
    write_json(records, json_path, runs or [])
    return json_path, write_html(records, runs or [], directory / f"{stem}.html")


def write_html(records: list[dict], runs: list[dict], path: Path | str) -> Path:
    from harness.report.html import render_html

    atomic_write_text(path, render_html(records, runs))
    return Path(path)
