"""The hooks through which a claims suite adds what is its own to the claims plugin.

The plugin knows claims, seeds, verdicts and the report; a suite knows its devices, its data, its
options and what its runs cost. A suite's pytest plugin (for this project ``harness.bn_plugin``)
implements any of these; none is required, and a suite with none (``tests/toy_claims``) runs on
the machinery alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pluggy
import pytest

hookspec = pluggy.HookspecMarker("pytest")


@hookspec
def pytest_claimkit_path_options() -> list[tuple[str, str, str | None]]:
    """The suite's options that name a folder, as (dest, option, environment variable or None):
    the plugin checks they are not empty and repairs the rootdir a folder after one would make."""


@hookspec
def pytest_claimkit_configure(config: pytest.Config, controller: bool) -> None:
    """Set up and check the suite's own configuration before any claim runs (threads, executors,
    devices, data folders). ``controller``: this is the controlling process (not an xdist worker).
    A problem is a :class:`pytest.UsageError`, one line naming the option."""


@hookspec
def pytest_claimkit_check_registry(config: pytest.Config, registry: Any, claims_dir: Path) -> None:
    """Check the loaded claims against the suite's code (e.g. the threshold names its readouts
    read); a problem is a ``RegistryError``."""


@hookspec
def pytest_claimkit_environment() -> dict[str, Any]:
    """What the measurements ran on, stamped on every record and run (e.g. device, library versions)."""


@hookspec
def pytest_claimkit_report_header(config: pytest.Config) -> list[str]:
    """Lines for the top of the terminal output: what this run computes on, where its inputs are."""


@hookspec
def pytest_claimkit_collection_notes(config: pytest.Config, cases: list[tuple[Any, str]]) -> list[str]:
    """Lines after collection about the claim cases selected, as (claims file, profile) pairs."""


@hookspec(firstresult=True)
def pytest_claimkit_plan_rate(config: pytest.Config) -> tuple[float, str, str] | None:
    """Under ``--plan`` without ``--plan-tflops``: the sustained rate runs are priced at, as (FLOP/s,
    where it comes from, the device). None of the suite's: the plan gives no times."""


@hookspec(firstresult=True)
def pytest_claimkit_execute_plan(config: pytest.Config, planner: Any) -> int | None:
    """Under ``--plan-execute``: make the planned runs that have recipes; the number made."""


@hookspec
def pytest_claimkit_planned_stops() -> tuple[type[BaseException], ...]:
    """Under ``--plan``: the exception types the suite's store raises when a claim asks for runs it
    lacks (besides ``harness.claimkit.plan.Planned``); a test stopped by one waits for those runs."""


@hookspec
def pytest_claimkit_code_packages() -> list[str]:
    """The folders (under the rootdir) of the suite's code: a record made with other code than
    theirs now is stale (default: the claims folder alone)."""


@hookspec
def pytest_claimkit_provenance(provenance: dict) -> dict | None:
    """What to add to, or refine in, a run's provenance in the verdict history (e.g. the CPU's
    vector capability, the library's thread count)."""


@hookspec(firstresult=True)
def pytest_claimkit_title() -> str | None:
    """The report's title (default: "Which claims hold?")."""
