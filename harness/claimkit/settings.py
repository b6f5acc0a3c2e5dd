"""Typed settings: what a claims family's YAML may set, with types and defaults, in one place.

A family is a claims file (its name without ``.yaml``). It has two frozen dataclasses: its shared
settings (one per profile; a field without a default must be set at every profile) and its claims'
settings (every field optional: a claim sets the ones its test reads), both declared with
:func:`settings_class` and made known with :func:`register`. The registry parses every profile of
every file into them when it loads (:func:`parse`): an unknown key, a missing required key or a
value of the wrong type is an error that names the file, the claim, the profile and the key, and a
typo never falls back to a default.

Settings read like attributes (``settings.seeds``) or like a read-only mapping
(``settings["seeds"]``, ``settings.get("extra_lrs", [])``); asking for a key the family does not
have, or one this claim does not set, is a KeyError that says which. Lists stay lists, as in the
YAML.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any

class SettingsError(ValueError):
    """A family's settings do not match its schema; the message says where and which key."""


class Settings(Mapping):
    """Base of every family's settings dataclass: attribute access, and read-only mapping access
    over the keys that are set (a field left at ``None`` is not set)."""

    def __getitem__(self, key: str) -> Any:
        names = field_names(type(self))
        if key not in names:
            raise KeyError(f"{self._where()}: no setting '{key}' in {type(self).__name__} (it has: {', '.join(names)})")
        value = getattr(self, key)
        if value is None:
            raise KeyError(f"{self._where()}: '{key}' is not set (add it to the profile's settings in the YAML)")
        return value

    def __iter__(self) -> Iterator[str]:
        return (name for name in field_names(type(self)) if getattr(self, name) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())

    __hash__ = None  # type: ignore[assignment]

    def _where(self) -> str:
        return getattr(self, "_origin", type(self).__name__)

    def as_dict(self) -> dict[str, Any]:
        """The keys that are set, as a plain dict (what records and run configs store)."""
        return {k: getattr(self, k) for k in self}

    def without(self, *keys: str) -> dict[str, Any]:
        """:meth:`as_dict` less ``keys`` (e.g. what a run is made from: the settings without the
        ones only the claims read, so that changing those does not make the runs anew)."""
        unknown = [k for k in keys if k not in field_names(type(self))]
        if unknown:
            raise KeyError(f"{self._where()}: no setting(s) {unknown} in {type(self).__name__}")
        return {k: v for k, v in self.as_dict().items() if k not in keys}

    def overridden(self, key: str) -> Settings | None:
        """These settings with the ones in field ``key`` (an :func:`overrides` field) put over
        them and ``key`` cleared, or None when ``key`` is not set: a profile runs some claims at
        other settings."""
        field = {f.name: f for f in dataclasses.fields(self)}.get(key)
        if field is None or not field.metadata.get("overrides"):
            raise KeyError(f"{self._where()}: '{key}' is not a field of overrides in {type(self).__name__}")
        changes = getattr(self, key)
        if changes is None:
            return None
        return parse(type(self), {**{k: v for k, v in self.as_dict().items() if k != key}, **changes},
                     f"{self._where()} with its '{key}' overrides")


@functools.cache
def field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(tp: Any) -> str:
    """``int``, ``list[int]``, …; an optional field's type without its ``None`` (None means unset)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    return tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")


def _fits(value: Any, tp: Any) -> bool:
    """Whether a YAML value has type ``tp`` (int is a float; a bool is neither)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if tp is type(None):
        return value is None
    if tp is Any:
        return True
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin is list:
        return isinstance(value, list) and bool(value) and all(_fits(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, Mapping) and bool(value) and all(_fits(k, args[0]) and _fits(v, args[1]) for k, v in value.items())
    raise TypeError(f"settings schema: unsupported type {tp!r}")


def parse(cls: type[Settings], raw: Mapping[str, Any] | None, where: str) -> Settings:
    """``raw`` (one profile's settings from the YAML) as a ``cls``: unknown keys, missing required
    keys and wrong types are a :class:`SettingsError` naming ``where`` and the key. A field whose
    metadata says ``overrides`` holds a mapping of settings of ``cls`` to put over the rest
    (checked here like the rest)."""
    raw = dict(raw or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            raise SettingsError(f"{where}: unknown settings key '{key}' ({cls.__name__} has: {', '.join(fields)})")
    missing = [n for n, f in fields.items() if n not in raw
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise SettingsError(f"{where}: missing settings key(s) {', '.join(missing)} (required by {cls.__name__})")
    hints = _hints(cls)
    for key, value in raw.items():
        if fields[key].metadata.get("overrides"):  # settings of this same class, put over the rest
            if not isinstance(value, Mapping) or not value:
                raise SettingsError(f"{where}: '{key}' must map settings of {cls.__name__} to new values, got {value!r}")
            bad = sorted(set(value) - set(fields))
            if bad:
                raise SettingsError(f"{where}: '{key}' overrides unknown setting(s) {bad} ({cls.__name__} has: {', '.join(fields)})")
            for k, v in value.items():
                if not _fits(v, hints[k]):
                    raise SettingsError(f"{where}: '{key}.{k}' must be {_type_name(hints[k])}, got {v!r}")
        elif not _fits(value, hints[key]):
            raise SettingsError(f"{where}: '{key}' must be {_type_name(hints[key])}, got {value!r}")
    settings = cls(**raw)
    object.__setattr__(settings, "_origin", where)
    return settings


def settings_class(cls: type) -> type[Settings]:
    """A family's settings class: a frozen dataclass that reads like a mapping (:class:`Settings`)."""
    return dataclasses.dataclass(frozen=True, eq=False)(cls)  # equality: Settings.__eq__, as a mapping


def overrides() -> Any:
    """An optional field holding settings of its own class to put over the others for some claims
    (``lr_lab`` in training; see :meth:`Settings.overridden`)."""
    return dataclasses.field(default=None, metadata={"overrides": True})


_FAMILIES: dict[str, tuple[type[Settings] | None, type[Settings] | None]] = {}


def register(family: str, shared: type[Settings] | None, claim: type[Settings] | None) -> None:
    """Declare a family's settings classes: its shared block's (None: the file has no ``shared``)
    and its claims' (None: its claims set no settings)."""
    for cls in (shared, claim):
        if cls is not None and not (isinstance(cls, type) and issubclass(cls, Settings) and dataclasses.is_dataclass(cls)):
            raise TypeError(f"settings of family '{family}': {cls!r} is not a settings class (use @settings_class)")
    _FAMILIES[family] = (shared, claim)


def schema(family: str) -> tuple[type[Settings] | None, type[Settings] | None]:
    """The family's (shared, claim) settings classes."""
    if family not in _FAMILIES:
        known = ", ".join(sorted(_FAMILIES)) or "none"
        raise SettingsError(f"no settings schema for the claims family '{family}' (registered: {known}): declare its "
                            f"shared and claim settings classes with harness.claimkit.settings.register")
    return _FAMILIES[family]
