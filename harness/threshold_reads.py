"""Which threshold names each claim's test reads, found from the sources (nothing is imported or run).

A claim test hands its ``thresholds`` (the claim's YAML ``thresholds``) to a readout of
``harness/readouts``, which reads them by name: ``thresholds["min_ratio"]``. A name the claim does
not declare (a typo on either side) used to surface only after the measurement, as a KeyError
and an ``error`` verdict. :func:`undeclared_reads` finds it when the registry loads: for every
test marked ``@pytest.mark.claim(ID[, case=…])`` it follows the ``thresholds`` parameter into
every function it is passed to (a readout, a helper of the test module or of a readout module,
through imports of ``harness.readouts``), collects the names read from it, and compares them
with the names the claim declares.

Read as names: a string subscript (``thresholds["max_cv"]``, in f-strings too) and a variable
subscript whose values the function lists literally (``for name in ("a", "b")``, ``for k, name in
limits.items()`` with ``limits = {…}`` in the function). A name computed any other way is not
checked here (the measurement still stops on it, naming the claim and what it declares).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

PARAMETER = "thresholds"
READOUTS = "harness.readouts"


class _Module:
    """One parsed module: its functions and what its imported names refer to."""

    def __init__(self, name: str, path: Path):
        self.name, self.path = name, path
        self.tree = ast.parse(path.read_bytes(), str(path))
        self.functions = {n.name: n for n in self.tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        self.aliases: dict[str, str] = {}  # local name → "module" or "module:function"
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    target = f"{node.module}.{a.name}" if node.module == READOUTS else f"{node.module}:{a.name}"
                    self.aliases[a.asname or a.name] = target
            elif isinstance(node, ast.Import):
                for a in node.names:
                    self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]


class Reads:
    """The names read from a ``thresholds`` parameter, function by function, across modules."""

    def __init__(self, modules: Mapping[str, Path]):
        self.modules = {name: _Module(name, path) for name, path in modules.items()}
        self._memo: dict[tuple[str, str], dict[str, str]] = {}

    def of(self, module: str, function: str) -> dict[str, str]:
        """name → where it is read ("path:line"), for ``function``'s ``thresholds`` parameter and
        every function it passes that parameter to."""
        key = (module, function)
        if key not in self._memo:
            self._memo[key] = {}  # recursion guard
            mod = self.modules[module]
            self._memo[key] = self._reads(mod, mod.functions[function])
        return self._memo[key]

    def _reads(self, mod: _Module, fn: ast.AST) -> dict[str, str]:
        found: dict[str, str] = {}
        for node in ast.walk(fn):
            if isinstance(node, ast.Subscript) and _is_parameter(node.value):
                for name in _subscript_names(node.slice, fn):
                    found.setdefault(name, f"{mod.path.name}:{node.lineno}")
            elif isinstance(node, ast.Call) and any(_is_parameter(a) for a in (*node.args, *(k.value for k in node.keywords))):
                target = self._resolve(mod, node.func)
                if target is not None:
                    for name, where in self.of(*target).items():
                        found.setdefault(name, where)
        return found

    def _resolve(self, mod: _Module, func: ast.AST) -> tuple[str, str] | None:
        """The (module, function) a call goes to, among the parsed modules; None elsewhere."""
        if isinstance(func, ast.Name):
            if func.id in mod.functions:
                return mod.name, func.id
            module, _, name = mod.aliases.get(func.id, "").partition(":")
            return (module, name) if module in self.modules and name in self.modules[module].functions else None
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            module = mod.aliases.get(func.value.id, "")
            if module in self.modules and func.attr in self.modules[module].functions:
                return module, func.attr
        return None


def _is_parameter(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == PARAMETER


def _subscript_names(index: ast.AST, fn: ast.AST) -> list[str]:
    if isinstance(index, ast.Constant) and isinstance(index.value, str):
        return [index.value]
    if isinstance(index, ast.Name):
        return _bound_strings(index.id, fn)
    return []


def _bound_strings(variable: str, fn: ast.AST) -> list[str]:
    """The strings ``variable`` takes as a loop or comprehension target over a literal in ``fn``."""
    out: list[str] = []
    for node in ast.walk(fn):
        if isinstance(node, (ast.For, ast.comprehension)):
            out += _target_strings(variable, node.target, node.iter, fn)
    return out


def _target_strings(variable: str, target: ast.AST, source: ast.AST, fn: ast.AST) -> list[str]:
    part = None  # which part of a dict the variable runs over
    if isinstance(source, ast.Call) and isinstance(source.func, ast.Attribute) and source.func.attr in ("items", "keys", "values"):
        part, source = source.func.attr, source.func.value
    literal = _literal(source, fn)
    if isinstance(target, ast.Tuple) and part == "items" and len(target.elts) == 2:
        which = [i for i, t in enumerate(target.elts) if isinstance(t, ast.Name) and t.id == variable]
        if not which:
            return []
        part = ("keys", "values")[which[0]]
    elif not (isinstance(target, ast.Name) and target.id == variable):
        return []
    if isinstance(literal, ast.Dict):
        items = literal.values if part == "values" else literal.keys if part in (None, "keys") else []
    elif isinstance(literal, (ast.Tuple, ast.List, ast.Set)) and part is None:
        items = literal.elts
    else:
        return []
    return [i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)]


def _literal(node: ast.AST, fn: ast.AST) -> ast.AST | None:
    """``node`` if it is a literal collection, or the literal a name of ``fn`` is assigned."""
    if isinstance(node, (ast.Dict, ast.Tuple, ast.List, ast.Set)):
        return node
    if isinstance(node, ast.Name):
        for n in ast.walk(fn):
            if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == node.id for t in n.targets):
                return n.value if isinstance(n.value, (ast.Dict, ast.Tuple, ast.List, ast.Set)) else None
    return None


def _claim_marker(fn: ast.AST) -> tuple[str, str | None] | None:
    """(ID, case) of a ``@pytest.mark.claim("ID", case=…)`` decorator."""
    for dec in getattr(fn, "decorator_list", []):
        if (isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute) and dec.func.attr == "claim"
                and dec.args and isinstance(dec.args[0], ast.Constant) and isinstance(dec.args[0].value, str)):
            case = next((k.value.value for k in dec.keywords if k.arg == "case" and isinstance(k.value, ast.Constant)), None)
            return dec.args[0].value, case
    return None


def readout_modules(repo: Path) -> dict[str, Path]:
    """The modules of ``harness/readouts`` under ``repo``, by dotted name."""
    from harness.sources import project_modules

    return {name: path for name, path in project_modules(repo, ("harness",)).items()
            if name == READOUTS or name.startswith(READOUTS + ".")}


def claim_reads(test_modules: Iterable[Path], readout_modules: Mapping[str, Path]) -> list[tuple[str, str | None, str, dict[str, str]]]:
    """(claim ID, case, "file::test", names read → where) for every claim test of ``test_modules``."""
    tests = {f"claims-test:{p}": Path(p) for p in test_modules}
    reads = Reads({**readout_modules, **tests})
    out = []
    for module, path in tests.items():
        for name, fn in reads.modules[module].functions.items():
            marker = _claim_marker(fn)
            if marker is not None:
                out.append((*marker, f"{path.name}::{name}", reads.of(module, name)))
    return out


def undeclared_reads(registry, claims_dir: Path, readout_modules: Mapping[str, Path]) -> list[str]:
    """One line per claim test that reads a threshold name its claim (or half) does not declare."""
    problems = []
    for cid, case, test, names in claim_reads(sorted(Path(claims_dir).glob("test_*.py")), readout_modules):
        claim = registry.cases.get((cid, case)) if case else registry.claims.get(cid)
        if claim is None:
            continue  # an unknown ID or case: collection names it
        missing = sorted(set(names) - set(claim.thresholds))
        if missing:
            declared = ", ".join(sorted(claim.thresholds)) or "none"
            read = ", ".join(f"'{n}' ({names[n]})" for n in missing)
            problems.append(f"{claim.file}: claim {cid}{f' (case {case})' if case else ''}: field 'thresholds': {test} reads "
                            f"{read}, which the claim does not declare (declared: {declared})")
    return problems
