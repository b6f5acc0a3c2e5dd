"""The toy suite's side of the claims machinery: its paper, its settings classes, its store of
counted sorts, and a record of what the run imported (so its test can show that nothing but the
machinery was loaded)."""

import json
import os
import platform
import sys
from pathlib import Path

import pytest

from harness.claimkit.registry import register_paper
from harness.claimkit.settings import Settings, register, settings_class
from harness.claimkit.sources import hash_code
from harness.claimkit.store import JSON, Store

HERE = Path(__file__).parent

pytest_plugins = ["harness.claimkit.plugin"]

register_paper("textbook", "Textbook facts about comparison sorting")


@settings_class
class SortingShared(Settings):
    n: int                       # elements per array
    seeds: list[int]             # one random array (and pivot sequence) per seed


@settings_class
class SortingClaim(Settings):
    n: int | None = None
    sizes: list[int] | None = None


register("toy_sorting", SortingShared, SortingClaim)


@pytest.fixture(scope="session")
def store(request: pytest.FixtureRequest, planner) -> Store:
    """Counted sorts made once ever: JSON entries under ``store/`` (env ``TOY_STORE``), keyed by the
    sorting code (its syntax tree) and the Python version, planned under --plan, served alone under
    --judge-only."""
    root = Path(os.environ.get("TOY_STORE") or request.config.rootpath / "store")
    return Store(root, hash_code(HERE, [HERE / "sorting.py"]), {"python": platform.python_version()}, JSON,
                 judge_only=request.config.getoption("judge_only"), planner=planner)


def pytest_sessionfinish(session, exitstatus):
    out = os.environ.get("TOY_MODULES_OUT")
    if out:
        with open(out, "w", encoding="utf-8") as f:
            json.dump(sorted(sys.modules), f)


def pytest_claimkit_title():
    """The report's title (one of the claims plugin's hooks: harness.claimkit.plugin.hookspec)."""
    return "Which textbook facts about sorting hold?"
