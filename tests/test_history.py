"""The verdict history (harness.claimkit.report.history): what a run appends, the ``history`` command and
``--changes``, the HTML's timeline, merging and comparing from it, and its reliability: two
writing processes, SIGTERM mid-write, corrupt, locked, old and newer databases."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.claimkit.report import history as H
from harness.claimkit.report import timeline as T
from harness.claimkit.report.__main__ import main
from harness.claimkit.report.html import write_html
from harness.claimkit.report.records import write_json
from tests.test_plugin import CLAIMS, EXPECTED, TESTS, scratch_project
from tests.test_report import record

REPO = Path(__file__).resolve().parents[1]


def condition(mean, state="holds", **extra):
    return {"values": [mean - 0.1, mean, mean + 0.1], "threshold": 1.0, "op": ">=", "log": False, "mean": mean,
            "low": mean - 0.2, "high": mean + 0.2, "state": state, **extra}


def claim(cid="B-X-1", verdict="holds", mean=None, **extra):
    measured = {"draws": 10, "ratio": 1.5} if mean is None else {"evidence": {"ratio ≥ 1": condition(mean, verdict)}, "steps": 5}
    measured = extra.pop("measured", measured)
    return record(nodeid=f"claims/t.py::test[{cid}-fast]", claim=cid, verdict=verdict, measured=measured, tier="stand-in",
                  seeds=[0, 1, 2], settings_hash="s1", code_version="c1", **extra)


def run(i, **extra):
    """Run i of a made-up history: started i days after a fixed day."""
    started = 1_700_000_000 + i * 86400
    return {"id": f"{started}.0 host{i} {i}", "started": T._utc(started), "commit": "aaa1111", "dirty": False,
            "torch_version": "2.5", "device": "cpu (1 thread)", "cpu": "EPYC (AVX2)", "host": "box", "threads": 1,
            "seed_offset": 0, "profiles": ["fast"], "wall_time_s": 3.0, "interrupted": False, "code_version": "c1", **extra}


def append(directory, i, records, **extra):
    added, warning = H.append_run(directory, records, run(i, **extra))
    assert warning is None, warning
    return added


# --- what a run appends ---------------------------------------------------------------------------

def test_a_run_appends_one_row_per_record_with_its_provenance(tmp_path):
    assert append(tmp_path, 0, [claim(mean=1.5), claim("B-X-2", case="k=1")], dirty=True) == 2
    rows = H.load(tmp_path)
    assert [(r["claim_id"], r["case"]) for r in rows] == [("B-X-1", None), ("B-X-2", "k=1")]
    first = rows[0]
    assert (first["commit_id"], first["dirty"], first["torch_version"], first["cpu"], first["threads"], first["host"]) == (
        "aaa1111", 1, "2.5", "EPYC (AVX2)", 1, "box")
    assert (first["seeds"], first["settings_hash"], first["code_version"], first["tier"]) == ([0, 1, 2], "s1", "c1", "stand-in")
    assert (first["main_name"], first["main_value"]) == ("ratio ≥ 1", 1.5)
    assert first["measured"] == {"steps": 5}  # the evidence lives in conditions
    (c,) = first["conditions"]
    assert (c["name"], c["mean"], c["low"], c["high"], c["state"], c["n"], json.loads(c["seed_values"])) == (
        "ratio ≥ 1", 1.5, 1.3, 1.7, "holds", 3, [1.4, 1.5, 1.6])
    with sqlite3.connect(H.history_path(tmp_path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == H.SCHEMA_VERSION


def test_the_main_value_is_the_first_conditions_mean_else_the_first_non_integer_number():
    assert H.main_value({"evidence": {"a": {"mean": 2.0}, "b": {"mean": 3.0}}, "x": 0.5}) == ("a", 2.0)
    assert H.main_value({"draws": 400, "ok": True, "worst_error": 1e-15, "median": 0.3}) == ("worst_error", 1e-15)
    assert H.main_value({"evidence": {"a": {"mean": float("nan")}}, "n": 3}) == (None, None)


def test_both_shapes_of_the_evidence_record_are_stored(tmp_path):
    sequential = condition(1.2, n=5, cap=10, stop="decided", lean="above")
    append(tmp_path, 0, [claim(mean=1.2), record(claim="B-X-2", measured={"evidence": {"c": sequential}})])
    old, new = (r["conditions"][0] for r in H.load(tmp_path))
    assert (old["n"], old["cap"], old["stop"], old["lean"]) == (3, None, None, None)  # n: the values it has
    assert (new["n"], new["cap"], new["stop"], new["lean"]) == (5, 10, "decided", "above")
    assert T.seeds_text(H.load(tmp_path, claims=["B-X-2"])[0]) == "0 (5 of ≤ 10, decided)"


# --- python -m harness.claimkit.report history -------------------------------------------------------------

@pytest.fixture
def two_runs(tmp_path):
    append(tmp_path, 0, [claim(mean=1.5), claim("B-X-2", mean=2.0), claim("S-Y-1")])
    append(tmp_path, 1, [claim(verdict="refuted", mean=0.5), claim("B-X-2", mean=2.1)], commit="bbb2222", threads=2)
    return tmp_path


def test_history_lists_one_line_per_run_of_each_selected_claim(two_runs, capsys):
    assert main(["history", "--report-dir", str(two_runs), "-k", "B-X-1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("history.sqlite: 2 row(s) from 2 run(s)") and out[1] == "B-X-1 (fast) · stand-in tier"
    assert len(out) == 4
    for line, commit, threads, verdict, value in ((out[2], "aaa1111", 1, "holds", "1.5 [1.3, 1.7]"),
                                                  (out[3], "bbb2222", 2, "refuted", "0.5 [0.3, 0.7]")):
        assert commit in line and "torch 2.5" in line and "box: cpu (1 thread), EPYC (AVX2)" in line
        assert f"{threads} thread(s)" in line and "offset 0" in line and "seeds 0–2" in line and verdict in line
        assert line.endswith(f"ratio ≥ 1 = {value} (needs ≥ 1)")


def test_history_selects_by_id_prefix_profile_and_since(two_runs, capsys):
    main(["history", "--report-dir", str(two_runs), "-k", "B-X"])
    assert capsys.readouterr().out.splitlines()[0].endswith("4 row(s) from 2 run(s)")
    main(["history", "--report-dir", str(two_runs), "-k", "B-X-2 or S-Y-1"])
    assert capsys.readouterr().out.splitlines()[0].endswith("3 row(s) from 2 run(s)")
    main(["history", "--report-dir", str(two_runs), "--since", "bbb2222"])
    assert capsys.readouterr().out.splitlines()[0].endswith("2 row(s) from 1 run(s)")
    main(["history", "--report-dir", str(two_runs), "--since", T._utc(1_700_000_000 + 43200)[:16]])
    assert capsys.readouterr().out.splitlines()[0].endswith("2 row(s) from 1 run(s)")
    main(["history", "--report-dir", str(two_runs), "--profile", "slow"])
    assert capsys.readouterr().out.strip().endswith("no run matches (profile slow)")


def test_since_a_commit_without_runs_is_its_git_commit_time(tmp_path):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    when = float(subprocess.run(["git", "show", "-s", "--format=%ct", head], cwd=REPO, capture_output=True, text=True).stdout)
    assert T.since_time([], head[:10], REPO) == when


@pytest.mark.parametrize("args, message", [
    (["-k", "B-NOPE"], "-k B-NOPE: no run of such a claim in * (it holds: B-X-1, B-X-2, S-Y-1)"),
    (["--since", "yesterday"], "--since 'yesterday': not a date (YYYY-MM-DD, optionally HH:MM) nor a commit*"),
    (["--since", "2024-13-45"], "--since '2024-13-45': not a valid date (month must be in 1..12)"),
])
def test_bad_history_arguments_are_one_error_line(two_runs, capsys, args, message):
    assert main(["history", "--report-dir", str(two_runs), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.fullmatch(re.escape("error: " + message).replace(r"\*", ".*") + "\n", err), err


def test_a_folder_without_history_is_one_error_line(tmp_path, capsys):
    assert main(["history", "--report-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: no verdict history at {tmp_path / 'history.sqlite'}: a claims run with this --report-dir writes one\n"


def test_changes_name_what_differed_between_the_runs(two_runs, capsys):
    assert main(["history", "--report-dir", str(two_runs), "--changes"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (f"fast: the run of {T._utc(1_700_086_400)} at bbb2222 on box: 1 of 2 verdict(s) changed since the "
                      "previous run")
    assert out[1] == f"  B-X-1 (fast): holds → refuted (previous: {T._utc(1_700_000_000)}); commit aaa1111 → bbb2222; threads 1 → 2"
    append(two_runs, 2, [claim(verdict="refuted", mean=0.5)], commit="bbb2222", threads=2)
    main(["history", "--report-dir", str(two_runs), "--changes"])
    assert "no verdict changed since the previous run (1 claim run(s) compared)" in capsys.readouterr().out


def test_changes_compare_each_claim_run_with_its_own_previous_run(tmp_path):
    append(tmp_path, 0, [claim(), claim("B-X-2")])
    append(tmp_path, 1, [claim("B-X-2", verdict="refuted")], seed_offset=1)  # a -k run
    append(tmp_path, 2, [claim(verdict="inconclusive"), claim("B-X-3")], torch_version="2.6")
    (change,) = T.changes(H.load(tmp_path))
    assert (change.compared, change.first) == (1, 1)
    (before, after, what), = change.changed
    assert (before["run_id"], after["verdict"], what) == (run(0)["id"], "inconclusive", ["torch 2.5 → 2.6"])
    same = T.differences(H.load(tmp_path)[0], H.load(tmp_path)[0])
    assert same == ["nothing recorded differs (same commit, torch, machine, threads, seeds and settings)"]


def test_a_first_run_has_nothing_to_compare(tmp_path, capsys):
    append(tmp_path, 0, [claim()])
    main(["history", "--report-dir", str(tmp_path), "--changes"])
    assert capsys.readouterr().out.strip().endswith("is the first run of its 1 claim run(s): nothing to compare")


# --- the HTML -------------------------------------------------------------------------------------

def test_the_html_shows_what_changed_and_each_claims_last_runs(two_runs):
    recs = [claim(verdict="refuted", mean=0.5), claim("B-X-2", mean=2.1), claim("S-Y-1", paper="santurkar2018")]
    html = write_html(recs, [], two_runs / "claims.html").read_text(encoding="utf-8")
    assert "Changed since the previous run of profile fast</strong>: 1 of 2" in html
    assert '<a href="#B-X-1">B-X-1</a>' in html and "commit aaa1111 → bbb2222; threads 1 → 2" in html
    section = html[html.index('id="B-X-1"'):html.index('id="B-X-2"')]
    chips = re.findall(r'<span class="chip v-(\w+)" title="([^"]*)">\w+<small>([^<]*)</small><small>([^<]*)</small>', section)
    assert [(v, commit_host) for v, _, _, commit_host in chips] == [("holds", "aaa1111 · box"), ("refuted", "bbb2222 · box")]
    assert "box: cpu (1 thread), EPYC (AVX2)" in chips[0][1] and "seeds 0–2" in chips[0][1]
    assert section.count('<svg class="spark"') == 1 and section.count("<circle") == 2
    assert "latest main measured value: ratio ≥ 1 = 0.5 [0.3, 0.7] (needs ≥ 1)" in section
    assert not re.search(r"https?://|url\(", html)  # still self-contained


def test_the_html_says_no_change_and_escapes_what_the_history_holds(tmp_path):
    evil = "<script>alert(1)</script>"
    rec = claim(measured={"evidence": {evil: condition(1.5)}})
    append(tmp_path, 0, [rec], host=evil)
    append(tmp_path, 1, [rec], host=evil)
    html = write_html([rec], [], tmp_path / "claims.html").read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "No change since the previous run of profile fast</strong>" in html


def test_without_a_history_the_html_has_no_history_blocks(tmp_path):
    html = write_html([claim()], [], tmp_path / "claims.html").read_text(encoding="utf-8")
    assert 'class="hist' not in html and "<svg" not in html


def test_an_unreadable_history_is_named_in_the_html_not_an_error(tmp_path):
    H.history_path(tmp_path).write_bytes(b"garbage" * 100)
    html = write_html([claim()], [], tmp_path / "claims.html").read_text(encoding="utf-8")
    assert "Verdict history not shown:" in html and "is not a readable history database" in html


def test_the_sparkline_plots_one_named_value_on_a_log_scale_when_it_spans_decades():
    rows = [{"main_name": "err", "main_value": v, "conditions": [], "verdict": "holds"} for v in (1e-15, 1e-12, 1e-9)]
    rows.insert(1, {"main_name": "other", "main_value": 5.0, "conditions": [], "verdict": "holds"})  # a gap
    svg = str(T.sparkline(rows))
    assert svg.count("<circle") == 3 and "(log scale)" in svg
    ys = [float(y) for y in re.findall(r'cy="([\d.]+)"', svg)]
    assert ys[0] - ys[1] == pytest.approx(ys[1] - ys[2], abs=0.2)  # equal steps in log10
    assert T.sparkline([{"main_name": None, "main_value": None, "conditions": [], "verdict": "error"}]) is None


# --- merge and compare ----------------------------------------------------------------------------

def test_merge_merges_histories_without_duplicating_a_run(tmp_path, capsys):
    a, b, out = tmp_path / "a", tmp_path / "b", tmp_path / "out"
    append(a, 0, [claim()])
    append(a, 1, [claim(verdict="refuted")])
    append(b, 1, [claim(verdict="refuted")])  # the same run, e.g. a copied folder
    append(b, 2, [claim("B-X-2")])
    write_json([claim(verdict="refuted", run_id=run(1)["id"])], a / "claims.json")
    write_json([claim("B-X-2", run_id=run(2)["id"])], b / "claims.json")
    args = ["merge", str(a / "claims.json"), str(b / "claims.json"), "-o", str(out / "claims.html")]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"history: added 2 run(s) (2 row(s)) from {a / 'history.sqlite'}; 0 run(s) were there already" in printed
    assert f"history: added 1 run(s) (1 row(s)) from {b / 'history.sqlite'}; 1 run(s) were there already" in printed
    assert [r["run_id"] for r in H.load(out)] == [run(i)["id"] for i in range(3)]
    assert main(args) == 0  # again: nothing added twice
    assert len(H.load(out)) == 3 and "added 0 run(s)" in capsys.readouterr().out
    assert "chip v-refuted" in (out / "claims.html").read_text(encoding="utf-8")


def test_merge_refuses_a_newer_history_in_one_line(tmp_path, capsys):
    append(tmp_path / "a", 0, [claim()])
    write_json([claim()], tmp_path / "a" / "claims.json")
    with sqlite3.connect(H.history_path(tmp_path / "a")) as db:
        db.execute("PRAGMA user_version = 99")
    assert main(["merge", str(tmp_path / "a" / "claims.json"), "-o", str(tmp_path / "out" / "claims.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has history schema 99, newer than this code's" in err


def test_compare_reads_its_runs_from_the_history(tmp_path, capsys):
    for offset, verdict in enumerate(("holds", "refuted", "holds")):
        append(tmp_path, offset, [claim(verdict=verdict), claim("B-X-2")], seed_offset=offset)
    assert main(["compare", "--history", str(tmp_path), "--last", "3", "--strict"]) == 1  # B-X-1 flipped
    out = capsys.readouterr().out
    assert "in 3 runs (offset 0, offset 1, offset 2)" in out and "| B-X-1 (fast) | stand-in | holds | refuted | holds | flipped |" in out
    assert main(["compare", "--history", str(tmp_path), "-k", "B-X-2"]) == 0  # the newest two runs
    assert "Verdicts of 1 claim runs in 2 runs (offset 1, offset 2)" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [(["--history", "DIR", "--last", "0"], "--last 0: expected a number of runs ≥ 1"),
                                           (["-k", "B-X-1", "a.json", "b.json"], "-k and --profile select runs of the history: give --history DIR")])
def test_bad_compare_arguments_are_one_error_line(tmp_path, capsys, args, message):
    append(tmp_path, 0, [claim()])
    assert main(["compare", *[str(tmp_path) if a == "DIR" else a for a in args]]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"


# --- concurrency and interruption -----------------------------------------------------------------

WRITER = textwrap.dedent("""
    import json, signal, sys, time
    from pathlib import Path
    from harness.claimkit.report import history as H
    from tests.test_history import claim, run

    directory, first, count, rows, go = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    if len(sys.argv) > 6:  # as under pytest: SIGTERM raises KeyboardInterrupt
        signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    records = [claim(f"B-W-{i}", mean=1.0 + i) for i in range(rows)]
    Path(go + f".ready{first}").touch()
    while not Path(go).exists():
        time.sleep(0.005)
    for i in range(first, first + count):
        added, warning = H.append_run(directory, records, run(i))
        assert warning is None and added == rows, warning
        print(i, flush=True)
""")


def _writer(tmp_path, first, count, rows, *flags):
    script = tmp_path / "writer.py"
    script.write_text(WRITER, encoding="utf-8")
    return subprocess.Popen([sys.executable, str(script), str(tmp_path / "h"), str(first), str(count), str(rows),
                             str(tmp_path / "go"), *flags], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def _wait_ready(tmp_path, firsts):
    deadline = time.time() + 120
    while not all((tmp_path / f"go.ready{f}").exists() for f in firsts):
        assert time.time() < deadline, "writers did not start"
        time.sleep(0.02)
    (tmp_path / "go").touch()


def _consistent(directory, rows_per_run):
    with sqlite3.connect(H.history_path(directory)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        per_run = db.execute("SELECT u.run_id, COUNT(r.claim_id) FROM runs u LEFT JOIN results r USING (run_id) GROUP BY u.run_id").fetchall()
        assert all(n == rows_per_run for _, n in per_run), per_run  # every run wholly in, or wholly out
        return len(per_run)


def test_two_processes_writing_at_once_lose_no_row(tmp_path):
    writers = [_writer(tmp_path, first, 30, 20) for first in (0, 1000)]
    _wait_ready(tmp_path, (0, 1000))
    for w in writers:
        out, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
    assert _consistent(tmp_path / "h", 20) == 60
    assert len(H.load(tmp_path / "h")) == 1200


@pytest.mark.parametrize("flags", [(), ("keyboard-interrupt",)], ids=["default-sigterm", "sigterm-as-ctrl-c"])
def test_sigterm_while_writing_leaves_a_consistent_history(tmp_path, flags):
    writer = _writer(tmp_path, 0, 10_000, 400, *flags)
    _wait_ready(tmp_path, (0,))
    for _ in range(3):  # let it commit a few runs, then stop it in the middle of the next ones
        assert writer.stdout.readline(), writer.stderr.read()
    writer.send_signal(signal.SIGTERM)
    writer.communicate(timeout=60)
    assert writer.returncode != 0
    runs = _consistent(tmp_path / "h", 400)
    assert runs >= 3
    append(tmp_path / "h", 20_000, [claim()])  # and it takes the next run


# --- broken, locked, old and newer databases ------------------------------------------------------

def test_a_corrupt_history_is_set_aside_under_a_numbered_name_never_overwritten(tmp_path):
    path = H.history_path(tmp_path)
    for n, garbage in enumerate((b"not a database" * 100, b"also not one" * 100), start=1):
        path.write_bytes(garbage)
        added, warning = H.append_run(tmp_path, [claim()], run(n))
        assert added == 1 and f"moved it to history.sqlite.unreadable{'' if n == 1 else f'.{n}'} and started a new history with this run" in warning
        assert "is not a readable history database (file is not a database)" in warning
    assert (tmp_path / "history.sqlite.unreadable").read_bytes() == b"not a database" * 100
    assert (tmp_path / "history.sqlite.unreadable.2").read_bytes() == b"also not one" * 100
    assert [r["run_id"] for r in H.load(tmp_path)] == [run(2)["id"]]


def test_a_history_with_damaged_pages_is_set_aside(tmp_path):
    for i in range(30):
        append(tmp_path, i, [claim(f"B-X-{j}", mean=1.0) for j in range(20)])
    path = H.history_path(tmp_path)
    data = bytearray(path.read_bytes())
    data[8192:16384] = b"\xff" * 8192  # pages 3 and 4 of 4096 bytes
    path.write_bytes(bytes(data))
    added, warning = H.append_run(tmp_path, [claim()], run(99))
    assert added == 1 and "moved it to history.sqlite.unreadable" in warning


def test_a_foreign_sqlite_database_is_set_aside(tmp_path):
    with sqlite3.connect(H.history_path(tmp_path)) as db:
        db.execute("CREATE TABLE photos (x)")
    _, warning = H.append_run(tmp_path, [claim()], run(0))
    assert "is an SQLite database but not a bnclaims history (tables: photos)" in warning
    assert (tmp_path / "history.sqlite.unreadable").exists()


def test_a_locked_history_costs_the_run_its_rows_with_one_warning(tmp_path, monkeypatch):
    append(tmp_path, 0, [claim()])
    monkeypatch.setattr(H, "BUSY_TIMEOUT_S", 0.2)
    holder = sqlite3.connect(H.history_path(tmp_path), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        added, warning = H.append_run(tmp_path, [claim(), claim("B-X-2")], run(1))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert added == 0 and warning == (f"{H.history_path(tmp_path)} stayed locked by another process for 0.2 s: this run's "
                                      "2 row(s) were not added to it (claims.json has them)")
    assert not list(tmp_path.glob("*.unreadable*")) and len(H.load(tmp_path)) == 1


def _schema_1(directory):
    """A history as schema 1 wrote it, before conditions had n, cap, stop and lean."""
    directory.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(H.history_path(directory), isolation_level=None)
    for statement in H.MIGRATIONS[0]:
        db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO runs (run_id, started, interrupted, commit_id) VALUES ('1.0 old 1', 1.0, 0, 'old1234')")
    db.execute("INSERT INTO results (run_id, claim_id, case_name, profile, tier, verdict, seeds, main_name, main_value) "
               "VALUES ('1.0 old 1', 'B-X-1', '', 'fast', 'stand-in', 'holds', '[0]', 'ratio ≥ 1', 1.4)")
    db.execute("INSERT INTO conditions (run_id, claim_id, case_name, profile, tier, position, name, mean) "
               "VALUES ('1.0 old 1', 'B-X-1', '', 'fast', 'stand-in', 0, 'ratio ≥ 1', 1.4)")
    db.close()


def test_an_old_schema_history_is_read_as_it_is_and_upgraded_by_the_next_run(tmp_path):
    _schema_1(tmp_path)
    (old,) = H.load(tmp_path)  # reading migrates nothing
    assert old["commit_id"] == "old1234" and old["conditions"][0].get("n") is None
    append(tmp_path, 1, [claim(mean=1.2, measured={"evidence": {"ratio ≥ 1": condition(1.2, n=4, cap=8)}})])
    with sqlite3.connect(H.history_path(tmp_path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == H.SCHEMA_VERSION
    rows = H.load(tmp_path)
    assert [r["commit_id"] for r in rows] == ["old1234", "aaa1111"] and rows[1]["conditions"][0]["cap"] == 8


def test_an_old_schema_history_merges_into_a_current_one(tmp_path, capsys):
    _schema_1(tmp_path / "old")
    write_json([claim()], tmp_path / "old" / "claims.json")
    assert main(["merge", str(tmp_path / "old" / "claims.json"), "-o", str(tmp_path / "new" / "claims.html")]) == 0
    assert [r["run_id"] for r in H.load(tmp_path / "new")] == ["1.0 old 1"]


def test_a_newer_schema_history_is_a_clear_error_and_left_alone(tmp_path, capsys):
    append(tmp_path, 0, [claim()])
    with sqlite3.connect(H.history_path(tmp_path)) as db:
        db.execute(f"PRAGMA user_version = {H.SCHEMA_VERSION + 1}")
    before = H.history_path(tmp_path).read_bytes()
    newer = (f"{H.history_path(tmp_path)} has history schema {H.SCHEMA_VERSION + 1}, newer than this code's "
             f"{H.SCHEMA_VERSION}: a newer bnclaims wrote it. Update this checkout, or give another --report-dir")
    assert H.append_run(tmp_path, [claim()], run(1)) == (0, f"{newer}; this run's 1 row(s) were not added to it "
                                                            "(claims.json has them)")
    assert H.history_path(tmp_path).read_bytes() == before and not list(tmp_path.glob("*.unreadable*"))
    assert main(["history", "--report-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: {newer}\n"
    with pytest.raises(H.NewerHistory):
        H.check_schema(tmp_path)


# --- the pytest plugin ----------------------------------------------------------------------------

@pytest.fixture
def project(pytester):
    return scratch_project(pytester, {"scratch.yaml": CLAIMS, "expected_verdicts.yaml": EXPECTED, "test_scratch.py": TESTS})


def test_each_claims_run_appends_its_records_and_the_html_shows_them(project):
    project.runpytest("claims", "-m", "fast").assert_outcomes(passed=3, xfailed=2)
    project.runpytest("claims", "-m", "fast", "-k", "B-T-HOLDS").assert_outcomes(passed=1)
    reports = project.path / "reports"
    rows = H.load(reports)
    assert len(rows) == 6 and len({r["run_id"] for r in rows}) == 2
    holds = [r for r in rows if r["claim_id"] == "B-T-HOLDS"]
    assert [r["verdict"] for r in holds] == ["holds", "holds"] and holds[0]["main_name"] is None  # value: an integer
    assert holds[0]["threads"] == 1 and holds[0]["torch_version"] and holds[0]["cpu"] and holds[0]["code_version"]
    html = (reports / "claims.html").read_text(encoding="utf-8")
    assert "No change since the previous run of profile fast</strong>" in html
    assert html[html.index('id="B-T-HOLDS"'):html.index('id="B-T-REFUTED"')].count('class="chip v-holds"') == 2


def test_under_xdist_the_controller_appends_the_workers_records_once(project, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the subprocess imports this checkout's harness
    project.runpytest_subprocess("claims", "-m", "fast", "-n", "2", "-p", "xdist").assert_outcomes(passed=3, xfailed=2)
    rows = H.load(project.path / "reports")
    assert len(rows) == 5 and len({r["run_id"] for r in rows}) == 1 and rows[0]["workers"] == 2


@pytest.mark.parametrize("args", [("--collect-only",), ("--plan", "--plan-tflops", "1")])
def test_collect_only_and_plan_write_no_history(project, args):
    project.runpytest("claims", "-m", "fast", *args)
    assert not H.history_path(project.path / "reports").exists()


def test_a_smoke_run_writes_no_history(pytester):
    from tests.test_plugin import SMOKE_CLAIMS, SMOKE_TEST

    smoky = scratch_project(pytester, {"smoke.yaml": SMOKE_CLAIMS, "test_smoke.py": SMOKE_TEST})
    smoky.runpytest("claims", "--smoke").assert_outcomes(passed=2, failed=1, deselected=1)
    assert (smoky.path / "reports" / "smoke" / "claims.json").exists()
    assert not H.history_path(smoky.path / "reports" / "smoke").exists()


def test_an_interrupted_run_appends_what_finished_marked_interrupted(project, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the subprocess imports this checkout's harness
    project.makepyfile(test_zz_term='''
        import os, signal, pytest

        @pytest.mark.claim("B-T-HOLDS")
        def test_term(verdict):
            os.kill(os.getpid(), signal.SIGTERM)
    ''')
    result = project.runpytest_subprocess("claims/test_scratch.py", "test_zz_term.py", "-m", "fast")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    rows = H.load(project.path / "reports")
    assert len(rows) == 5 and all(r["interrupted"] == 1 for r in rows)


def test_a_corrupt_history_warns_once_and_the_run_still_writes_its_report(project):
    (project.path / "reports").mkdir()
    H.history_path(project.path / "reports").write_bytes(b"\x00 garbage " * 500)
    result = project.runpytest("claims", "-m", "fast")
    result.assert_outcomes(passed=3, xfailed=2)
    result.stdout.fnmatch_lines(["WARNING verdict history: *history.sqlite is not a readable history database (file is "
                                 "not a database); moved it to history.sqlite.unreadable and started a new history*"])
    assert result.stdout.str().count("WARNING") == 1
    assert (project.path / "reports" / "claims.json").exists() and len(H.load(project.path / "reports")) == 5


def test_a_newer_schema_history_stops_the_run_before_any_claim(project):
    (project.path / "reports").mkdir()
    with sqlite3.connect(H.history_path(project.path / "reports")) as db:
        db.execute("PRAGMA user_version = 99")
    result = project.runpytest("claims", "-m", "fast")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*verdict history: *history.sqlite has history schema 99, newer than this code's*"])
    assert not (project.path / "reports" / "claims.json").exists()
    project.runpytest("claims", "-m", "fast", "--collect-only")  # collecting adds no rows: not stopped
