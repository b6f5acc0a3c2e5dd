"""Benchmarks run only when asked for with ``-m`` (``pytest -m benchmark``): a plain ``pytest``
deselects them, so the README's test command (unit tests + fast claims) is unchanged."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("markexpr"):
        return  # an -m expression decides, e.g. -m benchmark
    benchmarks = [item for item in items if item.get_closest_marker("benchmark") is not None]
    if benchmarks:
        config.hook.pytest_deselected(items=benchmarks)
        items[:] = [item for item in items if item.get_closest_marker("benchmark") is None]
