"""Trained-model cache: one file per (full config, code version), shared by xdist workers.

- key: SHA-256 of the JSON config plus a code version (a hash of the harness sources that shape
  a trained model), so editing the training code or the model invalidates old entries;
- a file lock per key, so parallel workers train each model once and the others wait and load;
- atomic writes (temporary file + rename), so a crash never leaves half an entry;
- ``torch.load(..., weights_only=True)``: entries are plain tensors and containers, never code;
- an entry that fails to load or whose key does not match is logged, deleted and rebuilt.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

import torch
from filelock import FileLock

log = logging.getLogger(__name__)
CACHE_ENV = "BNCLAIMS_CACHE"
# what a cached entry depends on: training, data, models, the run store and the ResNet lab (search and
# few-step records), and the probed runs with their probes
_VERSIONED_SOURCES = ("train.py", "data.py", "norms.py", "models", "lr_search.py", "resnet_lab.py", "dln.py", "vgg_runs.py", "probes")


def code_version() -> str:
    """Hash of the sources that determine what a cached model is."""
    root = Path(__file__).parent
    digest = hashlib.sha256()
    for name in _VERSIONED_SOURCES:
        path = root / name
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(f.relative_to(root).as_posix().encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()[:16]


def config_key(config: Mapping[str, Any], version: str) -> str:
    try:
        text = json.dumps({"config": config, "code": version}, sort_keys=True)
    except TypeError as err:
        raise TypeError(f"cache configs must be JSON data (numbers, strings, lists, dicts): {err}") from None
    return hashlib.sha256(text.encode()).hexdigest()


class ModelCache:
    def __init__(self, root: Path | str, version: str | None = None):
        self.root = Path(root)
        self.version = version or code_version()

    def path(self, config: Mapping[str, Any]) -> Path:
        return self.root / f"{config_key(config, self.version)}.pt"

    def contains(self, config: Mapping[str, Any]) -> bool:
        """Whether an entry for ``config`` is stored (it may still prove unreadable when loaded)."""
        return self.path(config).exists()

    def get_or_create(self, config: Mapping[str, Any], create: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The cached entry for ``config``, or ``create()``'s result, stored for next time.

        ``create`` returns a dict of tensors / numbers / strings / lists (e.g. a state_dict and a
        training record); the stored entry adds ``key``, ``config`` and ``code_version``.
        """
        key = config_key(config, self.version)
        path = self.root / f"{key}.pt"
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            entry = self._load(path, key)
            if entry is not None:
                return entry
            entry = dict(create())
            entry.update(key=key, config=json.loads(json.dumps(config)), code_version=self.version)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            torch.save(entry, tmp)
            os.replace(tmp, path)
            return entry

    def _load(self, path: Path, key: str) -> dict[str, Any] | None:
        if not path.exists():
            return None
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(entry, dict) or entry.get("key") != key:
                raise ValueError("entry does not belong to this key")
            return entry
        except Exception as err:  # unreadable, truncated, foreign or tampered file
            log.warning("corrupt cache entry %s (%s: %s): deleting and rebuilding", path, type(err).__name__, err)
            path.unlink(missing_ok=True)
            return None


def cached_record(cache: ModelCache | None, config: Mapping[str, Any], create: Callable[[], T],
                  load: Callable[[dict], T]) -> T:
    """A measured record (a dataclass of plain data, e.g. a probed training run) made once ever.

    Without a cache this is ``create()``. With one, a miss stores ``dataclasses.asdict(create())``
    and both a miss and a hit return ``load`` of the stored dict, so a cold and a warm run hand
    the claims exactly the same values."""
    if cache is None:
        return create()
    entry = cache.get_or_create(config, lambda: {"record": dataclasses.asdict(create())})
    return load(entry["record"])


def data_fingerprint(data) -> dict:
    """What identifies an ``ImageData`` in a cache key: its name, sizes and a hash of its first and
    last images and labels (cheap, and any regenerated or different data changes it)."""
    digest = hashlib.sha256()
    for t in (data.train_x[:256], data.train_x[-256:], data.test_x[:256], data.train_y, data.test_y):
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return {"name": data.name, "n_train": len(data.train_y), "n_test": len(data.test_y), "hash": digest.hexdigest()[:16]}


def default_cache_dir(option: str | None, rootdir: Path) -> Path:
    value = option or os.environ.get(CACHE_ENV)
    return Path(value) if value else rootdir / "fixtures" / "cache"
