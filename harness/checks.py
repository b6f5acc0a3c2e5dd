"""The batch-norm suite's configuration checks: the model cache, the GPU list, CIFAR-10.

Like the claims machinery's (``harness.claimkit.checks``), each raises :class:`ConfigError` with
one line naming the option at fault and what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.claimkit.checks import ConfigError, try_write


def cache_dir(path: Path, option: str) -> bool:
    """The model cache is a folder (or can become one: it is made when the first entry is stored);
    returns whether it is writable. A read-only cache is allowed: its entries are served without
    locking, and a run it lacks stops that claim with an error."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path} is a file, not a folder: give a folder for the trained-model cache")
    existing = path if path.exists() else next((p for p in path.parents if p.exists()), Path("/"))
    if not existing.is_dir():
        raise ConfigError(f"{option} {path} cannot be created: {existing} is a file; give a folder for the trained-model cache")
    return try_write(existing) is None


def gpus(environ: os._Environ | dict) -> None:
    """BNCLAIMS_GPUS, when set, parses (a count or distinct GPU indices / UUIDs)."""
    from harness.device import GPUS_ENV, parse_gpu_list

    if GPUS_ENV in environ:
        try:
            parse_gpu_list(environ[GPUS_ENV], GPUS_ENV)
        except ValueError as err:
            raise ConfigError(f"{err} (unset {GPUS_ENV} to use every GPU nvidia-smi lists)") from None


def cifar10(root: Path | None, option: str) -> None:
    """A configured CIFAR-10 root must load: a given root never silently turns into stand-in data."""
    if root is None:
        return
    from harness.data import DataUnavailable, load_cifar10

    try:
        load_cifar10(root)
    except DataUnavailable as err:
        raise ConfigError(f"{option}: {err}") from None
