"""Typed settings of each batch-norm claims family (the classes the registry parses the YAML into).

Each family (a claims file, its name without ``.yaml``) declares its shared and claim settings
classes here, and :data:`FAMILIES` registers them with the claims machinery
(``harness.claimkit.settings``, which holds the base class, the parser and what the types mean).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any  # the settings classes' annotations are evaluated in this module

from harness.claimkit.settings import Settings, SettingsError, field_names, overrides, parse, register, schema, settings_class  # noqa: F401

JUDGING_KEYS = ("seeds", "converged_within")  # DLN and VGG settings the claims read, not the runs: not in a run's config


def typed(cls: type[Settings], settings: Mapping[str, Any], where: str) -> Settings:
    """``settings`` as ``cls``: as they are when typed already, else parsed (checked like the YAML)."""
    return settings if isinstance(settings, cls) else parse(cls, settings, where)


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

for _family, (_shared, _claim) in FAMILIES.items():
    register(_family, _shared, _claim)
