"""A project's own sources as data: its modules, the project modules each imports, a hash of files.

What the report's code version (``harness.claimkit.report.records``) and a project's layering
check are made of. No torch here: the report's command line uses it too.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from pathlib import Path


def project_modules(repo: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted name → file of every module of ``packages`` (folders under ``repo``)."""
    modules = {}
    for package in packages:
        for f in sorted((Path(repo) / package).rglob("*.py")):
            parts = f.relative_to(repo).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return modules


def imported_modules(tree: ast.AST, modules: dict[str, Path]) -> set[str]:
    """The modules of ``modules`` a parsed source imports, anywhere in it (function-level imports
    included); a name imported from a module counts as that module."""
    found = set()
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def hash_files(repo: Path, files: Iterable[Path]) -> str:
    """16 hex digits of SHA-256 over each file's path (relative to ``repo``) and bytes, in order."""
    return _digest(repo, files, Path.read_bytes)


def _digest(repo: Path, files: Iterable[Path], content) -> str:
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(repo).as_posix().encode())
        digest.update(content(f))
    return digest.hexdigest()[:16]


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return tree


def hash_code(repo: Path, files: Iterable[Path]) -> str:
    """16 hex digits of SHA-256 over each Python file's path (relative to ``repo``) and its code:
    the syntax tree without docstrings, so comments, docstrings and layout do not count."""
    return _digest(repo, files, _code)


def _code(f: Path) -> bytes:
    tree = _without_docstrings(ast.parse(f.read_bytes(), str(f)))
    return ast.dump(tree, annotate_fields=False, include_attributes=False).encode()
