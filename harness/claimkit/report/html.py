"""Claims records → one self-contained HTML page (inline CSS, figures as data URIs).

Everything that comes from YAML or measurements goes through Jinja's autoescaping; figures are
embedded as ``<img src="data:image/svg+xml;base64,…">`` so their markup can never run as part of
the page, and nothing refers to any URL outside the file.
"""

from __future__ import annotations

import base64
import datetime as _dt
import math
from collections import Counter, defaultdict
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from harness.claimkit.registry import PAPERS, SMOKE_TIER, TIERS

DEFAULT_TITLE = "Which claims hold?"  # a run names its suite's (``pytest_claimkit_title``)
from harness.claimkit.report.formatting import format_seeds, format_value, seconds_text
from harness.claimkit.report.records import atomic_write_text, key_text, write_json
from harness.claimkit.vocabulary import MEASURED, VERDICTS


def _svg_data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _group(records: list[dict], titles: Mapping[str, str]) -> list[dict]:
    """papers → sections → claims → records, in the papers' order: sections by their § number,
    claims as the claims YAML lists them (a record's ``order``; by ID for records without one)."""
    papers: dict[str, dict[str, dict[str, list[dict]]]] = defaultdict(lambda: defaultdict(dict))
    for rec in records:
        papers[rec["paper"]][rec.get("section", "")].setdefault(rec["claim_id"], []).append(rec)
    order = {p: i for i, p in enumerate(titles)}
    out = []
    for paper in sorted(papers, key=lambda p: (order.get(p, len(order)), p)):
        sections = []
        for section in sorted(papers[paper]):
            claims = []
            by_order = lambda cid: (min(r.get("order", math.inf) for r in papers[paper][section][cid]), cid)  # noqa: E731
            for cid in sorted(papers[paper][section], key=by_order):
                recs = sorted(papers[paper][section][cid], key=lambda r: (_tier_rank(r), r.get("profile", ""), r.get("case") or ""))
                claims.append({"id": cid, "info": recs[0], "records": recs, "headline": headline(recs)})
            sections.append({"name": section, "claims": claims})
        out.append({"id": paper, "title": titles.get(paper, paper), "sections": sections})
    return out


def _tier_rank(record: dict) -> int:
    tier = record.get("tier")
    return TIERS.index(tier) if tier in TIERS else len(TIERS)


def headline(records: list[dict]) -> dict | None:
    """A claim's verdict at the highest tier that measured it: {tier, verdict, text}.

    Several records at that tier (cases, profiles) agree or are counted: "2 holds, 1 refuted"."""
    measured = [r for r in records if r.get("verdict") in MEASURED and r.get("tier") != SMOKE_TIER]  # smoke: never a verdict
    if not measured:
        return None
    best = min(_tier_rank(r) for r in measured)
    top = [r for r in measured if _tier_rank(r) == best]
    counts = Counter(r["verdict"] for r in top)
    verdict = next(iter(counts)) if len(counts) == 1 else "mixed"
    text = ", ".join(f"{counts[v]} {v}" for v in MEASURED if counts.get(v)) if len(top) > 1 else top[0]["verdict"]
    return {"tier": top[0].get("tier") or "unknown tier", "verdict": verdict, "text": text}


def _summary(records: list[dict], titles: Mapping[str, str]) -> dict:
    by_verdict = Counter(r["verdict"] for r in records)
    by_paper: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        by_paper[r["paper"]][r["verdict"]] += 1
    unexpected = [r for r in records if r.get("as_expected") is False]
    by_tier: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        by_tier[r.get("tier") or "unknown"][r["verdict"]] += 1
    tier_order = list(TIERS) + sorted(set(by_tier) - set(TIERS))
    return {
        "total": len(records),
        "by_tier": [(t, [by_tier[t].get(v, 0) for v in VERDICTS], sum(by_tier[t].values()))
                    for t in tier_order if t in by_tier],
        "bearing": sum(sum(by_tier[t].values()) for t in ("paper", "reduced") if t in by_tier),
        "bearing_counts": ", ".join(f"{n} {v}" for v in VERDICTS
                                    if (n := sum(by_tier[t].get(v, 0) for t in ("paper", "reduced") if t in by_tier))),
        "stand_in": sum(by_tier["stand-in"].values()) if "stand-in" in by_tier else 0,
        "smoke": sum(by_tier[SMOKE_TIER].values()) if SMOKE_TIER in by_tier else 0,
        "by_verdict": [(v, by_verdict.get(v, 0)) for v in VERDICTS],
        "by_paper": [
            (titles.get(p, p), [c.get(v, 0) for v in VERDICTS], sum(c.values()))
            for p, c in sorted(by_paper.items(), key=lambda kv: list(titles).index(kv[0]) if kv[0] in titles else 99)
        ],
        "unexpected": unexpected,
        "stale": sum(1 for r in records if r.get("stale")),
        "wall_time": sum(r.get("wall_time_s") or 0 for r in records),
    }


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(
            lambda name: resources.files("harness.claimkit.report").joinpath(name).read_text(encoding="utf-8")
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(value=format_value, svg_uri=_svg_data_uri, seconds=seconds_text, seeds=format_seeds)
    return env


RUN_FIELDS = ("profiles", "commit", "seed_offset", "device", "torch_version", "python_version", "host", "started", "wall_time_s", "interrupted",
              "signals", "mutation")


# fields a record from an older or foreign file may lack (harness.claimkit.report.records.REQUIRED_FIELDS it may not)
RECORD_DEFAULTS = {"tier": None, "cause": None, "seed_exempt": None, "tentative": None, "seed_offset": 0,
                   "recorded": None, "commit": None, "run_id": None, "case": None, "as_expected": None, "dataset": None,
                   "deviation": None, "device": None, "error": None, "expected_measured": None, "expected_reason": None,
                   "summary": None, "torch_version": None, "wall_time_s": None, "paper_value": None, "threshold": None,
                   "figure": None, "thresholds": None, "mutation": None, "later_outcome": None, "seed_plan": None}


def render_html(records: list[dict], runs: list[dict] | None = None, stale: Mapping[str, str] | None = None,
                history: Any = None) -> str:
    """The report page. ``stale``: ``key_text(record)`` → why that record no longer reflects the
    code or settings (``harness.claimkit.report.records.stale_reasons``). ``history``: the verdict history
    beside the report (``harness.claimkit.report.timeline.HistoryView``), or None."""
    template = _environment().get_template("template.html.j2")
    stale = stale or {}
    records = [{**RECORD_DEFAULTS, **r, "stale": stale.get(key_text(r))} for r in records]
    runs = [{**{f: None for f in RUN_FIELDS}, **run} for run in runs or []]  # runs from older or foreign files
    contributing = {r.get("run_id") for r in records}
    if any(run.get("id") in contributing for run in runs):  # list the runs whose records the report shows
        runs = [run for run in runs if run.get("id") in contributing]
    latest = runs[-1].get("id") if runs else None  # merge_runs sorts oldest first; records of other runs are marked
    mutations = sorted({(m["plugin"], m["change"]) for run in runs for m in run.get("mutation") or []})
    titles = {**{p: t for run in runs for p, t in (run.get("papers") or {}).items()}, **PAPERS}  # the runs' word, then this process's
    return template.render(
        mutations=mutations,
        papers=_group(records, titles),
        summary=_summary(records, titles),
        title=next((run["title"] for run in reversed(runs) if run.get("title")), DEFAULT_TITLE),
        runs=runs,
        latest=latest,
        verdicts=VERDICTS,
        history=history,
        generated=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )


def write_report(records: list[dict], directory: Path | str, runs: list[dict] | None = None, stem: str = "claims") -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.html`` into ``directory`` (replacing them)."""
    directory = Path(directory)
    json_path = directory / f"{stem}.json"
    write_json(records, json_path, runs or [])
    return json_path, write_html(records, runs or [], directory / f"{stem}.html")


def write_html(records: list[dict], runs: list[dict], path: Path | str, stale: Mapping[str, str] | None = None) -> Path:
    """Render the report into ``path``, with the verdict history of its folder when it has one."""
    from harness.claimkit.report.timeline import HistoryView

    atomic_write_text(path, render_html(records, runs, stale, HistoryView.beside(path, (r["claim_id"] for r in records))))
    return Path(path)
