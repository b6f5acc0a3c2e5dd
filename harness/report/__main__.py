"""Rebuild the HTML report from one or several claims JSON files, or compare their verdicts.

    python -m harness.report merge reports/claims.json shard2/claims.json -o reports/claims.html
    python -m harness.report compare offset0/claims.json offset1/claims.json [--strict]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.report.compare import compare, run_label
from harness.report.html import render_html
from harness.report.records import (ReportError, atomic_write_text, describe_kind, load_records, merge_records, merge_runs,
                                    run_kind, run_time, stale_reasons, write_json)


def _describe(rec: dict) -> str:
    when = rec.get("recorded") or "an unrecorded time"
    commit = f" (commit {rec['commit']})" if rec.get("commit") else ""
    return f"the run of {when}{commit} from {rec['_file']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.report", description=__doc__.strip().splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    merge = sub.add_parser("merge", help="merge claims JSON files into one HTML (and JSON) report")
    merge.add_argument("inputs", nargs="+", type=Path, help="claims JSON files; on the same claim, case, profile and tier the newest run wins")
    merge.add_argument("-o", "--output", type=Path, required=True, help="HTML file to write")
    merge.add_argument("--json", type=Path, help="also write the merged records as JSON here")
    comp = sub.add_parser("compare", help="compare the verdicts of several runs of the same claims (e.g. at several --seed-offset values)")
    comp.add_argument("inputs", nargs="+", type=Path, help="claims JSON files, one run each (e.g. one per seed offset)")
    comp.add_argument("--strict", action="store_true", help="exit 1 when a verdict flips between holds and refuted")
    args = parser.parse_args(argv)
    if args.command == "compare":
        return _compare(args.inputs, args.strict)

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
        atomic_write_text(args.output, render_html(merged, merge_runs(runs), stale))
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
    print(f"wrote {args.output} ({len(merged)} records from {len(args.inputs)} file(s), {len(replaced)} overlap(s))")
    return 0


def _compare(paths: list[Path], strict: bool) -> int:
    try:
        runs = []
        for path in paths:
            records, _ = load_records(path)
            runs.append((run_label(records, str(path)), records))
        if len({label for label, _ in runs}) < len(runs):  # e.g. two files at the same offset
            runs = [(str(path), records) for path, (_, records) in zip(paths, runs)]
        result = compare(runs)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(result.markdown())
    return 1 if strict and result.flips else 0


if __name__ == "__main__":
    sys.exit(main())
