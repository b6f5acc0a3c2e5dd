"""Model cache: train once, reload, detect corruption, share between processes."""

from __future__ import annotations

import io
import multiprocessing as mp
import struct
import time
import warnings
from pathlib import Path

import pytest
import torch

from harness.cache import DIGEST_HEADER, CacheError, CacheWarning, ModelCache, code_version, config_key, entry_bytes


def test_creates_once_then_loads(tmp_path):
    cache, calls = ModelCache(tmp_path, version="v1"), []

    def create():
        calls.append(1)
        return {"state_dict": {"w": torch.ones(3)}, "result": {"acc": 0.5}}

    first = cache.get_or_create({"lr": 0.1}, create)
    second = cache.get_or_create({"lr": 0.1}, create)
    assert len(calls) == 1
    assert torch.equal(second["state_dict"]["w"], torch.ones(3)) and second["result"] == {"acc": 0.5}
    assert second["config"] == {"lr": 0.1} and first["key"] == second["key"]
    assert list(tmp_path.glob("*.tmp")) == []


def test_key_depends_on_config_and_code_version():
    assert config_key({"a": 1}, "v1") != config_key({"a": 2}, "v1")
    assert config_key({"a": 1}, "v1") != config_key({"a": 1}, "v2")
    assert config_key({"a": 1, "b": 2}, "v1") == config_key({"b": 2, "a": 1}, "v1")
    assert len(code_version()) == 16
    with pytest.raises(TypeError, match="JSON data"):
        config_key({"a": object()}, "v1")


def test_corrupt_entry_is_detected_and_rebuilt(tmp_path):
    cache = ModelCache(tmp_path, version="v1")
    cache.get_or_create({"x": 1}, lambda: {"v": torch.zeros(1)})
    path = cache.path({"x": 1})
    path.write_bytes(path.read_bytes()[:20])  # truncated
    with pytest.warns(CacheWarning, match=r"model cache: entry .*\.pt rejected \(.*\): deleted, rebuilding it"):
        entry = cache.get_or_create({"x": 1}, lambda: {"v": torch.ones(1)})
    assert torch.equal(entry["v"], torch.ones(1))


def test_every_changed_byte_of_an_entry_is_rejected(tmp_path):
    """Whichever byte of an entry file changes (its digest line, the zip's headers, padding or
    checksums, the pickle, a tensor's storage), the entry is not served, and it is rebuilt."""
    cache = ModelCache(tmp_path, version="v1")
    config = {"kind": "edge", "N": 8}
    cache.get_or_create(config, lambda: {"gap": torch.tensor([0.5, -1.25], dtype=torch.float64), "note": "x"})
    path, key = cache.path(config), config_key(config, "v1", cache.env)
    original = path.read_bytes()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for i in range(len(original)):
            changed = bytearray(original)
            changed[i] ^= 0x01
            path.write_bytes(bytes(changed))
            assert cache._load(path, key, delete=False) is None, f"byte {i} of {len(original)} changed and the entry was served"
    assert len(seen) == len(original) and all(issubclass(w.category, CacheWarning) for w in seen)
    path.write_bytes(original)
    assert cache.get_or_create(config, lambda: pytest.fail("rebuilt"))["note"] == "x"  # the intact file is served
    path.write_bytes(original[:200] + bytes([original[200] ^ 0x80]) + original[201:])
    with pytest.warns(CacheWarning):
        assert cache.get_or_create(config, lambda: {"note": "rebuilt"})["note"] == "rebuilt"


def test_a_changed_number_inside_an_intact_zip_is_not_served(tmp_path):
    """The case torch.load alone misses (it checks no zip CRCs): one float64 of a stored tensor
    changed in place; torch would load the changed value, the cache rejects the entry."""
    cache = ModelCache(tmp_path, version="v1")
    config = {"kind": "rmt-edge"}
    gaps = torch.tensor([0.015625, 0.25, 0.5], dtype=torch.float64)
    cache.get_or_create(config, lambda: {"gaps": gaps})
    path = cache.path(config)
    data = path.read_bytes()
    needle, forged = struct.pack("<d", 0.25), struct.pack("<d", -61.207)
    assert data.count(needle) == 1
    data = data.replace(needle, forged)
    path.write_bytes(data)
    payload = data.partition(b"\n")[2]
    assert torch.load(io.BytesIO(payload), weights_only=True)["gaps"][1] == -61.207  # what torch alone would serve
    with pytest.warns(CacheWarning, match="does not match its digest: it changed on disk"):
        entry = cache.get_or_create(config, lambda: {"gaps": gaps.clone()})
    assert torch.equal(entry["gaps"], gaps)


def test_an_entry_without_a_digest_is_rebuilt(tmp_path):
    """An entry from before entries carried a digest (a bare torch.save file) cannot be checked:
    it is rebuilt once, under the same key."""
    cache = ModelCache(tmp_path, version="v1")
    cache.root.mkdir(exist_ok=True)
    key = config_key({"x": 3}, "v1", cache.env)
    torch.save({"key": key, "v": torch.zeros(1)}, cache.path({"x": 3}))
    with pytest.warns(CacheWarning, match="has no content digest"):
        entry = cache.get_or_create({"x": 3}, lambda: {"v": torch.ones(1)})
    assert torch.equal(entry["v"], torch.ones(1)) and cache.path({"x": 3}).read_bytes().startswith(DIGEST_HEADER)


def test_a_judge_only_cache_serves_no_changed_entry_and_keeps_the_file(tmp_path):
    ModelCache(tmp_path, version="v1").get_or_create({"x": 4}, lambda: {"v": torch.zeros(2)})
    path = ModelCache(tmp_path, version="v1").path({"x": 4})
    data = bytearray(path.read_bytes())
    data[-30] ^= 0xFF
    path.write_bytes(bytes(data))
    judge = ModelCache(tmp_path, version="v1", judge_only=True)
    with pytest.warns(CacheWarning, match="rejected .*: not served"), pytest.raises(CacheError, match="--judge-only: .* lacks 1 run"):
        judge.get_or_create({"x": 4}, lambda: pytest.fail("trained"))
    assert path.read_bytes() == bytes(data)  # left for whoever can rebuild it


class _Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_entries_load_with_weights_only(tmp_path):
    # an intact entry (its digest matches) whose pickle would run code is refused (weights_only=True) and rebuilt
    cache = ModelCache(tmp_path, version="v1")
    cache.root.mkdir(exist_ok=True)
    cache.path({"x": 2}).write_bytes(entry_bytes({"key": config_key({"x": 2}, "v1", cache.env), "evil": _Evil()}))
    with pytest.warns(CacheWarning, match="its serializer cannot load it: UnpicklingError"):
        entry = cache.get_or_create({"x": 2}, lambda: {"v": torch.ones(1)})
    assert "evil" not in entry


def _worker(root: str, counter: str) -> None:
    def create():
        with open(counter, "a") as fh:
            fh.write("trained\n")
        time.sleep(0.5)  # long enough that the other worker arrives while we train
        return {"v": torch.arange(4)}

    entry = ModelCache(root, version="v1").get_or_create({"model": "m"}, create)
    assert torch.equal(entry["v"], torch.arange(4))


def test_parallel_workers_train_once(tmp_path):
    counter = tmp_path / "count.txt"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(str(tmp_path / "cache"), str(counter))) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert Path(counter).read_text().count("trained") == 1


# --- what versions the cache -------------------------------------------------------------------

def test_every_module_that_stores_entries_is_versioned():
    """The code version starts from the labs the suite names (``MAKERS``); a module that calls a
    storing function but is not reached from them would make entries that outlive its edits."""
    import ast

    from harness import cache as cache_module
    from harness.sources import REPO, project_modules

    storing_calls = ("cached_record", "get_or_create", "cached_side_by_side")  # a module calling one stores entries
    versioned = set(cache_module.versioned_modules())
    modules = project_modules(REPO, cache_module.CACHED_PACKAGES)
    storing = set()
    for name, path in modules.items():
        if any(name == n or name.startswith(n + ".") for n in cache_module.NOT_VERSIONED):
            continue
        for node in ast.walk(ast.parse(path.read_bytes())):
            if isinstance(node, ast.Call):
                func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
                if func in storing_calls:
                    storing.add(path)
    assert storing and storing <= versioned, f"storing modules the code version misses: {sorted(storing - versioned)}"
    assert set(cache_module.MAKERS) <= set(modules)
    assert not {p for p in versioned if p.name == "cache.py" or "claimkit" in p.parts}  # plumbing and machinery: never


def test_the_model_cache_is_the_machinery_store_with_torch_entries(tmp_path):
    from harness.claimkit.plan import Planned as MachineryPlanned
    from harness.claimkit.store import Store, read_entry

    from harness.cache import TORCH, Planned

    cache = ModelCache(tmp_path, version="v1")
    assert isinstance(cache, Store) and cache.serializer is TORCH and Planned is MachineryPlanned
    entry = cache.get_or_create({"x": 1}, lambda: {"w": torch.arange(3.0)})
    path = cache.path({"x": 1})
    assert path.suffix == ".pt" and path.read_bytes().startswith(DIGEST_HEADER)
    assert torch.equal(read_entry(path, entry["key"], TORCH, DIGEST_HEADER)["w"], torch.arange(3.0))
