"""Claims registry: loading, validation, and errors that name file, claim and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.registry import Registry, RegistryError, load_claims_file, load_expected

GOOD = """
paper: bjorck2018
section: "§4 Test section"
shared:
  fast: {N: 10}
claims:
  - id: B-TEST-ONE
    source: "§4"
    statement: "Something holds."
    paper_value: "42"
    threshold: "≥ 40"
    profiles:
      fast: {x: 1}
      slow: {x: 2}
    deviations:
      fast: "smaller"
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_loads_a_valid_file(tmp_path):
    f = load_claims_file(write(tmp_path, "a.yaml", GOOD))
    claim = f.claims[0]
    assert (claim.id, claim.paper, claim.section) == ("B-TEST-ONE", "bjorck2018", "§4 Test section")
    assert claim.settings("slow") == {"x": 2}
    assert claim.deviations == {"fast": "smaller"}
    assert f.shared == {"fast": {"N": 10}}


def test_repository_claims_load():
    registry = Registry.load(Path(__file__).parents[1] / "claims")
    assert {"B-RMT-DENSITY", "B-RMT-KAPPA", "B-LIN-PROP1"} <= set(registry.claims)


def test_malformed_yaml_names_the_file(tmp_path):
    path = write(tmp_path, "bad.yaml", "paper: [unclosed\n")
    with pytest.raises(RegistryError, match=r"bad\.yaml: not valid YAML"):
        load_claims_file(path)


def test_missing_field_names_file_claim_and_field(tmp_path):
    path = write(tmp_path, "a.yaml", GOOD.replace('    threshold: "≥ 40"\n', ""))
    with pytest.raises(RegistryError, match=r"a\.yaml: claim B-TEST-ONE: field 'threshold': missing"):
        load_claims_file(path)


@pytest.mark.parametrize(
    "old, new, field",
    [
        ('statement: "Something holds."', "statement: ''", "statement"),
        ("fast: {x: 1}", "turbo: {x: 1}", "profiles"),
        ("id: B-TEST-ONE", "id: lowercase", "id"),
        ('fast: "smaller"', 'paper: "smaller"', "deviations"),
        ('paper_value: "42"', 'paper_value: "42"\n    colour: blue', "colour"),
    ],
    ids=["empty-statement", "unknown-profile", "bad-id", "deviation-for-absent-profile", "unknown-field"],
)
def test_invalid_field_names_file_claim_and_field(tmp_path, old, new, field):
    path = write(tmp_path, "a.yaml", GOOD.replace(old, new))
    with pytest.raises(RegistryError, match=rf"a\.yaml: claim .*: field '{field}'"):
        load_claims_file(path)


def test_unknown_paper(tmp_path):
    path = write(tmp_path, "a.yaml", GOOD.replace("paper: bjorck2018", "paper: nobody2020"))
    with pytest.raises(RegistryError, match=r"a\.yaml: field 'paper': unknown paper 'nobody2020'"):
        load_claims_file(path)


def test_duplicate_id_across_files_names_both(tmp_path):
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", GOOD)
    with pytest.raises(RegistryError, match=r"b\.yaml: claim B-TEST-ONE: field 'id': duplicate, already defined in .*a\.yaml"):
        Registry.load(tmp_path)


def test_unknown_claim_lookup_says_where(tmp_path):
    write(tmp_path, "a.yaml", GOOD)
    registry = Registry.load(tmp_path)
    with pytest.raises(RegistryError, match=r"test_x\.py::test_y: unknown claim ID 'B-NOPE-1'"):
        registry.claim("B-NOPE-1", where="test_x.py::test_y")


def test_expected_verdicts_validation(tmp_path):
    path = write(tmp_path, "expected_verdicts.yaml", """
        - claim: B-TEST-ONE
          profiles: [fast]
          verdict: refuted
          measured: "39"
          reason: "too small"
        """)
    (entry,) = load_expected(path, {"B-TEST-ONE"})
    assert entry.applies("B-TEST-ONE", "any-case", "fast") and not entry.applies("B-TEST-ONE", None, "slow")
    with pytest.raises(RegistryError, match=r"e2\.yaml: claim B-OTHER-1: field 'claim': unknown claim ID"):
        load_expected(write(tmp_path, "e2.yaml", path.read_text().replace("B-TEST-ONE", "B-OTHER-1")), {"B-TEST-ONE"})
    bad = write(tmp_path, "e3.yaml", path.read_text().replace("refuted", "maybe"))
    with pytest.raises(RegistryError, match=r"e3\.yaml: claim B-TEST-ONE: field 'verdict'"):
        load_expected(bad, {"B-TEST-ONE"})
    missing = write(tmp_path, "e4.yaml", path.read_text().replace('  reason: "too small"\n', ""))
    with pytest.raises(RegistryError, match=r"e4\.yaml: claim B-TEST-ONE: field 'reason': missing"):
        load_expected(missing, {"B-TEST-ONE"})


def test_case_specific_expectation_wins(tmp_path):
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "expected_verdicts.yaml", """
        - {claim: B-TEST-ONE, profiles: [fast], verdict: holds, measured: "1", reason: "all cases"}
        - {claim: B-TEST-ONE, case: "k=2", profiles: [fast], verdict: refuted, measured: "2", reason: "this case"}
        """)
    registry = Registry.load(tmp_path)
    assert registry.expected_for("B-TEST-ONE", "k=2", "fast").reason == "this case"
    assert registry.expected_for("B-TEST-ONE", "k=1", "fast").reason == "all cases"
    assert registry.expected_for("B-TEST-ONE", "k=1", "slow") is None


HALF = """
paper: santurkar2018
section: "§9 Another setup"
claims:
  - id: B-TEST-ONE
    case: other-net
    source: "§9, Fig. 9"
    statement: "Something holds on the other network too."
    paper_value: "7"
    threshold: "≥ 5"
    profiles:
      fast: {x: 3}
"""


def test_a_claim_can_have_a_half_in_another_file(tmp_path):
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", HALF)
    registry = Registry.load(tmp_path)
    main, half = registry.claim("B-TEST-ONE"), registry.claim("B-TEST-ONE", case="other-net")
    assert (main.case, main.section, main.settings("fast")) == (None, "§4 Test section", {"x": 1})
    assert (half.case, half.section, half.threshold, half.settings("fast")) == ("other-net", "§9 Another setup", "≥ 5", {"x": 3})
    assert set(registry.claims) == {"B-TEST-ONE"}  # one claim ID, two halves
    with pytest.raises(RegistryError, match=r"t\.py::x: claim B-TEST-ONE has no case 'vgg' \(cases: other-net\)"):
        registry.claim("B-TEST-ONE", case="vgg", where="t.py::x")


def test_half_errors_name_file_claim_and_field(tmp_path):
    write(tmp_path, "b.yaml", HALF)
    with pytest.raises(RegistryError, match=r"b\.yaml: claim B-TEST-ONE: field 'case': 'other-net' is a half of a claim that no file defines"):
        Registry.load(tmp_path)
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "c.yaml", HALF)
    with pytest.raises(RegistryError, match=r"c\.yaml: claim B-TEST-ONE: field 'case': duplicate, already defined in .*b\.yaml"):
        Registry.load(tmp_path)
    with pytest.raises(RegistryError, match=r"d\.yaml: claim B-TEST-ONE: field 'case': must be a lowercase name"):
        load_claims_file(write(tmp_path, "d.yaml", HALF.replace("case: other-net", "case: Other Net")))


def test_expected_verdicts_of_a_half_stay_with_the_half(tmp_path):
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", HALF)
    write(tmp_path, "expected_verdicts.yaml", """
        - {claim: B-TEST-ONE, profiles: [fast], verdict: refuted, measured: "1", reason: "main claim"}
        - {claim: B-TEST-ONE, case: other-net, profiles: [fast], verdict: refuted, measured: "2", reason: "whole half"}
        - {claim: B-TEST-ONE, case: other-net-k=2, profiles: [fast], verdict: refuted, measured: "3", reason: "one case of the half"}
        """)
    registry = Registry.load(tmp_path)
    assert registry.half_of("B-TEST-ONE", "other-net-k=1") == "other-net" and registry.half_of("B-TEST-ONE", "k=1") is None
    assert registry.expected_for("B-TEST-ONE", None, "fast").reason == "main claim"
    assert registry.expected_for("B-TEST-ONE", "k=1", "fast").reason == "main claim"
    assert registry.expected_for("B-TEST-ONE", "other-net", "fast").reason == "whole half"
    assert registry.expected_for("B-TEST-ONE", "other-net-k=1", "fast").reason == "whole half"
    assert registry.expected_for("B-TEST-ONE", "other-net-k=2", "fast").reason == "one case of the half"
    write(tmp_path, "expected_verdicts.yaml", """
        - {claim: B-TEST-ONE, profiles: [fast], verdict: refuted, measured: "1", reason: "main claim"}
        """)
    assert Registry.load(tmp_path).expected_for("B-TEST-ONE", "other-net", "fast") is None  # the main entry's verdict does not reach the half
