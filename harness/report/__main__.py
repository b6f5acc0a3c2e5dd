"""Rebuild the HTML report from one or several claims JSON files.

    python -m harness.report merge reports/claims.json shard2/claims.json -o reports/claims.html
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.report.html import render_html
from harness.report.records import ReportError, atomic_write_text, load_records, merge_records, merge_runs, write_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.report", description=__doc__.strip().splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    merge = sub.add_parser("merge", help="merge claims JSON files into one HTML (and JSON) report")
    merge.add_argument("inputs", nargs="+", type=Path, help="claims JSON files; on the same claim, case, profile and tier the newest run wins")
    merge.add_argument("-o", "--output", type=Path, required=True, help="HTML file to write")
    merge.add_argument("--json", type=Path, help="also write the merged records as JSON here")
    args = parser.parse_args(argv)

    groups, runs = [], []
    try:
        for path in args.inputs:
            records, file_runs = load_records(path)
            groups.append(records)
            runs.extend(file_runs)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    records, runs = merge_records(*groups), merge_runs(runs)
    atomic_write_text(args.output, render_html(records, runs))
    if args.json:
        write_json(records, args.json, runs)
    print(f"wrote {args.output} ({len(records)} records from {len(args.inputs)} file(s); "
          f"where files overlap, the newest run's record was kept)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
