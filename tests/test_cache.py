"""Model cache: train once, reload, detect corruption, share between processes."""

from __future__ import annotations

import logging
import multiprocessing as mp
import pickle
import time
from pathlib import Path

import pytest
import torch

from harness.cache import ModelCache, code_version, config_key


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


def test_corrupt_entry_is_detected_and_rebuilt(tmp_path, caplog):
    cache = ModelCache(tmp_path, version="v1")
    cache.get_or_create({"x": 1}, lambda: {"v": torch.zeros(1)})
    path = cache.path({"x": 1})
    path.write_bytes(path.read_bytes()[:20])  # truncated
    with caplog.at_level(logging.WARNING):
        entry = cache.get_or_create({"x": 1}, lambda: {"v": torch.ones(1)})
    assert torch.equal(entry["v"], torch.ones(1))
    assert "corrupt cache entry" in caplog.text


class _Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_entries_load_with_weights_only(tmp_path, caplog):
    # a pickle that would run code is refused (weights_only=True) and treated as corrupt
    cache = ModelCache(tmp_path, version="v1")
    cache.root.mkdir(exist_ok=True)
    with open(cache.path({"x": 2}), "wb") as fh:
        pickle.dump({"key": config_key({"x": 2}, "v1"), "evil": _Evil()}, fh)
    with caplog.at_level(logging.WARNING):
        entry = cache.get_or_create({"x": 2}, lambda: {"v": torch.ones(1)})
    assert "evil" not in entry and "corrupt cache entry" in caplog.text


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
