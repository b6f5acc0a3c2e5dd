"""Claims report: records (one per claim × parametrization) → claims.json → claims.html.

``claims.json`` is a store, not a snapshot: a run updates the records it produced (one per claim,
case, profile and tier; the newest run wins) and keeps every other one, so a ``-k`` run never
loses the rest. xdist workers, shards and separate runs each produce records, and
``python -m harness.claimkit.report merge a.json b.json -o reports/claims.html`` rebuilds one report.
"""

from harness.claimkit.report.html import render_html, write_html, write_report
from harness.claimkit.report.records import SCHEMA_VERSION, ReportError, load_records, merge_records, update_store, write_json

__all__ = [
    "SCHEMA_VERSION",
    "ReportError",
    "load_records",
    "merge_records",
    "render_html",
    "update_store",
    "write_html",
    "write_json",
    "write_report",
]
