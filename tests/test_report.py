"""Report: HTML escaping, self-containment, merging of several JSON files, the merge command."""

from __future__ import annotations

import json
import re

import pytest

from harness.claimkit.report import ReportError, load_records, merge_records, render_html, write_json
from harness.claimkit.report import figures
from harness.claimkit.report.__main__ import main
from harness.claimkit.report.html import format_seeds, format_value


def record(nodeid="claims/t.py::test[fast]", claim="B-X-1", verdict="holds", **extra):
    rec = {
        "nodeid": nodeid, "claim_id": claim, "case": None, "paper": "bjorck2018", "section": "§1 S", "source": "§1",
        "statement": "s", "paper_value": "p", "threshold": "t", "figure": None, "deviation": None, "profile": "fast",
        "verdict": verdict, "summary": "ok", "expected": "holds", "expected_reason": None, "expected_measured": None,
        "as_expected": verdict == "holds", "measured": {"x": 1.5}, "figures": [], "notes": [], "dataset": "synthetic",
        "seeds": [0], "device": "cpu", "torch_version": "2", "wall_time_s": 0.5, "error": None,
    }
    rec.update(extra)
    return rec


def test_everything_from_yaml_and_measurements_is_escaped():
    evil = "<script>alert('x')</script>"
    html = render_html([record(statement=evil, summary=evil, measured={evil: evil}, notes=[evil], error=evil,
                               threshold=evil, source=evil, case=evil, deviation=evil)])
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_report_is_self_contained_with_embedded_figures():
    svg = figures.lines([1, 2, 3], {"a": [1, 4, 9]}, xlabel="x", ylabel="y", title="t")
    html = render_html([record(figures=[{"title": "fig", "svg": svg}])])
    assert 'src="data:image/svg+xml;base64,' in html
    # no external resource of any kind: no URL outside the embedded (base64) data
    assert not re.search(r"https?://|//[a-z]|url\(", html.replace(html[html.index("base64,"):html.index('"', html.index("base64,"))], ""))


def test_summary_counts_by_verdict_and_paper():
    recs = [record("a", verdict="holds"), record("b", verdict="refuted"), record("c", claim="S-X-1", verdict="not run", paper="santurkar2018", as_expected=None)]
    html = render_html(recs)
    assert "Bjorck et al." in html and "Santurkar et al." in html
    assert "1 verdict(s) differ" in html  # the unexpected refutation


def test_merge_later_file_wins_and_union():
    a = [record("n1", verdict="holds"), record("n2", claim="B-X-2")]
    b = [record("n1", verdict="refuted")]
    merged = merge_records(a, b)
    assert {r["nodeid"]: r["verdict"] for r in merged} == {"n1": "refuted", "n2": "holds"}


def test_merge_command_rebuilds_html_from_several_files(tmp_path, capsys):
    write_json([record("n1")], tmp_path / "a.json", [{"device": "cpu", "profiles": ["fast"]}])
    write_json([record("n2", claim="B-X-2", verdict="refuted")], tmp_path / "b.json")
    out = tmp_path / "out" / "claims.html"
    assert main(["merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "-o", str(out), "--json", str(tmp_path / "m.json")]) == 0
    html = out.read_text(encoding="utf-8")
    assert 'id="B-X-1"' in html and 'id="B-X-2"' in html
    merged, runs = load_records(tmp_path / "m.json")
    assert len(merged) == 2 and runs == [{"device": "cpu", "profiles": ["fast"]}]
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("content, message", [("{not json", "not valid JSON"), ('{"schema": 99}', "schema"),
                                               ('{"schema": 1, "records": [{"nodeid": "x"}]}', "lacks claim_id")])
def test_bad_input_files_give_clear_errors(tmp_path, capsys, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    with pytest.raises(ReportError, match=message):
        load_records(bad)
    assert main(["merge", str(bad), "-o", str(tmp_path / "x.html")]) == 2
    assert message in capsys.readouterr().err


def test_missing_input_file(tmp_path):
    with pytest.raises(ReportError, match="no such claims JSON file"):
        load_records(tmp_path / "nope.json")


def test_format_value():
    assert format_value(0.000012345) == "1.234e-05"
    assert format_value(3.14159) == "3.142"
    assert format_value(list(range(20))).endswith("… (20 values)]")
    assert format_value({"a": 1}) == "{a: 1}"


def test_json_round_trip(tmp_path):
    write_json([record()], tmp_path / "c.json")
    recs, runs = load_records(tmp_path / "c.json")
    assert recs[0]["measured"] == {"x": 1.5} and runs == []
    assert json.loads((tmp_path / "c.json").read_text())["schema"] == 1


def test_format_seeds():
    assert format_seeds([]) == "–"
    assert format_seeds([0, 1, 2, 3, 7, 9, 10]) == "0–3, 7, 9–10"
    assert format_seeds(list(range(0, 40, 2))).endswith("… (20 seeds)")


def test_reports_are_readable_by_everyone(tmp_path):
    write_json([record()], tmp_path / "c.json")
    assert (tmp_path / "c.json").stat().st_mode & 0o777 == 0o644


def test_headline_is_the_verdict_at_the_highest_tier_that_measured():
    from harness.claimkit.report.html import headline

    recs = [record("a", verdict="refuted", tier="stand-in"), record("b", verdict="holds", tier="paper", profile="slow"),
            record("c", verdict="error", tier="paper", profile="paper")]
    assert headline(recs) == {"tier": "paper", "verdict": "holds", "text": "holds"}
    mixed = [record("a", verdict="holds", tier="reduced", case="k=1"), record("b", verdict="inconclusive", tier="reduced", case="k=2")]
    assert headline(mixed) == {"tier": "reduced", "verdict": "mixed", "text": "1 holds, 1 inconclusive"}
    assert headline([record("a", verdict="not run", tier="paper")]) is None


def test_summary_says_which_verdicts_bear_on_the_papers():
    recs = [record("a", tier="paper"), record("b", verdict="inconclusive", tier="stand-in", cause="profile",
                                                 expected="inconclusive", as_expected=True, expected_reason="one seed")]
    html = render_html(recs)
    assert "1 verdict(s) bear on the papers</strong>\n  (1 holds)" in render_html(recs[:1])
    assert "budget). The 1 <em>stand-in</em> verdict(s)" in html
    assert "cause: profile" in html and "known result (profile)" in html
    assert "No verdict here bears directly" in render_html([record("a", tier="stand-in")])


def test_merge_keeps_the_newest_run_per_claim_case_profile_and_tier_whatever_the_file_order():
    old = record("n1", verdict="holds", run_id="100.0 host 1", tier="stand-in")
    new = record("n1", verdict="refuted", run_id="200.0 host 2", tier="stand-in")
    other_tier = record("n1", verdict="inconclusive", run_id="50.0 host 3", tier="paper")
    merged = merge_records([new], [old, other_tier])
    assert sorted((r["tier"], r["verdict"]) for r in merged) == [("paper", "inconclusive"), ("stand-in", "refuted")]


def test_the_report_lists_only_runs_whose_records_it_shows():
    runs = [{"id": "100.0 h 1", "started": "old"}, {"id": "200.0 h 2", "started": "new"}]
    html = render_html([record(run_id="200.0 h 2")], runs)
    assert "started new" in html and "started old" not in html


def test_tables_render_as_html_tables_escaped():
    table = {"title": "Max LR", "table": {"columns": ["paper", "ours"], "rows": [["none <b>", "1e-4", "0.01"]]}}
    html = render_html([record(figures=[table])])
    assert "<th>paper</th><th>ours</th>" in html and "<th>none &lt;b&gt;</th><td>1e-4</td><td>0.01</td>" in html
    assert "data:image/svg+xml" not in html


def test_the_seeds_cell_says_seeds_used_of_the_cap_and_why_it_stopped():
    plan = {"used": 6, "cap": 10, "looks": [3, 6, 10], "stop": "decided",
            "history": [{"seeds": 3, "verdict": "inconclusive", "undecided": ["r"]}, {"seeds": 6, "verdict": "holds", "undecided": []}]}
    html = render_html([record(seeds=list(range(6)), seed_plan=plan),
                        record(nodeid="claims/t.py::test_exact[fast]", claim="B-X-2", seed_plan={**plan, "used": 1, "cap": 1,
                                                                                                 "stop": "seed-exempt"})])
    assert "6 of ≤ 10 seeds · decided" in html and 'title="looks at 3, 6, 10 seeds"' in html
    assert "1 of ≤ 1 seeds" not in html  # a seed-exempt claim has no cap to speak of
    assert "Error rate:" in html and "at most 5%" in html
