"""The verdict history: every run's verdicts, decisive values and provenance, in
``<report dir>/history.sqlite``, so that a verdict that changed can be traced to what changed.

``claims.json`` and ``claims.html`` show the newest record of each claim run; the history keeps
every one. A finished or interrupted pytest run appends one row per record (:func:`append_run`)
with its run's provenance: commit (and whether tracked files differed from it), code version,
torch, host, device, CPU and its vector capability, threads, seed offset, start and wall time.
Runs that reach no verdict add nothing: ``--collect-only`` and ``--plan`` make no records, and a
``--smoke`` run's verdicts test code paths at tiny budgets and count for nothing (their flips
would drown the real ones in ``--changes``).

The store is SQLite (stdlib ``sqlite3``) in WAL mode with a busy timeout: concurrent runs on one
report folder wait for each other instead of losing rows, and readers never block a writer. A run
is one transaction, so an interrupted write leaves it wholly in or wholly out. The schema version
is SQLite's ``user_version``; ``MIGRATIONS[k]`` upgrades version k to k + 1, in the transaction
that sets the new version. A file that is not a readable history is set aside under a numbered
name (``history.sqlite.unreadable``, then ``.unreadable.2``, …, never overwritten) and a new history is started; one from a
newer schema is never written to.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from harness.claimkit.report.records import ReportError, run_time
from harness.claimkit.report.records import set_aside as set_aside_file

HISTORY_NAME = "history.sqlite"
BUSY_TIMEOUT_S = 30.0  # how long a write waits for another process's write before giving up with a warning
TIMELINE_RUNS = 8  # runs per claim run shown in the HTML
MAX_LIST = 64  # measured lists longer than this are not stored (per-step curves); per-seed values are

KEY = ("claim_id", "case_name", "profile", "tier")  # one claim run at one tier, as claims.json keys its records

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 0 → 1: runs, one row per record, the evidence conditions of each row
    (
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,       -- "<unix time> <host> <pid>", as in claims.json
            started REAL NOT NULL,         -- unix time
            started_text TEXT,
            wall_time_s REAL,
            interrupted INTEGER NOT NULL,  -- 1: Ctrl-C or SIGTERM; its rows are the claims that finished
            profiles TEXT,                 -- JSON list
            commit_id TEXT,
            dirty INTEGER,                 -- 1: tracked files differed from the commit; NULL: unknown
            code_version TEXT,             -- harness.claimkit.report.records.suite_version
            torch_version TEXT,
            python_version TEXT,
            host TEXT,
            device TEXT,
            cpu TEXT,                      -- CPU model and torch's vector capability (AVX2, AVX512, ...)
            threads INTEGER,
            seed_offset INTEGER,
            workers INTEGER
        )""",
        "CREATE INDEX runs_started ON runs (started)",
        """CREATE TABLE results (
            run_id TEXT NOT NULL REFERENCES runs (run_id),
            claim_id TEXT NOT NULL,
            case_name TEXT NOT NULL,       -- '' for a claim without cases
            profile TEXT NOT NULL,
            tier TEXT NOT NULL,            -- '' when the record had none
            verdict TEXT NOT NULL,
            cause TEXT,
            expected TEXT,
            as_expected INTEGER,
            summary TEXT,
            seeds TEXT,                    -- JSON list
            settings_hash TEXT,
            dataset TEXT,
            wall_time_s REAL,
            main_name TEXT,                -- the main measured value: the first evidence condition's mean,
            main_value REAL,               -- else the first non-integer number the claim measured
            measured TEXT,                 -- JSON: the claim's scalar measured values (and short lists) by name
            PRIMARY KEY (run_id, claim_id, case_name, profile, tier)
        )""",
        "CREATE INDEX results_claim ON results (claim_id, profile, case_name)",
        """CREATE TABLE conditions (
            run_id TEXT NOT NULL,
            claim_id TEXT NOT NULL,
            case_name TEXT NOT NULL,
            profile TEXT NOT NULL,
            tier TEXT NOT NULL,
            position INTEGER NOT NULL,     -- the readout's order; 0 is the main one
            name TEXT NOT NULL,
            mean REAL,
            low REAL,                      -- 95% interval over the seeds
            high REAL,
            state TEXT,                    -- holds / refuted / inconclusive
            threshold REAL,
            op TEXT,
            log INTEGER,
            seed_values TEXT,              -- JSON list, one value per seed
            PRIMARY KEY (run_id, claim_id, case_name, profile, tier, name),
            FOREIGN KEY (run_id, claim_id, case_name, profile, tier) REFERENCES results
        )""",
    ),
    # 1 → 2: sequential seeds: a condition records the seeds it used of its cap, and why it stopped
    (
        "ALTER TABLE conditions ADD COLUMN n INTEGER",
        "ALTER TABLE conditions ADD COLUMN cap INTEGER",
        "ALTER TABLE conditions ADD COLUMN stop TEXT",
        "ALTER TABLE conditions ADD COLUMN lean TEXT",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
TABLES = ("runs", "results", "conditions")


class HistoryError(ReportError):
    """The history cannot be read or written."""


class NewerHistory(HistoryError):
    """Written by a newer schema: never read as ours, never written to."""


class CorruptHistory(HistoryError):
    """Not a readable history: set aside when a run or a merge writes to it."""


class LockedHistory(HistoryError):
    """Another process held the write lock for longer than the busy timeout."""


def history_path(directory: Path | str) -> Path:
    return Path(directory) / HISTORY_NAME


# --- connections ----------------------------------------------------------------------------------

def _error(err: sqlite3.Error, path: Path) -> HistoryError:
    """Our exception for an SQLite error on ``path``."""
    code = (getattr(err, "sqlite_errorcode", None) or 0) & 0xFF  # the primary result code
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return LockedHistory(f"{path} stayed locked by another process for {BUSY_TIMEOUT_S:g} s")
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return CorruptHistory(f"{path} is not a readable history database ({err})")
    return HistoryError(f"{path}: {err}")


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    # a reader opens a writable file read-write all the same (it writes nothing), so that closing
    # the last connection can remove the WAL and shared-memory files beside it
    mode = "rwc" if not readonly else "rw" if os.access(path, os.W_OK) and os.access(path.parent, os.W_OK) else "ro"
    db = sqlite3.connect(f"file:{quote(str(path.absolute()))}?mode={mode}", uri=True, timeout=BUSY_TIMEOUT_S,
                         isolation_level=None)  # transactions are explicit (BEGIN IMMEDIATE … COMMIT)
    db.row_factory = sqlite3.Row
    db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    return db


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taking the write lock at once (waiting up to the busy timeout); rolled
    back on any exception, KeyboardInterrupt (Ctrl-C, SIGTERM in a pytest run) included."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _version(db: sqlite3.Connection, path: Path, schema: str = "main") -> int:
    version = db.execute(f"PRAGMA {schema}.user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise NewerHistory(f"{path} has history schema {version}, newer than this code's {SCHEMA_VERSION}: a newer "
                           "bnclaims wrote it. Update this checkout, or give another --report-dir")
    if version == 0:
        tables = sorted(r[0] for r in db.execute(f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table'"))
        if tables:
            raise CorruptHistory(f"{path} is an SQLite database but not a bnclaims history (tables: {', '.join(tables)})")
    return version


@contextlib.contextmanager
def _opened(path: Path, *, readonly: bool) -> Iterator[sqlite3.Connection]:
    """A connection to ``path``, closed at the end; SQLite's errors become HistoryError."""
    db = None
    try:
        db = _connect(path, readonly=readonly)
        yield db
    except sqlite3.Error as err:
        raise _error(err, path) from None
    finally:
        if db is not None:
            db.close()


@contextlib.contextmanager
def _writable(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to the history at ``path`` (created when missing), checked, in WAL mode and at
    the current schema (older ones migrated)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _opened(path, readonly=False) as db:
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.execute("PRAGMA journal_mode = WAL")  # persistent: readers and one writer at once
        db.execute("PRAGMA foreign_keys = ON")
        check = db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise CorruptHistory(f"{path} is not a readable history database (quick_check: {check})")
        if _version(db, path) < SCHEMA_VERSION:
            with _transaction(db):
                version = _version(db, path)  # another process may have migrated meanwhile
                for statements in MIGRATIONS[version:]:
                    for statement in statements:
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        yield db


@contextlib.contextmanager
def _readable(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to an existing history that writes nothing (any schema up to ours; nothing is migrated)."""
    if not path.is_file():
        raise HistoryError(f"no verdict history at {path}: a claims run with this --report-dir writes one")
    with _opened(path, readonly=True) as db:
        _version(db, path)
        yield db


def check_schema(directory: Path | str) -> None:
    """Raise NewerHistory when the history in ``directory`` is from a newer schema (a run could not
    add its rows); anything else wrong with it is dealt with when the run writes."""
    path = history_path(directory)
    if not path.is_file():
        return
    try:
        with _readable(path):
            pass
    except NewerHistory:
        raise
    except HistoryError:
        pass


def set_aside(path: Path) -> Path:
    """Set ``path`` aside as the report store does (``harness.claimkit.report.records.set_aside``:
    ``<name>.unreadable``, then ``.unreadable.2``, …, never overwriting one), and its WAL file with it."""
    aside = set_aside_file(path)
    wal, shm = (path.with_name(path.name + suffix) for suffix in ("-wal", "-shm"))
    # the WAL belongs to its database: left beside a new file it could be replayed into it
    with contextlib.suppress(FileNotFoundError):
        os.replace(wal, aside.with_name(aside.name + "-wal"))
    with contextlib.suppress(FileNotFoundError):
        shm.unlink()
    return aside


# --- writing --------------------------------------------------------------------------------------

def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def main_value(measured: Mapping[str, Any]) -> tuple[str | None, float | None]:
    """(name, value) of a record's main measured value: the first evidence condition's mean (the
    readout's decisive number over the seeds); for a claim decided without seed-level evidence, the
    first non-integer number it measured (counts such as draws and steps are integers)."""
    evidence = measured.get("evidence")
    if isinstance(evidence, Mapping):
        for name, condition in evidence.items():
            if isinstance(condition, Mapping) and _finite(condition.get("mean")) is not None:
                return str(name), _finite(condition["mean"])
    for name, value in measured.items():
        if name != "evidence" and isinstance(value, float) and math.isfinite(value):
            return str(name), value
    return None, None


def _measured_json(measured: Mapping[str, Any]) -> str:
    """The scalar measured values (and short lists of scalars, e.g. per-seed values) by name;
    figures, curves and the evidence (stored as conditions) are left out."""
    keep = {k: v for k, v in measured.items() if k != "evidence" and (
        _scalar(v) or isinstance(v, list) and len(v) <= MAX_LIST and all(_scalar(x) for x in v))}
    return json.dumps(keep, default=str)


def _key(rec: Mapping[str, Any]) -> dict:
    return {"claim_id": rec["claim_id"], "case_name": rec.get("case") or "", "profile": rec["profile"],
            "tier": rec.get("tier") or ""}


def _condition_rows(rec: Mapping[str, Any], key: dict) -> list[dict]:
    evidence = (rec.get("measured") or {}).get("evidence")
    if not isinstance(evidence, Mapping):
        return []
    rows = []
    for position, (name, c) in enumerate(evidence.items()):
        if not isinstance(c, Mapping):
            continue
        values = c.get("values") if isinstance(c.get("values"), list) else None
        n = c.get("n", len(values) if values is not None else None)  # the shapes before and after sequential seeds
        rows.append({**key, "position": position, "name": str(name), "mean": _finite(c.get("mean")),
                     "low": _finite(c.get("low")), "high": _finite(c.get("high")), "state": c.get("state"),
                     "threshold": _finite(c.get("threshold")), "op": c.get("op"),
                     "log": None if c.get("log") is None else int(bool(c.get("log"))),
                     "seed_values": json.dumps(values, default=str) if values is not None else None,
                     "n": n if isinstance(n, int) else None, "cap": c.get("cap") if isinstance(c.get("cap"), int) else None,
                     "stop": None if c.get("stop") is None else str(c.get("stop")),
                     "lean": None if c.get("lean") is None else str(c.get("lean"))})
    return rows


def _result_row(rec: Mapping[str, Any], key: dict) -> dict:
    measured = rec.get("measured") if isinstance(rec.get("measured"), Mapping) else {}
    name, value = main_value(measured)
    as_expected = rec.get("as_expected")
    return {**key, "verdict": rec["verdict"], "cause": rec.get("cause"), "expected": rec.get("expected"),
            "as_expected": None if as_expected is None else int(bool(as_expected)), "summary": rec.get("summary"),
            "seeds": json.dumps(rec.get("seeds") or [], default=str), "settings_hash": rec.get("settings_hash"),
            "dataset": rec.get("dataset"), "wall_time_s": _finite(rec.get("wall_time_s")),
            "main_name": name, "main_value": value, "measured": _measured_json(measured)}


def _run_row(run: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> dict:
    started = run_time(run.get("id")) or time.time()
    code = run.get("code_version") or next((r["code_version"] for r in records if r.get("code_version")), None)
    dirty = run.get("dirty")
    return {"run_id": run.get("id") or f"{started:.6f} {platform.node()} {os.getpid()}", "started": started,
            "started_text": run.get("started"), "wall_time_s": _finite(run.get("wall_time_s")),
            "interrupted": int(bool(run.get("interrupted"))), "profiles": json.dumps(run.get("profiles") or []),
            "commit_id": run.get("commit"), "dirty": None if dirty is None else int(bool(dirty)), "code_version": code,
            "torch_version": run.get("torch_version"), "python_version": run.get("python_version"),
            "host": run.get("host"), "device": run.get("device"), "cpu": run.get("cpu"), "threads": run.get("threads"),
            "seed_offset": run.get("seed_offset"), "workers": run.get("workers")}


def _insert(db: sqlite3.Connection, table: str, row: Mapping[str, Any]) -> int:
    names = ", ".join(row)
    marks = ", ".join(f":{k}" for k in row)
    return db.execute(f"INSERT OR IGNORE INTO {table} ({names}) VALUES ({marks})", dict(row)).rowcount


def _append(path: Path, run: dict, results: list[dict], conditions: list[dict]) -> int:
    with _writable(path) as db, _transaction(db):
        _insert(db, "runs", run)
        added = sum(_insert(db, "results", {"run_id": run["run_id"], **r}) for r in results)
        for c in conditions:
            _insert(db, "conditions", {"run_id": run["run_id"], **c})
    return added


def append_run(directory: Path | str, records: Iterable[Mapping[str, Any]], run: Mapping[str, Any]) -> tuple[int, str | None]:
    """Add one run (``run``: its description as in claims.json, plus ``dirty``, ``cpu``,
    ``threads`` and ``code_version``, see :func:`provenance`) and one row per record to the
    history in ``directory``. Returns (rows added, a warning or None): a history that cannot be
    written costs this run its rows, never the run; an unreadable one is set aside first."""
    path = history_path(directory)
    records = list(records)
    results, conditions = [], []
    for rec in records:
        key = _key(rec)
        results.append(_result_row(rec, key))
        conditions.extend(_condition_rows(rec, key))
    row = _run_row(run, records)
    lost = f"this run's {len(results)} row(s) were not added to it (claims.json has them)"
    try:
        try:
            return _append(path, row, results, conditions), None
        except CorruptHistory as err:
            from filelock import FileLock

            with FileLock(str(path.with_name(f".{path.name}.lock"))):  # one process sets it aside
                try:
                    return _append(path, row, results, conditions), None  # another one already did
                except CorruptHistory:
                    aside = set_aside(path)
                    added = _append(path, row, results, conditions)
            return added, f"{err}; moved it to {aside.name} and started a new history with this run"
    except NewerHistory as err:
        return 0, f"{err}; {lost}"
    except HistoryError as err:
        return 0, f"{err}: {lost}"
    except OSError as err:
        return 0, f"{path} could not be written ({err.strerror or err}): {lost}"


# --- merging --------------------------------------------------------------------------------------

def merge_into(directory: Path | str, sources: Iterable[Path | str]) -> tuple[list[str], str | None]:
    """Add every run of the histories ``sources`` that the history in ``directory`` lacks (a run
    already there is not added twice). Returns one line per source and a warning when the target
    was unreadable and had to be set aside. A source that cannot be read raises HistoryError."""
    target = history_path(directory)
    lines, warning = [], None
    for source in sources:
        source = Path(source)
        if not source.is_file() or (target.exists() and source.resolve() == target.resolve()):
            continue
        with _readable(source) as src:  # checks the source's schema before anything is written
            if _version(src, source) == 0:
                continue  # an empty history
        try:
            added = _merge_one(target, source)
        except CorruptHistory as err:
            aside = set_aside(target)
            warning = f"{err}; moved it to {aside.name} and started a new history"
            added = _merge_one(target, source)
        lines.append(f"history: added {added[0]} run(s) ({added[1]} row(s)) from {source}; "
                     f"{added[2]} run(s) were there already")
    return lines, warning


def _merge_one(target: Path, source: Path) -> tuple[int, int, int]:
    with _writable(target) as db:
        try:
            db.execute("ATTACH DATABASE ? AS src", (f"file:{quote(str(source.absolute()))}?mode=ro",))
        except sqlite3.Error as err:
            raise HistoryError(str(_error(err, source))) from None  # the source's problem: not one to set the target aside for
        try:
            with _transaction(db):
                counts = []
                for table in TABLES:
                    mine = [r[1] for r in db.execute(f"PRAGMA main.table_info({table})")]
                    theirs = {r[1] for r in db.execute(f"PRAGMA src.table_info({table})")}
                    columns = ", ".join(c for c in mine if c in theirs)  # an older source lacks the newer columns
                    total = db.execute(f"SELECT COUNT(*) FROM src.{table}").fetchone()[0]
                    added = db.execute(f"INSERT OR IGNORE INTO main.{table} ({columns}) SELECT {columns} FROM src.{table}").rowcount
                    counts.append((added, total))
        except sqlite3.Error as err:
            raise HistoryError(str(_error(err, source))) from None  # the target passed quick_check: the source's problem
        finally:
            db.execute("DETACH DATABASE src")
    (runs, run_total), (rows, _), _ = counts
    return runs, rows, run_total - runs


# --- reading --------------------------------------------------------------------------------------

RUN_COLUMNS = ("started", "started_text", "interrupted", "commit_id", "dirty", "code_version", "torch_version",
               "host", "device", "cpu", "threads", "seed_offset", "workers")


def load(directory: Path | str, *, claims: Sequence[str] = (), profile: str | None = None,
         last: int | None = None) -> list[dict]:
    """The history's rows joined with their runs, oldest first: each a dict of the result and run
    columns, ``case`` (None for none), ``seeds`` (a list), ``measured`` (a dict) and
    ``conditions`` (the evidence conditions, in the readout's order). ``claims``: claim IDs or
    ID prefixes to keep; ``last``: only the newest ``last`` rows of each claim run."""
    path = history_path(directory)
    where, params = [], []
    if claims:
        where.append("(" + " OR ".join("r.claim_id = ? OR r.claim_id LIKE ? ESCAPE '\\'" for _ in claims) + ")")
        for c in claims:
            params += [c, c.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "-%"]
    if profile:
        where.append("r.profile = ?")
        params.append(profile)
    query = (f"SELECT r.*, {', '.join('u.' + c for c in RUN_COLUMNS)}, ROW_NUMBER() OVER (PARTITION BY r.claim_id, "
             "r.case_name, r.profile ORDER BY u.started DESC, r.run_id DESC) AS age FROM results r JOIN runs u USING (run_id)"
             + (" WHERE " + " AND ".join(where) if where else ""))
    if last:
        query = f"SELECT * FROM ({query}) WHERE age <= {int(last)}"
    with _readable(path) as db:
        rows = [dict(r) for r in db.execute(query + " ORDER BY started, run_id, claim_id, profile, case_name", params)]
        conditions: dict[tuple, list[dict]] = {}
        if rows:
            runs = sorted({r["run_id"] for r in rows})
            for c in _chunked(db, "SELECT * FROM conditions WHERE run_id IN ({}) ORDER BY position", runs):
                conditions.setdefault((c["run_id"], *(c[k] for k in KEY)), []).append(c)
    for row in rows:
        row["case"] = row["case_name"] or None
        row["seeds"] = json.loads(row["seeds"] or "[]")
        row["measured"] = json.loads(row["measured"] or "{}")
        row["conditions"] = conditions.get((row["run_id"], *(row[k] for k in KEY)), [])
    return rows


def _chunked(db: sqlite3.Connection, query: str, values: list) -> Iterator[dict]:
    """``query`` with its ``IN ({})`` filled with ``values``, a few hundred at a time (SQLite's limit on parameters)."""
    for i in range(0, len(values), 500):
        chunk = values[i:i + 500]
        yield from (dict(r) for r in db.execute(query.format(", ".join("?" * len(chunk))), chunk))
