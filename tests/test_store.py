"""The claims machinery's store (harness.claimkit.store) on its own: plain-data entries, no torch."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from harness.claimkit.plan import Planned, Planner
from harness.claimkit.store import JSON, CacheError, CacheWarning, Store, cached_record, config_key, read_entry


def _store(tmp_path, **kw) -> Store:
    return Store(tmp_path / "store", "v1", {"python": "3"}, **kw)


def test_makes_an_entry_once_then_serves_it(tmp_path):
    store, made = _store(tmp_path), []
    first = store.get_or_create({"kind": "count", "n": 4}, lambda: made.append(1) or {"count": 7})
    second = _store(tmp_path).get_or_create({"kind": "count", "n": 4}, lambda: made.append(2) or {"count": 0})
    assert made == [1] and first == second and second["count"] == 7
    assert second["config"] == {"kind": "count", "n": 4} and second["code_version"] == "v1" and second["env"] == {"python": "3"}
    path = store.path({"kind": "count", "n": 4})
    assert path.name == f"{config_key({'kind': 'count', 'n': 4}, 'v1', {'python': '3'})}.entry"
    header, _, payload = path.read_bytes().partition(b"\n")
    assert header.startswith(b"claimkit-entry sha256=") and json.loads(payload)["count"] == 7


def test_version_and_environment_key_entries_apart(tmp_path):
    config = {"n": 1}
    keys = {Store(tmp_path, v, e).key(config) for v, e in (("v1", {}), ("v2", {}), ("v1", {"python": "3"}))}
    assert len(keys) == 3
    with pytest.raises(ValueError, match="needs a code version"):
        Store(tmp_path, "", {})
    with pytest.raises(TypeError, match="store configs must be JSON data"):
        _store(tmp_path).key({"n": object()})


def test_a_changed_entry_is_rebuilt_and_a_judge_only_store_serves_nothing_it_lacks(tmp_path):
    store = _store(tmp_path)
    store.get_or_create({"n": 1}, lambda: {"count": 1})
    path = store.path({"n": 1})
    path.write_bytes(path.read_bytes().replace(b'"count": 1', b'"count": 2'))
    with pytest.warns(CacheWarning, match="store: entry .* rejected .*does not match its digest.*: deleted, rebuilding it"):
        assert store.get_or_create({"n": 1}, lambda: {"count": 3})["count"] == 3
    judge = _store(tmp_path, judge_only=True)
    assert judge.get_or_create({"n": 1}, lambda: pytest.fail("judge-only made an entry"))["count"] == 3
    with pytest.raises(CacheError, match=r"--judge-only: the store .* lacks 1 run\(s\) this claim needs: entry\(n=2\)"):
        judge.get_or_create({"n": 2}, lambda: {"count": 0})


def test_an_entry_of_another_key_or_format_is_rejected(tmp_path):
    store = _store(tmp_path)
    store.get_or_create({"n": 1}, lambda: {"count": 1})
    path = store.path({"n": 1})
    with pytest.raises(ValueError, match="belongs to another key"):
        read_entry(path, "0" * 64, JSON, store.header)
    with pytest.raises(ValueError, match="no content digest"):
        read_entry(path, store.key({"n": 1}), JSON, b"other-suite sha256=")


def test_under_a_planner_missing_runs_are_listed_not_made(tmp_path):
    planner = Planner()
    store = _store(tmp_path, planner=planner)
    with pytest.raises(Planned, match="waits for 2 run"):
        store.declare([{"kind": "count", "n": 1}, {"kind": "count", "n": 2}])
    assert {r.name for r in planner.runs.values()} == {"count(n=1)", "count(n=2)"} and not (tmp_path / "store").exists()
    plain = store.unplanned()
    assert plain.planner is None and store.planner is planner and plain.key({"n": 1}) == store.key({"n": 1})
    assert store.planning and not plain.planning
    store.expect("after:n=3", "count", "count(n=3, picked later)", 5.0)  # pending: priced, never made here
    store.conditional_from_here()  # what the claim declares next may never be made
    with pytest.raises(Planned):
        store.declare([{"kind": "count", "n": 4}])
    runs = {r.name: r for r in planner.runs.values()}
    assert runs["count(n=3, picked later)"].pending and runs["count(n=3, picked later)"].flops == 5.0
    assert runs["count(n=4)"].conditional and not runs["count(n=1)"].conditional
    plain.expect("after:n=5", "count", "count(n=5)", None)
    plain.conditional_from_here()
    plain.declare([{"kind": "count", "n": 5}])  # not planning: all three do nothing
    assert len(planner.runs) == 4


@dataclasses.dataclass
class Tally:
    count: int
    seen: list[int]


def test_a_record_is_served_the_same_cold_and_warm(tmp_path):
    store = _store(tmp_path)
    cold = cached_record(store, {"n": 3}, lambda: Tally(3, [1, 2]), lambda d: Tally(**d))
    warm = cached_record(store, {"n": 3}, lambda: pytest.fail("made twice"), lambda d: Tally(**d))
    assert cold == warm == Tally(3, [1, 2]) and cached_record(None, {}, lambda: Tally(0, []), None) == Tally(0, [])


def test_the_store_loads_without_torch():
    code = "import sys, harness.claimkit.store, harness.claimkit.executors, harness.claimkit.nightly; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


# --- the executors, on plain functions -----------------------------------------------------------

def test_parallel_map_keeps_the_order_on_every_local_executor():
    from harness.claimkit.executors import parallel_map

    calls = [(i, 3) for i in range(7)]
    expected = [divmod(i, 3) for i in range(7)]
    assert parallel_map(divmod, calls, 0, "local") == expected == parallel_map(divmod, calls, 1, "pool")
    assert parallel_map(divmod, calls, 2, "pool") == expected  # two spawned processes
    assert parallel_map(divmod, [], 2, "pool") == []


def test_parallel_map_says_what_it_cannot_do():
    from harness.claimkit.executors import parallel_map

    with pytest.raises(ValueError, match="unknown executor 'threads': one of local, pool, ray"):
        parallel_map(divmod, [(1, 1)], 0, "threads")
    with pytest.raises(ValueError, match="workers must be an integer ≥ 0, got -1"):
        parallel_map(divmod, [(1, 1)], -1)
    with pytest.raises(ZeroDivisionError):
        parallel_map(divmod, [(1, 0), (2, 0)], 2, "pool")


def test_stored_side_by_side_makes_only_what_the_store_lacks(tmp_path):
    from harness.claimkit.executors import parallel_map, stored_side_by_side

    store = _store(tmp_path)
    config = lambda call: {"kind": "tally", "n": call["n"]}  # noqa: E731
    store.get_or_create(config({"n": 1}), lambda: {"record": {"count": 1, "seen": []}})
    made = []

    def mapper(fn, calls):
        made.extend(kwargs["n"] for _, kwargs in calls)
        return parallel_map(fn, calls, 0, "local")

    calls = [{"n": 1}, {"n": 2}, {"n": 3}]
    records = stored_side_by_side(_tally, calls, store, config, mapper)
    assert made == [2, 3] and records == [Tally(1, []), Tally(2, [2]), Tally(3, [3])]
    judge = _store(tmp_path, judge_only=True)
    with pytest.raises(CacheError, match=r"lacks 2 run\(s\).*tally\(n=4\), tally\(n=5\)"):
        stored_side_by_side(_tally, [{"n": 4}, {"n": 5}], judge, config, mapper)
    assert stored_side_by_side(_tally, [{"n": 6}], None, config, mapper) == [Tally(6, [6])]


def _tally(n: int, cache: Store | None) -> Tally:
    return cached_record(cache, {"kind": "tally", "n": n}, lambda: Tally(n, [n]), lambda d: Tally(**d))
