"""Configuration checked in the main process before any claim or worker starts.

Each check raises :class:`ConfigError` with one line that names the option (or environment
variable) at fault and what to do; the pytest plugin turns it into a usage error, so a bad setting
never costs a computed claim.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class ConfigError(ValueError):
    """A setting the suite cannot run with; the message names it and the fix."""


def _try_write(folder: Path) -> OSError | None:
    """None when a file can be created (and removed) in ``folder``, else the error."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".bnclaims-write-check-"):
            return None
    except OSError as err:
        return err


def report_dir(path: Path, option: str, create: bool = True) -> None:
    """The report folder exists (or can be made) and is writable."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path} is a file, not a folder: give a folder for claims.json and claims.html")
    if not path.exists():
        if not create:
            return
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"{option} {path} cannot be created ({err.strerror or err}): give a writable folder") from None
    err = _try_write(path)
    if err is not None:
        raise ConfigError(f"{option} {path} is not writable ({err.strerror or err}): give a writable folder")


def cache_dir(path: Path, option: str) -> bool:
    """The model cache is a folder (or can become one: it is made when the first entry is stored);
    returns whether it is writable. A read-only cache is allowed: its entries are served without
    locking, and a run it lacks stops that claim with an error."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path} is a file, not a folder: give a folder for the trained-model cache")
    existing = path if path.exists() else next((p for p in path.parents if p.exists()), Path("/"))
    if not existing.is_dir():
        raise ConfigError(f"{option} {path} cannot be created: {existing} is a file; give a folder for the trained-model cache")
    return _try_write(existing) is None


def gpus(environ: os._Environ | dict) -> None:
    """BNCLAIMS_GPUS, when set, parses (a count or distinct GPU indices / UUIDs)."""
    from harness.device import GPUS_ENV, parse_gpu_list

    if GPUS_ENV in environ:
        try:
            parse_gpu_list(environ[GPUS_ENV], GPUS_ENV)
        except ValueError as err:
            raise ConfigError(f"{err} (unset {GPUS_ENV} to use every GPU nvidia-smi lists)") from None


def claims_dir(path: Path, option: str) -> None:
    if not path.is_dir():
        raise ConfigError(f"{option} {path} is not a folder of claims YAML files (default: <rootdir>/claims)")


def cifar10(root: Path | None, option: str) -> None:
    """A configured CIFAR-10 root must load: a given root never silently turns into stand-in data."""
    if root is None:
        return
    from harness.data import DataUnavailable, load_cifar10

    try:
        load_cifar10(root)
    except DataUnavailable as err:
        raise ConfigError(f"{option}: {err}") from None
