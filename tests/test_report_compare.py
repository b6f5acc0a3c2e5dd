"""`python -m harness.claimkit.report compare`: the verdicts of several runs of the same claims."""

from __future__ import annotations

import pytest

from harness.claimkit.report import ReportError, write_json
from harness.claimkit.report.__main__ import main
from harness.claimkit.report.compare import classify, compare, run_label
from tests.test_report import record


def run(offset, verdicts, tier="stand-in"):
    """Records of one run: claim id → verdict."""
    return [record(claim=c, verdict=v, tier=tier, seed_offset=offset, nodeid=f"claims/t.py::test[{c}-fast]")
            for c, v in verdicts.items()]


@pytest.mark.parametrize("verdicts, kind", [
    (("holds", "holds", "holds"), "stable"),
    (("inconclusive", "inconclusive"), "stable"),
    (("holds", "refuted"), "flipped"),
    (("holds", "inconclusive", "refuted"), "flipped"),
    (("holds", "inconclusive"), "decided in some"),
    (("refuted", "refuted", "inconclusive"), "decided in some"),
    (("holds", "error"), "incomplete"),
    (("holds", "error", "refuted"), "flipped"),
    (("not run", "not run"), "incomplete"),
])
def test_classify(verdicts, kind):
    assert classify(verdicts) == kind


def test_compare_counts_by_tier_and_lists_what_changed():
    a = run(0, {"A": "holds", "B": "holds", "C": "refuted", "D": "inconclusive"})
    b = run(1, {"A": "holds", "B": "refuted", "C": "inconclusive", "D": "inconclusive"})
    c = run(2, {"A": "holds", "B": "holds", "C": "refuted", "D": "holds"}) + run(2, {"E": "holds"}, tier="paper")
    result = compare([("offset 0", a), ("offset 1", b), ("offset 2", c)])
    assert result.labels == ("offset 0", "offset 1", "offset 2")
    assert {r.claim_id: r.kind for r in result.rows} == {"A": "stable", "B": "flipped", "C": "decided in some", "D": "decided in some"}
    assert [r.claim_id for r in result.flips] == ["B"]
    assert result.counts()["stand-in"] == {"stable": 1, "flipped": 1, "decided in some": 2, "incomplete": 0}
    assert [result.decided_at(i) for i in range(3)] == [3, 2, 4]
    assert result.missing == (("E (fast)", ("offset 0", "offset 1")),)
    text = result.markdown()
    assert "| stand-in | 1 | 1 | 2 | 0 |" in text
    assert "| B (fast) | stand-in | holds | refuted | holds | flipped |" in text
    assert "- E (fast): not in offset 0, offset 1" in text
    assert "| A (fast)" not in text  # stable runs are counted, not listed


def test_cases_and_profiles_are_matched_separately():
    a = [record(claim="A", case="vgg", verdict="holds"), record(claim="A", case="dln", verdict="holds")]
    b = [record(claim="A", case="vgg", verdict="holds"), record(claim="A", case="dln", verdict="refuted")]
    result = compare([("x", a), ("y", b)])
    assert [(r.name, r.kind) for r in result.rows] == [("A [dln] (fast)", "flipped"), ("A [vgg] (fast)", "stable")]


def test_a_claim_run_at_two_tiers_shows_both():
    result = compare([("x", run(0, {"A": "holds"}, tier="stand-in")), ("y", run(1, {"A": "holds"}, tier="paper"))])
    assert result.rows[0].tier == "paper/stand-in"


@pytest.mark.parametrize("runs, message", [
    ([("x", [])], "at least two runs"),
    ([("x", []), ("x", [])], "distinct labels"),
    ([("x", run(0, {"A": "holds"}) * 2), ("y", [])], "appears twice"),
])
def test_bad_comparisons_are_refused(runs, message):
    with pytest.raises(ReportError, match=message):
        compare(runs)


def test_run_label_is_the_offset_when_one():
    assert run_label(run(3, {"A": "holds", "B": "holds"}), "f.json") == "offset 3"
    assert run_label(run(0, {"A": "holds"}) + run(1, {"B": "holds"}), "f.json") == "f.json"
    assert run_label([record()], "f.json") == "f.json"  # records from before seed offsets were recorded


def test_compare_command(tmp_path, capsys):
    paths = []
    for offset, verdict in enumerate(["holds", "refuted"]):
        paths.append(tmp_path / f"o{offset}.json")
        write_json(run(offset, {"A": verdict, "B": "holds"}), paths[-1])
    assert main(["compare", *map(str, paths)]) == 0
    out = capsys.readouterr().out
    assert "2 runs (offset 0, offset 1)" in out and "| A (fast) | stand-in | holds | refuted | flipped |" in out
    assert main(["compare", "--strict", *map(str, paths)]) == 1
    capsys.readouterr()
    # two files at the same offset are told apart by their paths
    write_json(run(0, {"A": "holds", "B": "holds"}), tmp_path / "again.json")
    assert main(["compare", "--strict", str(paths[0]), str(tmp_path / "again.json")]) == 0
    assert f"({paths[0]}, {tmp_path / 'again.json'})" in capsys.readouterr().out


def test_compare_command_bad_input(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("{")
    assert main(["compare", str(tmp_path / "bad.json"), str(tmp_path / "missing.json")]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "missing.json"), str(tmp_path / "bad.json")]) == 2
    assert "no such claims JSON file" in capsys.readouterr().err
