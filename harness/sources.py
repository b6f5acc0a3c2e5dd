"""The batch-norm suite's own sources: where they are, and its modules as data.

Shared by the model cache's code version (harness.cache), the report's suite version and the
layering test (tests/test_layering.py); the functions are the claims machinery's
(``harness.claimkit.sources``), here with this repository's root and packages as defaults.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from harness.claimkit.sources import hash_code, hash_files, imported_modules  # noqa: F401
from harness.claimkit.sources import project_modules as _project_modules

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("harness", "fixtures", "claims")  # the project's top-level packages, under the repository root


def project_modules(repo: Path = REPO, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Dotted name → file of every module of ``packages`` (default: the whole project)."""
    return _project_modules(repo, packages)
