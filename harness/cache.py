"""The batch-norm suite's model cache: the claims machinery's store (``harness.claimkit.store``)
with what makes its entries what they are.

- entries are tensors and containers, written with ``torch.save`` and read with
  ``torch.load(..., weights_only=True)``: never code (:data:`TORCH`). ``torch.load`` checks no zip
  CRCs and a changed number in a tensor loads fine, so the store's content digest is what catches
  a changed byte;
- the code version hashes every module that makes what is stored: the labs that store entries
  (:data:`MAKERS`) and, transitively, every project module they import (``fixtures/`` included),
  found from the sources' imports, so editing the code of any of them invalidates old entries
  (their syntax trees count: comments, docstrings and layout do not). Neither the claims
  machinery nor this module counts: they parse, judge, store and report, and what they put in a
  key (the environment, a data fingerprint) is in the key itself;
- the environment is the torch version, the device type and the torch thread count (results differ
  across each of them in the last bits, and at fast some verdicts sit inside that noise), and the
  mutation plugin in force, if any.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from harness.claimkit.store import (
    CacheError, CacheWarning, EntryRejected, Planned, Store, cached_record, config_key, describe_config)
from harness.claimkit.store import entry_bytes as _entry_bytes
from harness.sources import REPO, hash_code, imported_modules, project_modules

__all__ = ["CACHE_ENV", "CacheError", "CacheWarning", "EntryRejected", "ModelCache", "Planned", "TORCH", "cached_record",
           "code_version", "config_key", "data_fingerprint", "default_cache_dir", "describe_config", "entry_bytes",
           "environment", "versioned_modules"]

CACHE_ENV = "BNCLAIMS_CACHE"
MUTATION_ENV = "BNCLAIMS_MUTATION"  # set by the claims plugin under a plugin that changes what is measured
DIGEST_HEADER = b"bnclaims-cache-entry sha256="  # an entry file: this, 64 hex digits, a newline, torch.save's bytes
CACHED_PACKAGES = ("harness", "fixtures")  # where what is stored is made (claims/ only judges)
NOT_VERSIONED = ("harness.claimkit", "harness.cache")  # the machinery and the store's plumbing: they never compute what is stored
MAKERS = ("fixtures.init", "fixtures.rmt", "harness.dln", "harness.lr_search", "harness.resnet_lab", "harness.vgg_runs")


class _Torch:
    """Entries of tensors and containers: ``torch.save`` bytes, loaded on the CPU with ``weights_only=True``."""

    def dump(self, entry: dict[str, Any]) -> bytes:
        buffer = io.BytesIO()
        torch.save(entry, buffer)
        return buffer.getvalue()

    def load(self, payload: bytes) -> dict[str, Any]:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)


TORCH = _Torch()


def versioned_modules(repo: Path | None = None) -> list[Path]:
    """The files the code version hashes: the modules that store entries (:data:`MAKERS`: they hold
    the code that makes them) and every project module these import, transitively. What asks for an
    entry (a fixture, a claim) is in the entry's config, its key; the code that judges entries
    (evidence, readouts, verdicts, the report) does not change what they are, so editing it keeps
    the cache warm, and so does the claims machinery and the store's plumbing (:data:`NOT_VERSIONED`),
    though a lab imports its settings classes and the cache. ``tests/test_cache.py`` checks that
    every module calling a storing function is versioned."""
    repo = REPO if repo is None else Path(repo)
    modules = {name: path for name, path in project_modules(repo, CACHED_PACKAGES).items()
               if not any(name == n or name.startswith(n + ".") for n in NOT_VERSIONED)}
    trees = {name: ast.parse(path.read_bytes(), str(path)) for name, path in modules.items()}
    todo = [name for name in MAKERS if name in modules]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(imported_modules(trees[name], modules) - seen)
            todo.extend(p for p in modules if name.startswith(p + ".") and p not in seen)  # parent packages run first
    return sorted(modules[n] for n in seen)


@functools.cache
def code_version(repo: Path | None = None) -> str:
    """Hash of the code that determines what a cached entry is (:func:`versioned_modules`): their
    syntax trees, so a comment, a docstring or a line break keeps stored runs (harness.sources.hash_code)."""
    repo = REPO if repo is None else Path(repo)
    return hash_code(repo, versioned_modules(repo))


def environment(device: str = "cpu") -> dict[str, Any]:
    """What besides config and code changes a result's bits: torch version, device type, threads."""
    import torch

    env = {"torch": str(torch.__version__), "device": str(device).split(":")[0], "threads": torch.get_num_threads()}
    if os.environ.get(MUTATION_ENV):  # runs under a mutation plugin get keys of their own (other keys unchanged)
        env["mutation"] = os.environ[MUTATION_ENV]
    return env


class ModelCache(Store):
    """The suite's store of trained models and probed runs (``fixtures/cache`` by default).
    ``version`` defaults to :func:`code_version`, ``env`` to :func:`environment` on the CPU (the
    suite's cache names the session's device). ``judge_only``: never create an entry — a missing
    one is a :class:`CacheError` (a judge pass on a login node must not start hours of training)."""

    what = "model cache"
    option = f"--cache-dir / {CACHE_ENV}"
    same = "same code, torch version, device type and threads"
    suffix = ".pt"

    def __init__(self, root: Path | str, version: str | None = None, env: Mapping[str, Any] | None = None,
                 judge_only: bool = False, planner=None):
        super().__init__(root, version or code_version(), environment() if env is None else env, TORCH, DIGEST_HEADER,
                         judge_only, planner)


def entry_bytes(entry: Mapping[str, Any]) -> bytes:
    """What a model cache entry file holds: the digest header, then ``torch.save``'s bytes of ``entry``."""
    return _entry_bytes(entry, TORCH, DIGEST_HEADER)


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
