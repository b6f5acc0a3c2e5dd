"""Rebuild the HTML report from one or several claims JSON files.

    python -m harness.report merge reports/claims.json shard2/claims.json -o reports/claims.html
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.report.html import render_html
from harness.report.records import (ReportError, atomic_write_text, load_records, merge_records, merge_runs, run_time,
                                    stale_reasons, write_json)


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
    args = parser.parse_args(argv)

    groups, runs, replaced = [], [], []
    try:
        for path in args.inputs:
            records, file_runs = load_records(path)
            groups.append([{**r, "_file": str(path)} for r in records])
            runs.extend(file_runs)
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
        print(f"{where}: in several files; kept {_describe(kept)} over {_describe(dropped)} (the newer run wins)")
    print(f"wrote {args.output} ({len(merged)} records from {len(args.inputs)} file(s), {len(replaced)} overlap(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
