"""Thresholds are data: every number a claim decides by is in its YAML ``thresholds``.

Checked from the sources (no claim runs):
- a claim test body compares nothing with a numeric literal and passes none to a ``Condition``;
- a readout (a function of ``harness/readouts`` returning a ``Readout``) takes ``thresholds`` and
  has no numeric default of its own, and passes no numeric literal to a ``Condition``;
- every threshold a claim declares is read by name somewhere in its test module or the readouts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harness.claimkit.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
CLAIM_MODULES = sorted((ROOT / "claims").glob("test_*.py"))
READOUT_MODULES = sorted(p for p in (ROOT / "harness" / "readouts").glob("*.py") if p.name != "__init__.py")


def _is_number(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    return isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool)


def _is_constant_expression(node: ast.AST) -> bool:
    """A number, or an expression of numbers only (``1 / math.sqrt(2)``, ``10 ** 2``)."""
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    return _is_number(node) or (not isinstance(node, ast.Constant) and names <= {"math", "np", "numpy"}
                                and any(_is_number(n) for n in ast.walk(node)))


def _is_len(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len"


def _is_condition_call(node: ast.AST) -> bool:
    f = node.func if isinstance(node, ast.Call) else None
    return (isinstance(f, ast.Name) and f.id == "Condition") or (
        isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "Condition")


def literal_thresholds(tree: ast.AST, compares: bool = True) -> list[str]:
    """Where ``tree`` holds a threshold as a literal: a number in a comparison (a count compared
    with ``len(...)`` aside) with ``compares``, or a number passed to a ``Condition``."""
    found = []
    for node in ast.walk(tree):
        if compares and isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(map(_is_number, operands)) and not any(map(_is_len, operands)):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        if _is_condition_call(node):
            args = [*node.args, *(k.value for k in node.keywords)]
            if any(_is_constant_expression(a) for a in args):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def numeric_defaults(tree: ast.AST) -> list[str]:
    """Readout functions (``-> Readout``) without a ``thresholds`` parameter or with a numeric default."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.returns is not None and ast.unparse(node.returns) == "Readout":
            names = [a.arg for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)]
            if "thresholds" not in names:
                found.append(f"{node.name} (line {node.lineno}) takes no 'thresholds'")
            defaults = [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
            found += [f"{node.name} (line {node.lineno}) has a numeric default {ast.unparse(d)}" for d in defaults
                      if _is_number(d) or (isinstance(d, ast.Tuple) and any(map(_is_number, d.elts)))]
    return found


@pytest.mark.parametrize("path", CLAIM_MODULES, ids=lambda p: p.name)
def test_claim_tests_hold_no_threshold_literal(path):
    found = literal_thresholds(ast.parse(path.read_text(encoding="utf-8")))
    assert not found, f"{path.name}: thresholds as literals (put them in the claim's YAML 'thresholds'):\n" + "\n".join(found)


@pytest.mark.parametrize("path", READOUT_MODULES, ids=lambda p: p.name)
def test_readouts_take_their_thresholds(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = numeric_defaults(tree) + literal_thresholds(tree, compares=False)
    assert not found, f"{path.name}: readouts must read every threshold from 'thresholds':\n" + "\n".join(found)


def test_every_declared_threshold_is_read():
    sources = "\n".join(p.read_text(encoding="utf-8") for p in [*CLAIM_MODULES, *READOUT_MODULES])
    registry = Registry.load(ROOT / "claims")
    unread = [f"{c.id}{f' ({c.case})' if c.case else ''}: {name}" for f in registry.files for c in f.claims for name in c.thresholds
              if f'"{name}"' not in sources and f"'{name}'" not in sources]
    assert not unread, "thresholds declared in YAML that no test or readout reads:\n" + "\n".join(unread)


def test_the_checks_see_literals():
    body = ast.parse("def test_x(verdict):\n    ok = ratio >= 10\n    Condition.at_least('r', v, 2.5)\n    n = len(s) > 1\n"
                     "    Condition.at_most('c', v, 1 / math.sqrt(2))\n    Condition.at_most('d', v, t['max_cv'])\n")
    assert len(literal_thresholds(body)) == 3
    readout = ast.parse("def f(x, layer, cut: float = 0.5) -> Readout:\n    pass\n")
    assert len(numeric_defaults(readout)) == 2  # no 'thresholds', and a numeric default
    assert not numeric_defaults(ast.parse("def f(x, thresholds) -> Readout:\n    pass\n"))
