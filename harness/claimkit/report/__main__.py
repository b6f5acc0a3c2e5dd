"""Rebuild the HTML report from one or several claims JSON files, compare their verdicts, or read the verdict history.

    python -m harness.claimkit.report merge reports/claims.json shard2/claims.json -o reports/claims.html
    python -m harness.claimkit.report compare offset0/claims.json offset1/claims.json [--strict]
    python -m harness.claimkit.report compare --history reports --last 3
    python -m harness.claimkit.report history [-k ID] [--profile P] [--since COMMIT|DATE] [--report-dir DIR] [--changes]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness.claimkit.report import history, timeline
from harness.claimkit.report.compare import compare, run_label
from harness.claimkit.report.html import render_html
from harness.claimkit.report.records import (ReportError, atomic_write_text, describe_kind, load_records, merge_records, merge_runs,
                                    run_kind, run_time, stale_reasons, write_json)


def _describe(rec: dict) -> str:
    when = rec.get("recorded") or "an unrecorded time"
    commit = f" (commit {rec['commit']})" if rec.get("commit") else ""
    return f"the run of {when}{commit} from {rec['_file']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.claimkit.report", description=__doc__.strip().splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    merge = sub.add_parser("merge", help="merge claims JSON files into one HTML (and JSON) report")
    merge.add_argument("inputs", nargs="+", type=Path, help="claims JSON files; on the same claim, case, profile and tier the newest run wins")
    merge.add_argument("-o", "--output", type=Path, required=True, help="HTML file to write")
    merge.add_argument("--json", type=Path, help="also write the merged records as JSON here")
    comp = sub.add_parser("compare", help="compare the verdicts of several runs of the same claims (e.g. at several --seed-offset values)")
    comp.add_argument("inputs", nargs="*", type=Path, help="claims JSON files, one run each (e.g. one per seed offset)")
    comp.add_argument("--strict", action="store_true", help="exit 1 when a verdict flips between holds and refuted")
    comp.add_argument("--history", type=Path, metavar="DIR", help="also compare runs from the verdict history in this report folder")
    comp.add_argument("--last", type=int, default=2, metavar="N", help="with --history: its newest N runs (default 2)")
    comp.add_argument("--profile", help="with --history: rows of this profile only")
    comp.add_argument("-k", dest="claims", action="append", default=[], metavar="ID",
                      help="with --history: these claim IDs (or ID prefixes) only")
    hist = sub.add_parser("history", help="every recorded run of the selected claims, or what changed in the latest run")
    hist.add_argument("-k", dest="claims", action="append", default=[], metavar="ID",
                      help="claim IDs or ID prefixes (repeatable; \"A or B\" works too); default: every claim")
    hist.add_argument("--profile", help="rows of this profile only (fast, slow, paper)")
    hist.add_argument("--since", metavar="COMMIT|DATE", help="runs from this commit's first run (or commit time) or this date (YYYY-MM-DD[ HH:MM], UTC) on")
    hist.add_argument("--report-dir", type=Path, default=None,
                      help="the report folder holding history.sqlite (default: $BNCLAIMS_REPORT_DIR, else reports)")
    hist.add_argument("--changes", action="store_true",
                      help="per profile, the verdicts of its latest run that differ from the previous run, and what differed")
    args = parser.parse_args(argv)
    if args.command == "compare":
        return _compare(args)
    if args.command == "history":
        return _history(args)

    groups, runs, replaced = [], [], []
    try:
        kinds: dict[str | None, Path] = {}
        for path in args.inputs:
            records, file_runs = load_records(path)
            groups.append([{**r, "_file": str(path)} for r in records])
            runs.extend(file_runs)
            kinds.update((run_kind(run), path) for run in file_runs)
        if len(kinds) > 1:  # records made under a mutation plugin never mix with real ones
            (a, a_path), (b, b_path) = sorted(kinds.items(), key=lambda kv: str(kv[0]))[:2]
            raise ReportError(f"{a_path} holds {describe_kind(a)} and {b_path} {describe_kind(b)}: they never share a report")
        merged = [{k: v for k, v in r.items() if k != "_file"} for r in merge_records(*groups, replaced=replaced)]
        newest = max(merged, key=lambda r: run_time(r.get("run_id")), default={})
        # without the claims registry, "current" is the code of the newest run merged
        stale = stale_reasons(merged, newest.get("code_version"))
        # the inputs' verdict histories join the one beside the output, each run once
        history_lines, warning = history.merge_into(args.output.parent, [p.parent / history.HISTORY_NAME for p in args.inputs])
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
        view = timeline.HistoryView.beside(args.output, (r["claim_id"] for r in merged))
        atomic_write_text(args.output, render_html(merged, merge_runs(runs), stale, view))
        if args.json:
            write_json(merged, args.json, merge_runs(runs))
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: cannot write {err.filename or args.output}: {err.strerror or err}", file=sys.stderr)
        return 2
    for kept, dropped in replaced:
        case = f" [{kept['case']}]" if kept.get("case") else ""
        where = f"{kept['claim_id']}{case} ({kept['profile']}, {kept.get('tier') or 'no'} tier)"
        kept_measured = (kept.get("later_outcome") or {}).get("run_id", ...) == dropped.get("run_id")
        why = "a run that measured nothing never replaces a measured verdict" if kept_measured else "the newer run wins"
        print(f"{where}: in several files; kept {_describe(kept)} over {_describe(dropped)} ({why})")
    for line in history_lines:
        print(line)
    print(f"wrote {args.output} ({len(merged)} records from {len(args.inputs)} file(s), {len(replaced)} overlap(s))")
    return 0


def _compare(args: argparse.Namespace) -> int:
    try:
        if args.history is None and (args.claims or args.profile):
            raise ReportError("-k and --profile select runs of the history: give --history DIR")
        runs = []
        for path in args.inputs:
            records, _ = load_records(path)
            runs.append((run_label(records, str(path)), records))
        if len({label for label, _ in runs}) < len(runs):  # e.g. two files at the same offset
            runs = [(str(path), records) for path, (_, records) in zip(args.inputs, runs)]
        if args.history is not None:
            if args.last < 1:
                raise ReportError(f"--last {args.last}: expected a number of runs ≥ 1")
            runs += timeline.runs_for_compare(args.history, args.last, args.claims, args.profile)
        result = compare(runs)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(result.markdown())
    return 1 if args.strict and result.flips else 0


def _history(args: argparse.Namespace) -> int:
    directory = args.report_dir or Path(os.environ.get("BNCLAIMS_REPORT_DIR") or "reports")
    path = history.history_path(directory)
    try:
        rows = timeline.select(directory, args.claims, args.profile)
        if args.since:
            since = timeline.since_time(rows, args.since)
            rows = [r for r in rows if r["started"] >= since]
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not rows:
        print(f"{path}: no run matches" + (f" (profile {args.profile})" if args.profile else "")
              + (f" since {args.since}" if args.since else ""))
        return 0
    if args.changes:
        lines = [line for change in timeline.changes(rows) for line in change.lines()]
    else:
        runs = len({r["run_id"] for r in rows})
        lines = [f"{path}: {len(rows)} row(s) from {runs} run(s)", *timeline.history_lines(rows)]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
