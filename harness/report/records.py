"""Reading, merging and atomically writing claims records."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.sources import hash_files, project_modules

SCHEMA_VERSION = 1
VERDICTS = ("holds", "refuted", "inconclusive", "not run", "error")
# what the report shows of a record: a file whose records lack one of these is not a claims report
# (a record from an older file may lack the fields of RECORD_DEFAULTS, harness.report.html)
REQUIRED_FIELDS = {
    "nodeid": str, "claim_id": str, "paper": str, "section": str, "source": str, "statement": str, "profile": str,
    "verdict": str, "expected": str, "measured": dict, "figures": list, "notes": list, "seeds": list,
}


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
    except IsADirectoryError:
        raise ReportError(f"{path}: is a folder; give the claims.json file inside it") from None
    except UnicodeDecodeError:
        raise ReportError(f"{path}: not a text file (a claims report is JSON)") from None
    except OSError as err:
        raise ReportError(f"{path}: cannot be read ({err.strerror or err})") from None
    except json.JSONDecodeError as err:
        raise ReportError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(payload, dict) or payload.get("schema") != SCHEMA_VERSION:
        raise ReportError(f"{path}: not a claims report of schema {SCHEMA_VERSION}")
    records, runs = payload.get("records"), payload.get("runs", [])
    if not isinstance(records, list):
        raise ReportError(f"{path}: 'records' must be a list")
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        raise ReportError(f"{path}: 'runs' must be a list of run descriptions")
    for i, rec in enumerate(records):
        problem = record_problem(rec)
        if problem:
            raise ReportError(f"{path}: record #{i + 1} {problem}")
    return records, runs


def record_problem(rec: Any) -> str | None:
    """What makes ``rec`` unfit for the report (None when it is a complete record)."""
    if not isinstance(rec, dict):
        return f"is a {type(rec).__name__}, not a record"
    missing = [k for k in REQUIRED_FIELDS if k not in rec]
    if missing:
        return f"({rec.get('claim_id', '?')}) lacks {', '.join(missing)}"
    wrong = [f"{k} ({type(rec[k]).__name__}, not {t.__name__})" for k, t in REQUIRED_FIELDS.items() if not isinstance(rec[k], t)]
    if wrong:
        return f"({rec['claim_id']}) has fields of the wrong type: {', '.join(wrong)}"
    if rec["verdict"] not in VERDICTS:
        return f"({rec['claim_id']}) has an unknown verdict {rec['verdict']!r} (known: {', '.join(VERDICTS)})"
    return None


def record_key(rec: Mapping[str, Any]) -> tuple:
    """What one record speaks for: the claim, its case, the profile and the tier it ran at."""
    return rec["claim_id"], rec.get("case"), rec["profile"], rec.get("tier")


def key_text(rec: Mapping[str, Any]) -> str:
    return "|".join(str(k) for k in record_key(rec))


def suite_version(repo: Path | str) -> str:
    """Hash of the code that decides a verdict: every Python file of ``harness/`` (but the report's
    own rendering), ``fixtures/`` and ``claims/``. A docs or README edit leaves it alone."""
    repo = Path(repo)
    files = [f for f in project_modules(repo).values() if "report" not in f.relative_to(repo).parts[1:-1]]
    return hash_files(repo, files)


def stale_reasons(records: Iterable[Mapping[str, Any]], code: str | None,
                  settings_hash: Callable[[Mapping[str, Any]], str | None] | None = None) -> dict[str, str]:
    """``key_text(record)`` → why the record is stale: it was made with other code than ``code``
    (its ``code_version``, see :func:`suite_version`), or ``settings_hash(record)`` (the settings
    its claim has now) differs from the one it was made with, or is None (the claim or profile is
    gone from the catalogue). Records from before these fields existed are not judged."""
    out = {}
    for rec in records:
        why = []
        if code and rec.get("code_version") and rec["code_version"] != code:
            made = f" (commit {rec['commit']})" if rec.get("commit") else ""
            why.append(f"made with other code{made} than the code now")
        if settings_hash is not None:
            now = settings_hash(rec)
            if now is None:
                why.append("its claim or profile is no longer in the catalogue")
            elif rec.get("settings_hash") and rec["settings_hash"] != now:
                why.append("its settings in the claims YAML have changed since")
        if why:
            out[key_text(rec)] = "; ".join(why)
    return out


def run_time(run_id: str | None) -> float:
    """When a run started, from its id ("<unix time> <host> <pid>"); 0 for records without one."""
    try:
        return float(str(run_id).split()[0])
    except (ValueError, IndexError):
        return 0.0


def merge_records(*groups: Iterable[Mapping[str, Any]], replaced: list[tuple[dict, dict]] | None = None) -> list[dict]:
    """Union of records; for the same claim, case, profile and tier the newest run wins (records
    without a run id count as oldest), and on a tie the later group. ``replaced``, when given,
    receives a (kept, dropped) pair for every overlap."""
    merged: dict[tuple, dict] = {}
    for group in groups:
        for rec in group:
            key = record_key(rec)
            if key in merged:
                newer = run_time(rec.get("run_id")) >= run_time(merged[key].get("run_id"))
                kept, dropped = (dict(rec), merged[key]) if newer else (merged[key], dict(rec))
                if replaced is not None:
                    replaced.append((kept, dropped))
                merged[key] = kept
            else:
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


def write_html(records: list[dict], runs: list[dict], path: Path | str, stale: Mapping[str, str] | None = None) -> Path:
    """Render the report into ``path``, with the verdict history of its folder when it has one."""
    from harness.report.history import HistoryView
    from harness.report.html import render_html

    atomic_write_text(path, render_html(records, runs, stale, HistoryView.beside(path, (r["claim_id"] for r in records))))
    return Path(path)
