"""Trained-model cache: one file per (full config, code version, environment), shared by xdist workers.

- key: SHA-256 of the JSON config, the code version and the environment. The code version hashes
  every module that decides what is stored: the modules that store entries (they call the cache)
  and, transitively, every project module they import (``fixtures/`` included) — computed from
  the sources' imports, not listed by hand, so editing the code of any of them invalidates old
  entries (their syntax trees count: comments, docstrings and layout do not). The
  environment is the torch version, the device type and the torch thread count (results differ
  across each of them in the last bits, and at fast some verdicts sit inside that noise);
- a file lock per key, so parallel workers train each model once and the others wait and load;
- atomic writes (temporary file + rename), so a crash never leaves half an entry;
- a digest of its content: an entry file is a header line naming the SHA-256 of the bytes after
  it (what ``torch.save`` wrote), checked before anything is loaded, so a changed byte anywhere
  in an entry is never served (``torch.load`` checks no zip CRCs, and a changed number in a
  tensor loads fine);
- ``torch.load(..., weights_only=True)``: entries are plain tensors and containers, never code;
- an entry that fails its digest, fails to load or whose key does not match is rejected with a
  :class:`CacheWarning` (pytest shows it in the warnings summary), deleted and rebuilt;
- a read-only cache folder is served without locking; a run it lacks is a :class:`CacheError`;
- with a planner (``pytest --plan``, harness.claimkit.plan), a run it lacks is noted and not made
  (:class:`Planned`); labs declare the runs they are about to make all at once (:meth:`ModelCache.declare`).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import io
import json
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

import torch
from filelock import FileLock

from harness.sources import REPO, hash_code, imported_modules, project_modules

CACHE_ENV = "BNCLAIMS_CACHE"
MUTATION_ENV = "BNCLAIMS_MUTATION"  # set by the claims plugin under a plugin that changes what is measured
DIGEST_HEADER = b"bnclaims-cache-entry sha256="  # an entry file: this, 64 hex digits, a newline, torch.save's bytes
CACHED_PACKAGES = ("harness", "fixtures")  # where what is stored is made (claims/ only judges)
MACHINERY = "harness.claimkit"  # the claims machinery: it parses, judges and reports, and never computes what is stored
STORES = ("cached_record", "get_or_create", "cached_side_by_side")  # a module naming one of these stores entries


class CacheError(RuntimeError):
    """The cache cannot serve or store an entry (e.g. a read-only cache that lacks it)."""


class CacheWarning(UserWarning):
    """A stored entry was rejected (changed on disk, unreadable, foreign) and is not served."""


class Planned(Exception):
    """Under --plan, a claim asked for runs the model cache lacks: they are listed, not made."""

    def __init__(self, missing: int):
        super().__init__(f"plan: waits for {missing} run(s) not in the model cache")
        self.missing = missing


def versioned_modules(repo: Path | None = None) -> list[Path]:
    """The files the code version hashes: every module that stores cache entries (it names one of
    ``STORES``, so it holds the code that makes them) and every project module these import,
    transitively. What asks for an entry (a fixture, a claim) is in the entry's config, its key; the
    code that judges entries (evidence, readouts, verdicts, the report) does not change what they
    are, so editing it keeps the cache warm — the modules that store entries import none of it. Nor
    does the claims machinery (``MACHINERY``: settings parsing, the registry, the report) count,
    though a lab imports its settings classes: moving or editing it keeps the cache warm too."""
    repo = REPO if repo is None else Path(repo)
    modules = {name: path for name, path in project_modules(repo, CACHED_PACKAGES).items()
               if name != MACHINERY and not name.startswith(MACHINERY + ".")}
    trees = {name: ast.parse(path.read_bytes(), str(path)) for name, path in modules.items()}
    todo = [name for name, tree in trees.items()
            if any(isinstance(n, (ast.Name, ast.Attribute)) and (getattr(n, "id", None) or getattr(n, "attr", None)) in STORES
                   for n in ast.walk(tree))]
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


def config_key(config: Mapping[str, Any], version: str, env: Mapping[str, Any] | None = None) -> str:
    try:
        text = json.dumps({"config": config, "code": version, **({"env": env} if env else {})}, sort_keys=True)
    except TypeError as err:
        raise TypeError(f"cache configs must be JSON data (numbers, strings, lists, dicts): {err}") from None
    return hashlib.sha256(text.encode()).hexdigest()


def describe_config(config: Mapping[str, Any]) -> str:
    """A short name for a cached run: its kind and its scalar settings (for error messages)."""
    scalars = [f"{k}={v}" for k, v in config.items() if k != "kind" and isinstance(v, (str, int, float, bool)) and v is not None]
    return f"{config.get('kind', 'entry')}({', '.join(scalars[:6])})"


class ModelCache:
    """``env`` defaults to :func:`environment` on the CPU; the suite's cache names the session's
    device. ``judge_only``: never create an entry — a missing one is a :class:`CacheError` (a judge
    pass on a login node must not start hours of training)."""

    def __init__(self, root: Path | str, version: str | None = None, env: Mapping[str, Any] | None = None,
                 judge_only: bool = False, planner=None):
        self.root = Path(root)
        self.version = version or code_version()
        self.env = dict(env) if env is not None else environment()
        self.judge_only = judge_only
        self.planner = planner  # harness.claimkit.plan.Planner under --plan: note runs, make none

    def missing(self, configs: list[Mapping[str, Any]]) -> CacheError:
        """The error for runs a judge-only cache lacks."""
        names = ", ".join(describe_config(c) for c in configs[:5]) + (f" and {len(configs) - 5} more" if len(configs) > 5 else "")
        return CacheError(f"--judge-only: the model cache {self.root} lacks {len(configs)} run(s) this claim needs: {names}; "
                          "run without --judge-only where they can train (same code, torch version, device type and threads)")

    def path(self, config: Mapping[str, Any]) -> Path:
        return self.root / f"{config_key(config, self.version, self.env)}.pt"

    def contains(self, config: Mapping[str, Any]) -> bool:
        """Whether an entry for ``config`` is stored (it may still prove unreadable when loaded)."""
        return self.path(config).exists()

    def unplanned(self) -> ModelCache:
        """This cache without its planner: what a recipe hands to the process that makes a run."""
        return ModelCache(self.root, self.version, self.env, self.judge_only)

    def declare(self, configs: Sequence[Mapping[str, Any]], flops: Callable[[int], float | None] | None = None,
                conditional: Callable[[int], bool] | None = None, stored: Callable[[int], bool] | None = None,
                make: Callable[[int], tuple | None] | None = None) -> None:
        """The runs a lab is about to make, declared up front (a no-op unless planning): each is
        noted as stored or missing, with ``flops(i)`` (an estimate, asked for missing runs only),
        ``conditional(i)`` and ``make(i)``: a recipe ``(function, args)`` that makes and stores the
        run in any process (``--plan-execute`` runs them), None when another recipe makes it (a
        search's lower LRs). :class:`Planned` when any is missing. ``stored(i)`` overrides the
        cache lookup (runs that are never stored, e.g. computed in the session)."""
        if self.planner is None:
            return
        missing = 0
        for i, config in enumerate(configs):
            have = self.contains(config) if stored is None else stored(i)
            missing += not have
            self.planner.note(config_key(config, self.version, self.env), config.get("kind", "entry"), describe_config(config),
                              have, None if have or flops is None else flops(i), bool(conditional and conditional(i)),
                              cacheable=stored is None, make=None if have or make is None else make(i))
        if missing:
            raise Planned(missing)

    def get_or_create(self, config: Mapping[str, Any], create: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The cached entry for ``config``, or ``create()``'s result, stored for next time.

        ``create`` returns a dict of tensors / numbers / strings / lists (e.g. a state_dict and a
        training record); the stored entry adds ``key``, ``config`` and ``code_version``.
        """
        key = config_key(config, self.version, self.env)
        path = self.root / f"{key}.pt"
        if self.planner is not None:
            self.declare([config])  # a run nobody declared before asking: listed without an estimate
        if self.judge_only:
            entry = self._load(path, key, delete=False)
            if entry is None:
                raise self.missing([config])
            return entry
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(path) + ".lock")
            lock.acquire()
        except OSError as err:  # a read-only (or unusable) cache folder: serve what it holds, without a lock
            entry = self._load(path, key, delete=False)
            if entry is None:
                raise CacheError(f"the model cache {self.root} (--cache-dir / {CACHE_ENV}) cannot store a new entry "
                                 f"({err.strerror or err}); make it writable or point to another folder") from None
            return entry
        try:
            entry = self._load(path, key)
            if entry is not None:
                return entry
            entry = dict(create())
            entry.update(key=key, config=json.loads(json.dumps(config)), code_version=self.version, env=self.env)
            write_entry(path, entry)
            return entry
        finally:
            lock.release()

    def _load(self, path: Path, key: str, delete: bool = True) -> dict[str, Any] | None:
        """The entry stored at ``path``, or None: missing, or rejected with a :class:`CacheWarning`
        (and deleted, so that it is rebuilt, unless ``delete`` is False: a read-only or judge-only
        cache serves nothing it cannot verify, and leaves the file alone)."""
        try:
            return read_entry(path, key)
        except FileNotFoundError:
            return None
        except Exception as err:  # a changed byte, no digest, unreadable, truncated, foreign or code-carrying
            what = "deleted, rebuilding it" if delete else "not served"
            warnings.warn(CacheWarning(f"model cache: entry {path} rejected ({err}): {what}"), stacklevel=2)
            if delete:
                path.unlink(missing_ok=True)
            return None


class EntryRejected(ValueError):
    """A cache file that is not an intact entry of the expected key; the message says why."""


def entry_bytes(entry: Mapping[str, Any]) -> bytes:
    """What an entry file holds: the digest header, then ``torch.save``'s bytes of ``entry``."""
    buffer = io.BytesIO()
    torch.save(dict(entry), buffer)
    payload = buffer.getvalue()
    return DIGEST_HEADER + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload


def write_entry(path: Path, entry: Mapping[str, Any]) -> None:
    """Store ``entry`` at ``path`` atomically (a temporary file, then a rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(entry_bytes(entry))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_entry(path: Path, key: str) -> dict[str, Any]:
    """The entry at ``path``, after checking its bytes against the digest in its header and its
    stored key against ``key``; :class:`EntryRejected` naming what failed (FileNotFoundError when
    there is none)."""
    data = Path(path).read_bytes()
    header, newline, payload = data.partition(b"\n")
    if not data.startswith(DIGEST_HEADER):
        raise EntryRejected("it has no content digest: written by an older bnclaims or by another program")
    if not newline or len(header) != len(DIGEST_HEADER) + 64:
        raise EntryRejected("its digest line is damaged or cut short")
    if hashlib.sha256(payload).hexdigest().encode() != header[len(DIGEST_HEADER):]:
        raise EntryRejected("its content does not match its digest: it changed on disk or was cut short")
    try:
        entry = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - an intact file torch cannot load (e.g. a pickle that carries code)
        raise EntryRejected(f"torch cannot load it: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from None
    if not isinstance(entry, dict) or entry.get("key") != key:
        raise EntryRejected("it belongs to another key")
    return entry


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
