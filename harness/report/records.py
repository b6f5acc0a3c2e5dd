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


def merge_records(*groups: Iterable[Mapping[str, Any]]) -> list[dict]:
    """Union of records; for the same test node id and profile the later group wins."""
    merged: dict[tuple[str, str], dict] = {}
    for group in groups:
        for rec in group:
            merged[(rec["nodeid"], rec["profile"])] = dict(rec)
    return sorted(merged.values(), key=lambda r: (r["paper"], r.get("section", ""), r["claim_id"], r["nodeid"]))


def write_report(records: list[dict], directory: Path | str, runs: list[dict] | None = None, stem: str = "claims") -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.html`` into ``directory``."""
    from harness.report.html import render_html

    directory = Path(directory)
    json_path, html_path = directory / f"{stem}.json", directory / f"{stem}.html"
    write_json(records, json_path, runs or [])
    atomic_write_text(html_path, render_html(records, runs or []))
    return json_path, html_path
