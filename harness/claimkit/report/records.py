"""Reading, merging and atomically writing claims records."""

from __future__ import annotations

import itertools
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.claimkit.sources import hash_files, project_modules
from harness.claimkit.vocabulary import MEASURED, VERDICTS

SCHEMA_VERSION = 1
# what the report shows of a record: a file whose records lack one of these is not a claims report
# (a record from an older file may lack the fields of RECORD_DEFAULTS, harness.claimkit.report.html)
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


def suite_version(repo: Path | str, packages: Iterable[str]) -> str:
    """Hash of the code that decides a verdict: every Python file of the suite's ``packages``
    (folders under ``repo``; for the batch-norm suite ``harness/``, ``fixtures/`` and ``claims/``),
    but the report's own rendering. A docs or README edit leaves it alone."""
    repo = Path(repo)
    files = [f for f in project_modules(repo, packages).values() if "report" not in f.relative_to(repo).parts[1:-1]]
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


def later_outcome(rec: Mapping[str, Any]) -> dict:
    """What a record that measured nothing says, to keep next to the measured verdict it does not replace."""
    return {k: rec.get(k) for k in ("verdict", "error", "summary", "run_id", "recorded", "commit", "code_version")}


def kept_over(rec: Mapping[str, Any], other: Mapping[str, Any]) -> tuple[dict, dict]:
    """Of two records of the same claim, case, profile and tier, (the one the store keeps, the
    other): the newer run's (records without a run id count as oldest; on a tie ``rec``), except
    that an outcome that measured nothing (an error, a skip) never replaces a measured verdict:
    the measured record is kept, carrying the newer outcome as ``later_outcome``."""
    newer, older = (dict(rec), dict(other)) if run_time(rec.get("run_id")) >= run_time(other.get("run_id")) else (dict(other), dict(rec))
    if newer["verdict"] not in MEASURED and older["verdict"] in MEASURED:
        return {**older, "later_outcome": later_outcome(newer)}, newer
    return newer, older


def merge_records(*groups: Iterable[Mapping[str, Any]], replaced: list[tuple[dict, dict]] | None = None) -> list[dict]:
    """Union of records; for the same claim, case, profile and tier the one :func:`kept_over`
    keeps (the newest run's, unless it measured nothing and the other did), and on a tie the
    later group's. ``replaced``, when given, receives a (kept, dropped) pair for every overlap."""
    merged: dict[tuple, dict] = {}
    for group in groups:
        for rec in group:
            key = record_key(rec)
            if key in merged:
                kept, dropped = kept_over(rec, merged[key])
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


class StoreKindError(ReportError):
    """A store holds records of another kind of run (real, or made under a mutation plugin)."""


def store_kind(runs: Iterable[Mapping[str, Any]]) -> set[str | None]:
    """The kinds of run a store's run entries describe: None for a real run, else the mutation
    plugins' names (``"harness.bn_identity"``), from the run entries' ``mutation``."""
    return {run_kind(run) for run in runs}


def run_kind(run: Mapping[str, Any]) -> str | None:
    mutation = run.get("mutation")
    return ", ".join(sorted(m["plugin"] for m in mutation)) if mutation else None


def describe_kind(kind: str | None) -> str:
    return f"runs under -p {kind}" if kind else "real runs"


def check_store_kind(path: Path | str, runs: Iterable[Mapping[str, Any]], kind: str | None, option: str) -> None:
    """A store may take a run of ``kind`` only when every run it holds is of that kind: records made
    under a mutation plugin and real ones never share a store. :class:`StoreKindError` naming both."""
    other = sorted((k for k in store_kind(runs) if k != kind), key=str)
    if other:
        raise StoreKindError(f"{option} {Path(path).parent}: its {Path(path).name} holds {describe_kind(other[0])}, and "
                             f"this is one of the {describe_kind(kind)}: the two never share a report; give this run "
                             f"a folder of its own")


def set_aside(path: Path, suffix: str = ".unreadable") -> Path:
    """Rename ``path`` to the first free ``<name><suffix>``, ``<name><suffix>.2``, …: a file set
    aside earlier is never overwritten (the name is claimed with an exclusive create first)."""
    for n in itertools.count(1):
        aside = path.with_name(path.name + suffix + (f".{n}" if n > 1 else ""))
        try:
            os.close(os.open(aside, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            continue
        os.replace(path, aside)
        return aside
    raise AssertionError("unreachable")


def update_store(path: Path | str, records: Iterable[Mapping[str, Any]], run: Mapping[str, Any], fresh: bool = False,
                 then: Callable[[list[dict], list[dict]], Any] | None = None, option: str = "--report-dir"
                 ) -> tuple[list[dict], list[dict], str | None]:
    """Merge ``records`` and ``run`` into the claims JSON at ``path`` under a file lock, keeping
    every record this run did not produce; ``fresh`` ignores what the file holds. ``then(records,
    runs)`` runs under the same lock (the HTML, so that it always shows the store it was made
    from). Returns the merged records and runs, and a warning when an unreadable file had to be
    set aside (``<name>.unreadable``, numbered after the first) rather than merged. A store that
    holds another kind of run (:func:`check_store_kind`) is left as it is: :class:`StoreKindError`."""
    from filelock import FileLock

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    warning = None
    with FileLock(str(path.with_name(f".{path.name}.lock"))):
        old_records, old_runs = [], []
        if path.exists():
            try:
                old_records, old_runs = load_records(path)
            except ReportError as err:
                aside = set_aside(path)
                warning = f"{err}; moved it to {aside} and started a new report"
        check_store_kind(path, old_runs, run_kind(run), option)
        if fresh:
            old_records, old_runs = [], []
        merged, runs = merge_records(old_records, records), merge_runs(old_runs, [run])
        write_json(merged, path, runs)
        if then is not None:
            then(merged, runs)
    return merged, runs, warning
