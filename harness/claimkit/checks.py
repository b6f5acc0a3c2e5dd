"""Configuration checked in the main process before any claim or worker starts.

Each check raises :class:`ConfigError` with one line that names the option (or environment
variable) at fault and what to do; the pytest plugin turns it into a usage error, so a bad setting
never costs a computed claim.
"""

from __future__ import annotations

import tempfile
from pathlib import Path


class ConfigError(ValueError):
    """A setting the suite cannot run with; the message names it and the fix."""


def try_write(folder: Path) -> OSError | None:
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
    err = try_write(path)
    if err is not None:
        raise ConfigError(f"{option} {path} is not writable ({err.strerror or err}): give a writable folder")


def claims_dir(path: Path, option: str) -> None:
    if not path.is_dir():
        raise ConfigError(f"{option} {path} is not a folder of claims YAML files (default: <rootdir>/claims)")
