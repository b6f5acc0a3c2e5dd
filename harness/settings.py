"""Typed settings of each claims family: what its YAML's ``shared`` block and its claims' profiles
may set, with types and defaults, in one place.

A family is a claims file (its name without ``.yaml``). It has two frozen dataclasses: its shared
settings (one per profile; a field without a default must be set at every profile) and its claims'
settings (every field optional: a claim sets the ones its test reads). The registry parses every
profile of every file into them when it loads (``parse``): an unknown key, a missing required key or
a value of the wrong type is an error that names the file, the claim, the profile and the key, and
a typo never falls back to a default.

Settings read like attributes (``settings.seeds``) or like a read-only mapping
(``settings["seeds"]``, ``settings.get("extra_lrs", [])``); asking for a key the family does not
have, or one this claim does not set, is a KeyError that says which. Lists stay lists, as in the
YAML.

A new family declares its two classes here and adds them to :data:`FAMILIES` (a project outside
this package can call :func:`register`, e.g. from its ``conftest.py``).
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


# ----------------------------------------------------------------------------------------------
# bjorck2018 §3 at initialization (claims/bjorck2018_init.yaml)

@settings_class
class InitShared(Settings):
    depth: int                      # ResNet 6n+2 depth (110)
    batch_size: int                 # images per hooked pass
    seeds: list[int]                # one freshly initialized network per seed
    batches: int                    # hooked passes per seed and variant
    mask_batches: int               # of those, passes with the class-wise masked gradients (App. L)
    dataset: str                    # natural-patches | cifar10 | synthetic
    data_seed: int                  # order and labels of the images
    table1_layers: list[int]        # layers of Table 1 (paper numbering)
    mask_layer: int                 # layer of Fig. 21
    activation_layers: list[int]    # layers whose activations are kept (Fig. 7, App. I)


@settings_class
class InitClaim(Settings):
    depths: list[int] | None = None  # depth sweeps (MLP without skips)
    layer: int | None = None         # the layer a claim reads (paper numbering)
    seeds: list[int] | None = None   # seeds of a claim's own networks
    width: int | None = None         # MLP width


# ----------------------------------------------------------------------------------------------
# bjorck2018 §4 random matrices and linear networks (claims/bjorck2018_rmt.yaml)

@settings_class
class RMTShared(Settings):
    N: int                # matrix size of the shared Gaussian products
    factors: list[int]    # numbers of factors M
    runs: int             # independent products per M
    seed: int


@settings_class
class RMTClaim(Settings):
    N: int | None = None
    density_factors: list[int] | None = None
    depths: list[int] | None = None
    edge_factors: list[int] | None = None
    factors: list[int] | None = None
    gd_steps: int | None = None
    kappas: list[float] | None = None
    problems: int | None = None
    runs: int | None = None
    runs_by_size: dict[int, int] | None = None
    scale_runs: int | None = None
    seed: int | None = None
    seeds: list[int] | None = None
    size: int | None = None
    sizes: list[int] | None = None
    width: int | None = None


# ----------------------------------------------------------------------------------------------
# bjorck2018 training (claims/bjorck2018_training.yaml)

@settings_class
class TrainingShared(Settings):
    dataset: str                  # digits | synthetic | cifar10
    depth: int                    # ResNet 6n+2 depth
    width: int                    # channels of the first stage
    resolution: int               # image side in pixels
    grid: list[float]             # LR grid of the searches (App. J)
    search_steps: int             # steps of a search run
    train_steps: int              # steps of a full run (App. B)
    eval_every: int               # evaluation period of a full run, in steps at train_steps
    learning_margin: float        # "learns": final accuracy above chance by this much
    seeds: list[int]
    n_train: int | None = None    # synthetic images (synthetic / stand-in for CIFAR-10)
    n_test: int | None = None
    depth_sweep: list[int] | None = None  # depths of the depth claims
    lr_lab: dict[str, Any] | None = overrides()  # other settings for the LR-search lab


@settings_class
class TrainingClaim(Settings):
    batch_divisor: int | None = None
    batch_sizes: list[int] | None = None
    batches: list[int] | None = None
    depth: int | None = None
    doublings: int | None = None
    draws: int | None = None
    eta_max: float | None = None
    eta_min: float | None = None
    etas: int | None = None
    extra_lrs: list[float] | None = None
    lr: float | None = None
    lr_bn: float | None = None
    lr_none: float | None = None
    lrs: list[float] | None = None
    max_steps: int | None = None
    n: int | None = None
    points: int | None = None
    seed: int | None = None
    steps: int | None = None
    width: int | None = None


# ----------------------------------------------------------------------------------------------
# santurkar2018 deep linear network (claims/santurkar2018_dln.yaml)

@settings_class
class DLNShared(Settings):
    depth: int                       # layers (25)
    width: int                       # units per layer
    samples: int                     # regression examples
    lr: float                        # GD learning rate
    steps: int                       # GD steps
    checkpoints: int                 # probe points over the run
    ics_layers: list[int]            # layers whose ICS is measured (Definition 2.1)
    step_multipliers: list[float]    # landscape line steps, in units of the LR (§3.2)
    shift_layer: int                 # layer whose input distribution is followed (§3.2, Fig. 9)
    converged_within: float          # "converged": final loss within this fraction of the best
    seeds: list[int]
    precision: str = "float32"       # float type of the runs and probes: float32 | float64
    checkpoint_spacing: str = "linear"  # linear | quadratic (steps · (k/K)²: dense early, where BN still trains)


@settings_class
class DLNClaim(Settings):
    lrs: list[float] | None = None
    steps: int | None = None


# ----------------------------------------------------------------------------------------------
# santurkar2018 §4 theory (claims/santurkar2018_theory.yaml): no shared settings

@settings_class
class TheoryClaim(Settings):
    draws: int | None = None
    seed: int | None = None


# ----------------------------------------------------------------------------------------------
# santurkar2018 VGG (claims/santurkar2018_vgg.yaml)

@settings_class
class VGGShared(Settings):
    config: str                      # vgg11 | vgg16
    width: float                     # channel multiplier
    dataset: str                     # digits | synthetic | cifar10
    resolution: int
    n_train: int
    n_test: int
    data_seed: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    steps: int
    checkpoints: int                 # probe points over the run
    ics_layers: list[int]            # layers whose ICS is measured
    ics_norms: list[str]             # normalizations whose ICS is measured
    probe_norms: list[str]           # normalizations probed along the landscape
    step_multipliers: list[float]    # landscape line steps, in units of the LR
    dist_layer: int                  # layer whose unit distributions are sampled (Fig. 1)
    dist_units: int                  # units sampled there
    eval_train_samples: int          # training images the final train accuracy reads
    converged_within: float          # "converged": final loss within this fraction of the best
    seeds: list[int]


@settings_class
class VGGClaim(Settings):
    lrs: list[float] | None = None
    steps: int | None = None


FAMILIES: dict[str, tuple[type[Settings] | None, type[Settings]]] = {
    "bjorck2018_init": (InitShared, InitClaim),
    "bjorck2018_rmt": (RMTShared, RMTClaim),
    "bjorck2018_training": (TrainingShared, TrainingClaim),
    "santurkar2018_dln": (DLNShared, DLNClaim),
    "santurkar2018_theory": (None, TheoryClaim),
    "santurkar2018_vgg": (VGGShared, VGGClaim),
}


def register(family: str, shared: type[Settings] | None, claim: type[Settings]) -> None:
    """Declare a family's settings classes (for a claims file outside this package)."""
    FAMILIES[family] = (shared, claim)


def schema(family: str) -> tuple[type[Settings] | None, type[Settings]]:
    if family not in FAMILIES:
        raise SettingsError(f"no settings schema for the claims family '{family}': declare its shared and claim "
                            f"settings classes in harness/settings.py (FAMILIES) or with harness.settings.register")
    return FAMILIES[family]
