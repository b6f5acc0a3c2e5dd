"""A store of measured runs: one file per (config, code version, environment), shared by processes.

A suite makes its expensive measurements (trained models, probed runs, counted sorts) once and
serves them to every claim and every later session from here. The store knows nothing of what an
entry holds: the suite gives it

- a *code version* (a hash of the code that makes entries: editing it makes new keys),
- an *environment* (what besides config and code changes a result's bits, e.g. a library version
  or a device type), and
- a :class:`Serializer` that turns an entry (a dict) into bytes and back (:data:`JSON` for plain
  data; the batch-norm suite stores tensors with ``torch.save``).

What the store guarantees:

- key: SHA-256 of the JSON config, the code version and the environment (:func:`config_key`);
- a file lock per key, so parallel workers make each entry once and the others wait and load;
- atomic writes (temporary file + rename), so a crash never leaves half an entry;
- a digest of its content: an entry file is a header line naming the SHA-256 of the bytes after
  it (what the serializer wrote), checked before anything is loaded, so a changed byte anywhere in
  an entry is never served;
- an entry that fails its digest, fails to load or whose key does not match is rejected with a
  :class:`CacheWarning` (pytest shows it in the warnings summary), deleted and rebuilt;
- a read-only store folder is served without locking; an entry it lacks is a :class:`CacheError`;
- ``judge_only``: never make an entry; a missing one is a :class:`CacheError` naming it;
- with a planner (``pytest --plan``, :mod:`harness.claimkit.plan`), an entry it lacks is noted and
  not made (:class:`~harness.claimkit.plan.Planned`); a lab declares the runs it is about to make
  all at once (:meth:`Store.declare`).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from filelock import FileLock

from harness.claimkit.plan import Planned, Planner

T = TypeVar("T")

__all__ = ["CacheError", "CacheWarning", "EntryRejected", "JSON", "Planned", "Serializer", "Store", "cached_record",
           "config_key", "describe_config", "entry_bytes", "read_entry", "write_entry"]


class CacheError(RuntimeError):
    """The store cannot serve or store an entry (e.g. a read-only or judge-only store that lacks it)."""


class CacheWarning(UserWarning):
    """A stored entry was rejected (changed on disk, unreadable, foreign) and is not served."""


class EntryRejected(ValueError):
    """A store file that is not an intact entry of the expected key; the message says why."""


class Serializer(Protocol):
    """How a store turns an entry into bytes and back. ``load`` raises on bytes it cannot read."""

    def dump(self, entry: dict[str, Any]) -> bytes: ...

    def load(self, payload: bytes) -> dict[str, Any]: ...


class _Json:
    """Entries of plain data (numbers, strings, lists, dicts) as UTF-8 JSON."""

    def dump(self, entry: dict[str, Any]) -> bytes:
        return json.dumps(entry, sort_keys=True).encode()

    def load(self, payload: bytes) -> dict[str, Any]:
        return json.loads(payload.decode())


JSON: Serializer = _Json()


def config_key(config: Mapping[str, Any], version: str, env: Mapping[str, Any] | None = None) -> str:
    try:
        text = json.dumps({"config": config, "code": version, **({"env": env} if env else {})}, sort_keys=True)
    except TypeError as err:
        raise TypeError(f"store configs must be JSON data (numbers, strings, lists, dicts): {err}") from None
    return hashlib.sha256(text.encode()).hexdigest()


def describe_config(config: Mapping[str, Any]) -> str:
    """A short name for a stored run: its kind and its scalar settings (for error messages)."""
    scalars = [f"{k}={v}" for k, v in config.items() if k != "kind" and isinstance(v, (str, int, float, bool)) and v is not None]
    return f"{config.get('kind', 'entry')}({', '.join(scalars[:6])})"


def entry_bytes(entry: Mapping[str, Any], serializer: Serializer, header: bytes) -> bytes:
    """What an entry file holds: ``header``, the SHA-256 of the payload in hex, a newline, then the
    serializer's bytes of ``entry`` (the payload)."""
    payload = serializer.dump(dict(entry))
    return header + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload


def write_entry(path: Path, entry: Mapping[str, Any], serializer: Serializer, header: bytes) -> None:
    """Store ``entry`` at ``path`` atomically (a temporary file, then a rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(entry_bytes(entry, serializer, header))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_entry(path: Path, key: str, serializer: Serializer, header: bytes) -> dict[str, Any]:
    """The entry at ``path``, after checking its bytes against the digest in its header and its
    stored key against ``key``; :class:`EntryRejected` naming what failed (FileNotFoundError when
    there is none)."""
    data = Path(path).read_bytes()
    line, newline, payload = data.partition(b"\n")
    if not data.startswith(header):
        raise EntryRejected("it has no content digest: written by an older version of the suite or by another program")
    if not newline or len(line) != len(header) + 64:
        raise EntryRejected("its digest line is damaged or cut short")
    if hashlib.sha256(payload).hexdigest().encode() != line[len(header):]:
        raise EntryRejected("its content does not match its digest: it changed on disk or was cut short")
    try:
        entry = serializer.load(payload)
    except Exception as err:  # noqa: BLE001 - an intact file the serializer cannot load (e.g. a pickle that carries code)
        first = str(err).splitlines()[0] if str(err) else ""
        raise EntryRejected(f"its serializer cannot load it: {type(err).__name__}: {first}") from None
    if not isinstance(entry, dict) or entry.get("key") != key:
        raise EntryRejected("it belongs to another key")
    return entry


class Store:
    """Entries under ``root``, keyed by config, ``version`` and ``env``, written by ``serializer``
    behind ``header``. A suite names what its store is for and how to point it elsewhere in its
    errors through the class attributes (``what``, ``option``, ``same``)."""

    what = "store"  # what the errors call it
    option: str | None = None  # how a user points it to another folder (an option, an environment variable)
    same = "same code and environment"  # what a judge-only store's entries must have been made with
    suffix = ".entry"

    def __init__(self, root: Path | str, version: str, env: Mapping[str, Any], serializer: Serializer = JSON,
                 header: bytes = b"claimkit-entry sha256=", judge_only: bool = False, planner: Planner | None = None):
        if not version:
            raise ValueError("a store needs a code version (a hash of the code that makes its entries)")
        self.root = Path(root)
        self.version = version
        self.env = dict(env)
        self.serializer = serializer
        self.header = header
        self.judge_only = judge_only
        self.planner = planner  # under --plan: note runs, make none

    @property
    def planning(self) -> bool:
        """Whether this is a ``--plan`` pass: runs are noted, none made. A lab asks this, never the
        planner: the planner is the store's business."""
        return self.planner is not None

    def expect(self, key: str, kind: str, name: str, flops: float | None) -> None:
        """Under --plan, a *pending* run: one whose config is known only once earlier runs are stored
        (a full run at the LR a search will pick), listed under ``key`` and priced, never made here."""
        if self.planner is not None:
            self.planner.note(key, kind, name, stored=False, flops=flops, pending=True)

    def conditional_from_here(self) -> None:
        """Under --plan, every run the current claim declares from now on is conditional: it is made
        only if something not known yet allows it (a lab's preconditions, measured once its runs are
        stored)."""
        if self.planner is not None:
            self.planner.from_here_conditional()

    def key(self, config: Mapping[str, Any]) -> str:
        return config_key(config, self.version, self.env)

    def path(self, config: Mapping[str, Any]) -> Path:
        return self.root / f"{self.key(config)}{self.suffix}"

    def contains(self, config: Mapping[str, Any]) -> bool:
        """Whether an entry for ``config`` is stored (it may still prove unreadable when loaded)."""
        return self.path(config).exists()

    def unplanned(self) -> Store:
        """This store without its planner: what a recipe hands to the process that makes a run."""
        plain = copy.copy(self)
        plain.planner = None
        return plain

    def missing(self, configs: Sequence[Mapping[str, Any]]) -> CacheError:
        """The error for runs a judge-only store lacks."""
        names = ", ".join(describe_config(c) for c in configs[:5]) + (f" and {len(configs) - 5} more" if len(configs) > 5 else "")
        return CacheError(f"--judge-only: the {self.what} {self.root} lacks {len(configs)} run(s) this claim needs: {names}; "
                          f"run without --judge-only where they can be made ({self.same})")

    def declare(self, configs: Sequence[Mapping[str, Any]], flops: Callable[[int], float | None] | None = None,
                conditional: Callable[[int], bool] | None = None, stored: Callable[[int], bool] | None = None,
                make: Callable[[int], tuple | None] | None = None) -> None:
        """The runs a lab is about to make, declared up front (a no-op unless planning): each is
        noted as stored or missing, with ``flops(i)`` (an estimate, asked for missing runs only),
        ``conditional(i)`` and ``make(i)``: a recipe ``(function, args)`` that makes and stores the
        run in any process (``--plan-execute`` runs them), None when another recipe makes it (a
        search's lower LRs). :class:`Planned` when any is missing. ``stored(i)`` overrides the
        store lookup (runs that are never stored, e.g. computed in the session)."""
        if self.planner is None:
            return
        missing = 0
        for i, config in enumerate(configs):
            have = self.contains(config) if stored is None else stored(i)
            missing += not have
            self.planner.note(self.key(config), config.get("kind", "entry"), describe_config(config),
                              have, None if have or flops is None else flops(i), bool(conditional and conditional(i)),
                              cacheable=stored is None, make=None if have or make is None else make(i))
        if missing:
            raise Planned(missing)

    def get_or_create(self, config: Mapping[str, Any], create: Callable[[], Mapping[str, Any]]) -> dict[str, Any]:
        """The stored entry for ``config``, or ``create()``'s result, stored for next time.

        ``create`` returns a dict the serializer can write; the stored entry adds ``key``,
        ``config``, ``code_version`` and ``env``.
        """
        key = self.key(config)
        path = self.path(config)
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
        except OSError as err:  # a read-only (or unusable) store folder: serve what it holds, without a lock
            entry = self._load(path, key, delete=False)
            if entry is None:
                where = f" ({self.option})" if self.option else ""
                raise CacheError(f"the {self.what} {self.root}{where} cannot store a new entry "
                                 f"({err.strerror or err}); make it writable or point to another folder") from None
            return entry
        try:
            entry = self._load(path, key)
            if entry is not None:
                return entry
            entry = dict(create())
            entry.update(key=key, config=json.loads(json.dumps(config)), code_version=self.version, env=self.env)
            write_entry(path, entry, self.serializer, self.header)
            return entry
        finally:
            lock.release()

    def _load(self, path: Path, key: str, delete: bool = True) -> dict[str, Any] | None:
        """The entry stored at ``path``, or None: missing, or rejected with a :class:`CacheWarning`
        (and deleted, so that it is rebuilt, unless ``delete`` is False: a read-only or judge-only
        store serves nothing it cannot verify, and leaves the file alone)."""
        try:
            return read_entry(path, key, self.serializer, self.header)
        except FileNotFoundError:
            return None
        except Exception as err:  # noqa: BLE001 - a changed byte, no digest, unreadable, truncated, foreign or code-carrying
            what = "deleted, rebuilding it" if delete else "not served"
            warnings.warn(CacheWarning(f"{self.what}: entry {path} rejected ({err}): {what}"), stacklevel=2)
            if delete:
                path.unlink(missing_ok=True)
            return None


def cached_record(store: Store | None, config: Mapping[str, Any], create: Callable[[], T],
                  load: Callable[[dict], T]) -> T:
    """A measured record (a dataclass of plain data, e.g. a probed training run) made once ever.

    Without a store this is ``create()``. With one, a miss stores ``dataclasses.asdict(create())``
    and both a miss and a hit return ``load`` of the stored dict, so a cold and a warm run hand
    the claims exactly the same values."""
    if store is None:
        return create()
    entry = store.get_or_create(config, lambda: {"record": dataclasses.asdict(create())})
    return load(entry["record"])
