"""Claims registry: claim metadata in ``claims/*.yaml`` and the expected-verdicts file.

A claims file holds one paper section::

    paper: bjorck2018
    section: "§4 Random matrices and linear networks"
    shared:                      # optional settings every fixture of the family reads, per profile
      fast: {N: 1000}
    claims:
      - id: B-RMT-KAPPA
        source: "§4, App. E, Fig. 11"
        statement: "..."         # our words, one sentence
        paper_value: "..."       # what the paper reports
        threshold: "..."         # the reading chosen, fixed before measuring
        profiles:                # settings per profile; the keys are the profiles it runs in
          fast: {factors: [1, 2, 4]}
          slow: {factors: [1, 2, 4, 8]}
        deviations:              # per profile below the paper tier: where we depart from the paper's protocol
          fast: "N = 500 instead of 1000"
        tiers: {fast: reduced}   # optional, per profile; overrides the file's ``tiers``
        seed_exempt: "..."       # optional: why one draw decides (exact identity, self-averaging)
        bn_vs_none: true         # optional: credits BN with an effect over no BN, so it must stop
                                 # holding when BN is the identity (-p harness.bn_identity)
        requires: [bn_learns]    # optional: preconditions (below) the run must meet to show the claim
        thresholds:              # the numbers the threshold's reading names, by name (optional)
          min_ratio: 10          # a number, or a list of numbers (a band: [10, 1000])

Every number a claim decides by is in its ``thresholds``, next to the prose ``threshold`` that
reads it from the paper and the ``paper_value`` it must agree with; the claim's readout reads it
by name (``thresholds["min_ratio"]``), so a test body never holds a threshold as a literal.

A file's settings are typed: its family (the file name without ``.yaml``) has a shared-settings
and a claim-settings class in ``harness.settings``, and every profile of the ``shared`` block and
of every claim is parsed into them when the registry loads. An unknown key, a missing required
key or a value of the wrong type is an error naming file, claim, profile and key, so a typo never
silently falls back to a default. Fixtures ask for a family's settings by its name
(:meth:`Registry.family_settings`).

A file may declare ``preconditions``: what its lab must show for a claim to bear on the paper
(``bn_learns: "BN is achievable at LR 0.1 (Table 2)"``), each a name and a sentence. A claim
lists the ones it depends on in ``requires``; its test checks each on every run
(``Verdict.check_precondition``), and a claim whose precondition fails is ``inconclusive``, never
holds or refuted.

Every profile a claim runs in has a fidelity tier, from the file's ``tiers`` or the claim's own:
``paper`` (the published model, data kind, budget and seeds), ``reduced`` (the paper's model and
data kind at a smaller budget) or ``stand-in`` (another model or data). A run below the paper
tier must say how it deviates (``deviations``). Seeds live in the settings as ``seed``, ``*_seed``
(integers) or ``seeds`` (a list of integers); ``--seed-offset K`` shifts all of them by
``K × SEED_STRIDE``, so a re-run draws fresh randomness everywhere.

A stochastic claim decides on its seeds in looks (``harness.evidence.Design``): a file declares,
per profile, the seed counts at which its claims are judged, the first being the number of the
profile's ``seeds`` and the last the cap::

    looks: {fast: [3, 6, 10], slow: [3, 6, 10, 15, 20]}

A claim still undecided at a look runs again on the seeds of the next one (the profile's
``seeds``, then the integers after the largest); a profile without ``looks`` has one look. Under
``--smoke`` every claim has two looks, its seeds and one more (the code path, cheaply).

A file whose claims run at ``slow`` or ``paper`` declares its smoke settings: what ``--smoke``
puts over those profiles' settings so every slow and paper claim runs end to end in seconds (the
same code, tiny numbers; its records never count as verdicts)::

    smoke:
      shared: {N: 64, runs: 2}   # over the shared block's slow and paper settings
      claims: {draws: 20}        # over every claim profile (slow, paper) that sets the key

A smoke key must be a key of the family's settings and must replace at least one slow or paper
setting (a key that replaces nothing is a typo); the smoked settings are type-checked too.

A claim checked on two setups (santurkar2018's landscape claims on the DLN and on VGG) is
defined once without ``case``; each further half is an entry with the same ID and a ``case``
name (``case: vgg``), in any file, with its own source, threshold, profiles and section. Its tests
are marked ``@pytest.mark.claim("S-LAND-LOSS", case="vgg")``.

Every error names the file, the claim and the field, so a broken YAML is fixed in one look.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from harness import settings as schemas
from harness.evidence import MIN_SEEDS, SeedPlan

PAPERS = {
    "bjorck2018": "Bjorck et al., Understanding Batch Normalization (NeurIPS 2018)",
    "santurkar2018": "Santurkar et al., How Does Batch Normalization Help Optimization? (NeurIPS 2018)",
    "beyond": "Beyond the papers: reviews and later work",
}
PROFILES = ("fast", "slow", "paper")
TIERS = ("paper", "reduced", "stand-in")  # best first
SMOKE_TIER = "smoke"  # the tier of a --smoke record: a code path that ran, never a verdict
EXPECTABLE = ("refuted", "inconclusive")  # verdicts the expected-verdicts file can record
CAUSES = {
    "finding": "the claim fails as the paper states it; the same is expected at the paper tier",
    "profile": "this profile cannot show the claim (its stand-in, budget or seeds); says why",
}
SMOKED = ("slow", "paper")  # the profiles --smoke runs, at the files' smoke settings
SEED_STRIDE = 1000  # --seed-offset K adds K × 1000 to every seed: fresh draws, never a neighbour's
# A YAML seed is below MAX_SEED and --seed-offset at most MAX_SEED_OFFSET, so every shifted seed is
# below 2**31 and the largest number the suite derives from one (1000 × seed + a few, harness.vgg_runs'
# noise streams) below 2**63: numbers every seeded generator it uses accepts (torch: signed 64 bit;
# numpy's default_rng: any whole number ≥ 0; a 32-bit one such as RandomState: below 2**32).
MAX_SEED = 1_000_000
MAX_SEED_OFFSET = 1_000_000
CLAIM_FIELDS = ("id", "source", "statement", "paper_value", "threshold", "profiles")
OPTIONAL_CLAIM_FIELDS = ("deviations", "figure", "paper", "case", "tiers", "seed_exempt", "bn_vs_none", "requires",
                         "thresholds")
THRESHOLD_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
CASE_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
ID_PATTERN = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")


class RegistryError(ValueError):
    """A claims or expected-verdicts file is malformed; the message names file, claim and field."""


def _where(path: Path | str, claim: str | None = None, field: str | None = None) -> str:
    parts = [str(path)]
    if claim:
        parts.append(f"claim {claim}")
    if field:
        parts.append(f"field '{field}'")
    return ": ".join(parts)


class Thresholds(Mapping[str, Any]):
    """A claim's numeric thresholds (its YAML ``thresholds``), read by name: a number, or a tuple
    of numbers (a band). Asking for a name the claim does not declare is an error that names the
    claim and what it declares, so a readout never falls back to a number of its own."""

    def __init__(self, values: Mapping[str, Any], claim: str = "(hand-made)"):
        self._values = {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in values.items()}
        self.claim = claim

    def __getitem__(self, name: str) -> Any:
        if name not in self._values:
            declared = ", ".join(sorted(self._values)) or "none"
            raise KeyError(f"claim {self.claim} declares no threshold '{name}' (declared: {declared}); "
                           f"add it to the claim's 'thresholds' in its YAML")
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Thresholds({self._values!r}, claim={self.claim!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())

    __hash__ = None  # type: ignore[assignment]

    def as_record(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self._values.items()}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _thresholds_map(path: Path, claim: str, value: Any) -> Thresholds:
    """``thresholds: {name: number | [numbers]}``: names in snake_case, every value finite."""
    where = _where(path, claim, "thresholds")
    if not isinstance(value, Mapping) or not value:
        raise RegistryError(f"{where}: must map threshold names (like min_ratio) to numbers, got {value!r}")
    for name, v in value.items():
        if not isinstance(name, str) or not THRESHOLD_NAME.match(name):
            raise RegistryError(f"{where}: '{name}' is not a threshold name like min_ratio")
        if not (_is_number(v) or (isinstance(v, list) and v and all(_is_number(x) for x in v))):
            raise RegistryError(f"{_where(path, claim, f'thresholds.{name}')}: must be a finite number or a non-empty "
                                f"list of them, got {v!r}")
    return Thresholds(value, claim)


@dataclasses.dataclass(frozen=True)
class Claim:
    id: str
    paper: str
    section: str
    source: str
    statement: str
    paper_value: str
    threshold: str
    profiles: Mapping[str, Mapping[str, Any]]
    deviations: Mapping[str, str]
    figure: str | None
    file: str
    case: str | None = None  # the half of a claim this entry defines (None: the claim's main entry)
    tiers: Mapping[str, str] = dataclasses.field(default_factory=dict)  # profile → fidelity tier
    seed_exempt: str | None = None  # why one draw decides this claim (None: it needs ≥ 3 seeds)
    bn_vs_none: bool = False  # credits BN with an effect over no BN: must fail when BN is the identity
    preconditions: Mapping[str, str] = dataclasses.field(default_factory=dict)  # required name → what it asks
    thresholds: Thresholds = dataclasses.field(default_factory=lambda: Thresholds({}))  # the numbers it decides by

    def settings(self, profile: str, seed_offset: int = 0) -> dict[str, Any]:
        if profile not in self.profiles:
            raise KeyError(f"{self.file}: claim {self.id} has no settings for profile '{profile}'")
        return shift_seeds(self.profiles[profile] or {}, seed_offset)

    def tier(self, profile: str) -> str:
        return self.tiers[profile]


def _is_seed_key(key: Any) -> bool:
    return isinstance(key, str) and (key == "seed" or key.endswith("_seed"))


def shift_seeds(settings: Mapping[str, Any], offset: int) -> dict[str, Any]:
    """A copy of ``settings`` with every seed moved by ``offset × SEED_STRIDE``, in nested
    settings too (a profile's ``lr_lab: {seeds: ...}`` override)."""
    shift = offset * SEED_STRIDE
    out = {}
    for key, value in settings.items():
        if _is_seed_key(key):
            value = value + shift
        elif key == "seeds":
            value = [s + shift for s in value]
        elif isinstance(value, Mapping):
            value = shift_seeds(value, offset)
        out[key] = value
    return out


def _check_seeds(path: Path, claim: str | None, field: str, profile: str, settings: Mapping[str, Any]) -> None:
    for key, value in settings.items():
        where = _where(path, claim, f"{field}.{profile}.{key}")
        if isinstance(value, Mapping):
            _check_seeds(path, claim, field, f"{profile}.{key}", value)
            continue
        if _is_seed_key(key) and (isinstance(value, bool) or not isinstance(value, int)):
            raise RegistryError(f"{where}: a seed must be an integer, got {value!r}")
        if key == "seeds" and (not isinstance(value, list) or not value
                               or any(isinstance(s, bool) or not isinstance(s, int) for s in value)):
            raise RegistryError(f"{where}: must be a non-empty list of integer seeds, got {value!r}")
        if (_is_seed_key(key) or key == "seeds") and any(not 0 <= s < MAX_SEED for s in (value if key == "seeds" else [value])):
            raise RegistryError(f"{where}: seeds must be whole numbers from 0 to {MAX_SEED - 1}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class ClaimsFile:
    path: str
    paper: str
    section: str
    shared: Mapping[str, Mapping[str, Any]]
    claims: tuple[Claim, ...]
    smoke: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)  # shared / claims → overrides
    looks: Mapping[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)  # profile → seeds at each look

    @property
    def family(self) -> str:
        """The claims family: the file's name without ``.yaml`` (its settings classes are named by it)."""
        return Path(self.path).stem

    def smoked(self, part: str, profile: str, settings: Mapping[str, Any]) -> dict[str, Any]:
        """``settings`` (of the shared block or a claim, at ``profile``) with the file's smoke
        overrides for ``part`` put over the keys they set; other profiles are left as they are."""
        if profile not in SMOKED:
            return dict(settings)
        overrides = self.smoke.get(part, {})
        return {k: overrides.get(k, v) for k, v in settings.items()}


@dataclasses.dataclass(frozen=True)
class Expected:
    """A verdict we expect for a claim at a profile (optionally one parametrization of it)."""

    claim: str
    case: str | None
    profiles: tuple[str, ...]
    verdict: str
    measured: str
    reason: str
    cause: str = "finding"
    why: tuple[str, ...] | None = None  # what kept it from holding (harness.verdicts.Verdict.why); None: not checked

    def applies(self, claim: str, case: str | None, profile: str) -> bool:
        return (
            self.claim == claim
            and profile in self.profiles
            and (self.case is None or self.case == case)
        )


class _StrictLoader(yaml.SafeLoader):
    """yaml.safe_load, except that a key repeated in one mapping is an error (PyYAML keeps the last)."""


def _no_repeated_keys(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"repeated key '{key}'", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_repeated_keys)


def _load_yaml(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.load(fh, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        claim = _claim_at(path.read_text(encoding="utf-8"), mark.index) if mark is not None else None
        raise RegistryError(f"{_where(path, claim)}: not valid YAML: {err}") from err


def _claim_at(text: str, index: int) -> str | None:
    """The ID of the claim (a ``claims:`` entry, or an expected-verdicts entry) whose YAML spans
    character ``index`` of ``text``; None outside any, or when the text does not even parse."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)  # nodes only: a repeated key is no error here
    except yaml.YAMLError:
        return None
    entries = root.value if isinstance(root, yaml.SequenceNode) else []
    if isinstance(root, yaml.MappingNode):
        entries = next((v.value for k, v in root.value if k.value == "claims" and isinstance(v, yaml.SequenceNode)), [])
    for entry in entries:
        if isinstance(entry, yaml.MappingNode) and entry.start_mark.index <= index < entry.end_mark.index:
            ids = [v.value for k, v in entry.value if k.value in ("id", "claim") and isinstance(v, yaml.ScalarNode)]
            return ids[0] if ids else None
    return None


def _require_str(path: Path, claim: str | None, field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RegistryError(f"{_where(path, claim, field)}: must be a non-empty string, got {value!r}")
    return value


def _profiles_map(path: Path, claim: str | None, field: str, value: Any) -> dict[str, dict]:
    if not isinstance(value, Mapping) or not value:
        raise RegistryError(
            f"{_where(path, claim, field)}: must map profile names ({', '.join(PROFILES)}) to settings"
        )
    out = {}
    for name, settings in value.items():
        if name not in PROFILES:
            raise RegistryError(
                f"{_where(path, claim, field)}: unknown profile '{name}' (known: {', '.join(PROFILES)})"
            )
        if settings is not None and not isinstance(settings, Mapping):
            raise RegistryError(f"{_where(path, claim, field)}: settings of '{name}' must be a mapping")
        _check_seeds(path, claim, field, name, settings or {})
        out[name] = dict(settings or {})
    return out


def _tiers_map(path: Path, claim: str | None, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or any(p not in PROFILES or t not in TIERS for p, t in value.items()):
        raise RegistryError(
            f"{_where(path, claim, 'tiers')}: must map profiles ({', '.join(PROFILES)}) to a tier "
            f"({', '.join(TIERS)}), got {value!r}"
        )
    return dict(value)


def _preconditions_map(path: Path, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not value or any(
            not isinstance(k, str) or not CASE_PATTERN.match(k.replace("_", "-")) or not isinstance(v, str) or not v.strip()
            for k, v in value.items()):
        raise RegistryError(f"{_where(path, None, 'preconditions')}: must map lowercase names (like bn_learns) to a "
                            f"sentence saying what the lab must show, got {value!r}")
    return dict(value)


def _required(path: Path, claim: str, value: Any, declared: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(value, list) or not value or any(not isinstance(v, str) for v in value):
        raise RegistryError(f"{_where(path, claim, 'requires')}: must be a non-empty list of precondition names, got {value!r}")
    unknown = [v for v in value if v not in declared]
    if unknown:
        known = ", ".join(declared) or "none: the file declares no 'preconditions'"
        raise RegistryError(f"{_where(path, claim, 'requires')}: unknown precondition(s) {unknown} (known: {known})")
    if len(set(value)) != len(value):
        raise RegistryError(f"{_where(path, claim, 'requires')}: lists a precondition twice: {value}")
    return {v: declared[v] for v in value}


def _parse_claim(path: Path, paper: str, section: str, raw: Any, index: int,
                 file_tiers: Mapping[str, str] | None = None, preconditions: Mapping[str, str] | None = None) -> Claim:
    if not isinstance(raw, Mapping):
        raise RegistryError(f"{_where(path, f'#{index + 1}')}: each claim must be a mapping")
    cid = raw.get("id")
    label = cid if isinstance(cid, str) else f"#{index + 1}"
    for field in CLAIM_FIELDS:
        if field not in raw:
            raise RegistryError(f"{_where(path, label, field)}: missing")
    unknown = set(raw) - set(CLAIM_FIELDS) - set(OPTIONAL_CLAIM_FIELDS)
    if unknown:
        raise RegistryError(f"{_where(path, label, sorted(unknown)[0])}: unknown field")
    _require_str(path, label, "id", cid)
    if not ID_PATTERN.match(cid):
        raise RegistryError(f"{_where(path, cid, 'id')}: '{cid}' is not an ID like B-RMT-KAPPA")
    claim_paper = raw.get("paper", paper)
    if claim_paper not in PAPERS:
        raise RegistryError(f"{_where(path, cid, 'paper')}: unknown paper '{claim_paper}'")
    profiles = _profiles_map(path, cid, "profiles", raw["profiles"])
    deviations = raw.get("deviations") or {}
    if not isinstance(deviations, Mapping) or any(
        p not in profiles or not isinstance(v, str) for p, v in deviations.items()
    ):
        raise RegistryError(
            f"{_where(path, cid, 'deviations')}: must map profiles the claim runs in to a sentence"
        )
    figure = raw.get("figure")
    if figure is not None:
        _require_str(path, cid, "figure", figure)
    case = raw.get("case")
    if case is not None and (not isinstance(case, str) or not CASE_PATTERN.match(case)):
        raise RegistryError(f"{_where(path, cid, 'case')}: must be a lowercase name like 'vgg', got {case!r}")
    tiers = {**(file_tiers or {}), **_tiers_map(path, cid, raw.get("tiers") or {})}
    for profile in profiles:
        if profile not in tiers:
            raise RegistryError(
                f"{_where(path, cid, 'tiers')}: no fidelity tier for profile '{profile}' "
                f"(set it in the claim's or the file's 'tiers': {', '.join(TIERS)})"
            )
        if tiers[profile] != "paper" and profile not in deviations:
            raise RegistryError(
                f"{_where(path, cid, 'deviations')}: profile '{profile}' runs at tier '{tiers[profile]}', "
                f"so it must say how it departs from the paper's protocol"
            )
    seed_exempt = raw.get("seed_exempt")
    if seed_exempt is not None:
        _require_str(path, cid, "seed_exempt", seed_exempt)
    bn_vs_none = raw.get("bn_vs_none", False)
    if not isinstance(bn_vs_none, bool):
        raise RegistryError(f"{_where(path, cid, 'bn_vs_none')}: must be true or false, got {bn_vs_none!r}")
    required = _required(path, cid, raw["requires"], preconditions or {}) if "requires" in raw else {}
    thresholds = _thresholds_map(path, cid, raw["thresholds"]) if "thresholds" in raw else Thresholds({}, cid)
    return Claim(
        id=cid,
        paper=claim_paper,
        section=section,
        source=_require_str(path, cid, "source", raw["source"]),
        statement=_require_str(path, cid, "statement", raw["statement"]),
        paper_value=_require_str(path, cid, "paper_value", str(raw["paper_value"])),
        threshold=_require_str(path, cid, "threshold", raw["threshold"]),
        profiles=profiles,
        deviations=dict(deviations),
        figure=figure,
        file=str(path),
        case=case,
        tiers={p: tiers[p] for p in profiles},
        seed_exempt=seed_exempt,
        bn_vs_none=bn_vs_none,
        preconditions=required,
        thresholds=thresholds,
    )


def load_claims_file(path: Path | str) -> ClaimsFile:
    path = Path(path)
    data = _load_yaml(path)
    if not isinstance(data, Mapping):
        raise RegistryError(f"{path}: a claims file must be a mapping with 'paper', 'section', 'claims'")
    for field in ("paper", "section", "claims"):
        if field not in data:
            raise RegistryError(f"{_where(path, None, field)}: missing")
    paper = _require_str(path, None, "paper", data["paper"])
    if paper not in PAPERS:
        raise RegistryError(f"{_where(path, None, 'paper')}: unknown paper '{paper}' (known: {', '.join(PAPERS)})")
    section = _require_str(path, None, "section", data["section"])
    unknown = set(data) - {"paper", "section", "shared", "claims", "tiers", "preconditions", "smoke", "looks"}
    if unknown:
        raise RegistryError(f"{_where(path, None, sorted(unknown)[0])}: unknown field")
    shared = _profiles_map(path, None, "shared", data["shared"]) if "shared" in data else {}
    file_tiers = _tiers_map(path, None, data.get("tiers") or {})
    preconditions = _preconditions_map(path, data["preconditions"]) if "preconditions" in data else {}
    raw_claims = data["claims"]
    if not isinstance(raw_claims, list) or not raw_claims:
        raise RegistryError(f"{_where(path, None, 'claims')}: must be a non-empty list")
    claims = tuple(_parse_claim(path, paper, section, raw, i, file_tiers, preconditions) for i, raw in enumerate(raw_claims))
    classes = _schema(path, shared, claims)
    _check_settings(path, classes, shared, claims)
    smoke = _smoke_map(path, data["smoke"], shared, claims, classes) if "smoke" in data else {}
    looks = _looks_map(path, data["looks"], shared, claims) if "looks" in data else {}
    return ClaimsFile(str(path), paper, section, shared, claims, smoke, looks)


def _looks_map(path: Path, value: Any, shared: Mapping[str, Mapping], claims: Iterable[Claim]) -> dict[str, tuple[int, ...]]:
    """The file's ``looks: {profile: [n₀, n₁, …, cap]}``: strictly increasing seed counts whose first
    is the number of ``seeds`` every stochastic claim of the file has at that profile (≥ 3)."""
    where = _where(path, None, "looks")
    if not isinstance(value, Mapping) or not value:
        raise RegistryError(f"{where}: must map profiles to lists of seed counts, e.g. {{fast: [3, 6, 10]}}")
    out = {}
    for profile, looks in value.items():
        if profile not in PROFILES:
            raise RegistryError(f"{where}: unknown profile '{profile}' (known: {', '.join(PROFILES)})")
        if (not isinstance(looks, list) or not looks or any(isinstance(n, bool) or not isinstance(n, int) for n in looks)
                or looks != sorted(set(looks)) or looks[0] < MIN_SEEDS):
            raise RegistryError(f"{where}.{profile}: must be strictly increasing seed counts starting at ≥ {MIN_SEEDS}, "
                                f"got {looks!r}")
        for claim in claims:
            if profile not in claim.profiles or claim.seed_exempt is not None:
                continue
            seeds = (claim.profiles[profile] or {}).get("seeds", shared.get(profile, {}).get("seeds"))
            if seeds is not None and len(seeds) != looks[0]:
                raise RegistryError(f"{where}.{profile}: the first look takes {looks[0]} seeds, but claim {claim.id} "
                                    f"has {len(seeds)} at {profile}: {seeds}")
        out[profile] = tuple(looks)
    return out


def _schema(path: Path, shared: Mapping[str, Mapping], claims: Iterable[Claim]) -> tuple[type | None, type | None]:
    """The family's settings classes; a file that sets no settings needs none."""
    if not shared and not any(s for c in claims for s in c.profiles.values()) and path.stem not in schemas.FAMILIES:
        return None, None
    try:
        classes = schemas.schema(path.stem)
    except schemas.SettingsError as err:
        raise RegistryError(f"{path}: {err}") from None
    if shared and classes[0] is None:
        raise RegistryError(f"{_where(path, None, 'shared')}: the family '{path.stem}' has no shared settings class")
    return classes


def _parse_settings(cls: type, raw: Mapping[str, Any], where: str) -> schemas.Settings:
    try:
        return schemas.parse(cls, raw, where)
    except schemas.SettingsError as err:
        raise RegistryError(str(err)) from None


def _check_settings(path: Path, classes: tuple[type | None, type | None], shared: Mapping[str, Mapping],
                    claims: Iterable[Claim]) -> None:
    """Every profile of the shared block and of every claim parses into the family's classes."""
    shared_cls, claim_cls = classes
    for profile, settings in shared.items():
        _parse_settings(shared_cls, settings, f"{_where(path, None, 'shared')}: {profile}")
    if claim_cls is None:  # the file sets no settings at all (_schema)
        return
    for claim in claims:
        for profile, settings in claim.profiles.items():
            _parse_settings(claim_cls, settings, f"{_where(path, claim.id, 'profiles')}: {profile}")


def _smoke_map(path: Path, value: Any, shared: Mapping[str, Mapping], claims: Iterable[Claim],
               classes: tuple[type | None, type | None]) -> dict[str, dict]:
    """The file's ``smoke: {shared: {...}, claims: {...}}``: each key one of the family's
    settings, seeds well-formed, each replacing at least one slow or paper setting, and the
    settings it makes still well-typed."""
    if not isinstance(value, Mapping) or not value or set(value) - {"shared", "claims"} or not all(
            isinstance(v, Mapping) and v for v in value.values()):
        raise RegistryError(f"{_where(path, None, 'smoke')}: must map 'shared' and/or 'claims' to the settings "
                            f"--smoke puts over the slow and paper profiles, got {value!r}")
    used = {"shared": [s for p, s in shared.items() if p in SMOKED],
            "claims": [s for c in claims for p, s in c.profiles.items() if p in SMOKED]}
    for part, overrides in value.items():
        _check_seeds(path, None, "smoke", part, overrides)
        cls = classes[0] if part == "shared" else classes[1]
        allowed = set(schemas.field_names(cls)) if cls is not None else set()
        for key in overrides:
            if key not in allowed:
                raise RegistryError(f"{_where(path, None, 'smoke')}: {part}: unknown settings key '{key}' "
                                    f"({cls.__name__ if cls else 'the family'} has: {', '.join(sorted(allowed)) or 'none'})")
            if not any(key in settings for settings in used[part]):
                raise RegistryError(f"{_where(path, None, 'smoke')}: {part}: '{key}' replaces no {' or '.join(SMOKED)} "
                                    f"setting of the file's {'shared block' if part == 'shared' else 'claims'}")
        for settings in used[part]:
            _parse_settings(cls, {k: overrides.get(k, v) for k, v in settings.items()}, f"{_where(path, None, 'smoke')}: {part}")
    return {part: dict(overrides) for part, overrides in value.items()}


def load_expected(path: Path | str, known_ids: Iterable[str]) -> tuple[Expected, ...]:
    """Parse the expected-verdicts file: a list of {claim, case?, profiles, verdict, cause, why?,
    measured, reason}. ``why`` lists what kept the claim from holding (each condition that did not
    hold with its state, a failed precondition, or "cannot be judged"): the same verdict reached
    for another reason fails the run."""
    path = Path(path)
    known = set(known_ids)
    data = _load_yaml(path)
    if data is None:
        return ()
    if not isinstance(data, list):
        raise RegistryError(f"{path}: must be a list of expected verdicts")
    out = []
    for i, raw in enumerate(data):
        if not isinstance(raw, Mapping):
            raise RegistryError(f"{_where(path, f'#{i + 1}')}: each entry must be a mapping")
        cid = raw.get("claim")
        label = cid if isinstance(cid, str) else f"#{i + 1}"
        for field in ("claim", "profiles", "verdict", "cause", "measured", "reason"):
            if field not in raw:
                raise RegistryError(f"{_where(path, label, field)}: missing")
        unknown = set(raw) - {"claim", "case", "profiles", "verdict", "cause", "measured", "reason", "why"}
        if unknown:
            raise RegistryError(f"{_where(path, label, sorted(unknown)[0])}: unknown field")
        if cid not in known:
            raise RegistryError(f"{_where(path, label, 'claim')}: unknown claim ID '{cid}'")
        profiles = raw["profiles"]
        if not isinstance(profiles, list) or not profiles or any(p not in PROFILES for p in profiles):
            raise RegistryError(f"{_where(path, cid, 'profiles')}: must be a list drawn from {PROFILES}")
        if raw["verdict"] not in EXPECTABLE:
            raise RegistryError(f"{_where(path, cid, 'verdict')}: must be one of {', '.join(EXPECTABLE)}")
        if raw["cause"] not in CAUSES:
            raise RegistryError(
                f"{_where(path, cid, 'cause')}: must be one of "
                + "; ".join(f"'{c}' ({meaning})" for c, meaning in CAUSES.items())
            )
        case = raw.get("case")
        if case is not None:
            _require_str(path, cid, "case", case)
        why = raw.get("why")
        if why is not None and (not isinstance(why, list) or not why or not all(isinstance(w, str) and w for w in why)):
            raise RegistryError(f"{_where(path, cid, 'why')}: must be a non-empty list of reasons (strings), got {why!r}")
        out.append(
            Expected(
                claim=cid,
                case=case,
                profiles=tuple(profiles),
                verdict=raw["verdict"],
                measured=_require_str(path, cid, "measured", str(raw["measured"])),
                reason=_require_str(path, cid, "reason", raw["reason"]),
                cause=raw["cause"],
                why=tuple(why) if why is not None else None,
            )
        )
    return tuple(out)


class Registry:
    """All claims of a directory of YAML files, plus their expected verdicts."""

    EXPECTED_FILE = "expected_verdicts.yaml"

    def __init__(self, files: Iterable[ClaimsFile], expected: Iterable[Expected] = (), seed_offset: int = 0,
                 smoke: bool = False, seed_cap: int | None = None):
        self.files = tuple(files)
        self.seed_offset = seed_offset
        self.seed_cap = seed_cap  # decide on at most this many seeds (--seed-cap); None: the files' looks
        self.smoke = smoke  # slow and paper settings are the files' smoke settings (--smoke)
        self._file_of = {f.path: f for f in self.files}
        self.claims: dict[str, Claim] = {}
        self.cases: dict[tuple[str, str], Claim] = {}  # (id, case) → a further half of a claim
        self.shared: dict[str, ClaimsFile] = {}
        for f in self.files:
            for claim in f.claims:
                table, key = (self.claims, claim.id) if claim.case is None else (self.cases, (claim.id, claim.case))
                if key in table:
                    raise RegistryError(
                        f"{f.path}: claim {claim.id}: field '{'id' if claim.case is None else 'case'}': duplicate, "
                        f"already defined in {table[key].file}"
                    )
                table[key] = claim
                if claim.case is None:
                    self.shared[claim.id] = f
        for (cid, case), claim in self.cases.items():
            if cid not in self.claims:
                raise RegistryError(
                    f"{claim.file}: claim {cid}: field 'case': '{case}' is a half of a claim that no file "
                    f"defines without a case"
                )
        self.expected = tuple(expected)
        if smoke:
            bare = sorted({f.path for f in self.files if not f.smoke
                           and any(p in SMOKED for c in f.claims for p in c.profiles)})
            if bare:
                raise RegistryError(f"--smoke: {', '.join(bare)} declare(s) no 'smoke' settings for their slow / paper claims")

    @classmethod
    def load(cls, directory: Path | str, seed_offset: int = 0, smoke: bool = False, seed_cap: int | None = None) -> Registry:
        directory = Path(directory)
        files = [
            load_claims_file(p)
            for p in sorted(directory.glob("*.yaml"))
            if p.name != cls.EXPECTED_FILE
        ]
        registry = cls(files, seed_offset=seed_offset, smoke=smoke, seed_cap=seed_cap)
        expected_path = directory / cls.EXPECTED_FILE
        if expected_path.exists():
            registry.expected = load_expected(expected_path, registry.claims)
        return registry

    def claim(self, cid: str, *, case: str | None = None, where: str = "") -> Claim:
        prefix = f"{where}: " if where else ""
        if cid not in self.claims:
            raise RegistryError(f"{prefix}unknown claim ID '{cid}'; known IDs are listed in claims/*.yaml")
        if case is None:
            return self.claims[cid]
        if (cid, case) not in self.cases:
            known = sorted(c for i, c in self.cases if i == cid)
            raise RegistryError(f"{prefix}claim {cid} has no case '{case}' (cases: {', '.join(known) or 'none'})")
        return self.cases[(cid, case)]

    def _shared(self, f: ClaimsFile, profile: str) -> dict[str, Any]:
        """A file's shared settings at a profile as this session runs them (smoke, seeds shifted)."""
        settings = f.shared.get(profile, {})
        return shift_seeds(f.smoked("shared", profile, settings) if self.smoke else settings, self.seed_offset)

    def family_settings(self, family: str, profile: str) -> schemas.Settings:
        """A claim family's ``shared:`` settings (the family is its claims file's name, e.g.
        ``bjorck2018_training``) at a profile as this session runs them (smoke, seeds shifted), as
        the family's typed settings (``harness.settings``); what the family's fixtures build from."""
        files = {f.family: f for f in self.files}
        if family not in files:
            raise RegistryError(f"no claims file for family '{family}' (families: {', '.join(sorted(files))})")
        shared_cls, _ = schemas.schema(family)
        if shared_cls is None or profile not in files[family].shared:
            raise RegistryError(f"{files[family].path}: no shared settings for profile '{profile}'")
        return schemas.parse(shared_cls, self._shared(files[family], profile), f"{files[family].path}: shared: {profile}")

    def settings(self, claim: Claim, profile: str) -> schemas.Settings:
        """A claim's settings at a profile as this session runs them (the smoke settings over them
        under ``--smoke``, then the seed offset), as its family's typed claim settings."""
        _, claim_cls = schemas.schema(Path(claim.file).stem)
        return schemas.parse(claim_cls, shift_seeds(self._own(claim, profile), self.seed_offset),
                             f"{claim.file}: claim {claim.id}: {profile}")

    def _own(self, claim: Claim, profile: str) -> dict[str, Any]:
        own = claim.settings(profile)
        return self._file_of[claim.file].smoked("claims", profile, own) if self.smoke else own

    def seed_plan(self, claim: Claim, profile: str) -> SeedPlan | None:
        """The seeds a stochastic claim decides on at ``profile``:
        its own ``seeds`` setting, else its family's, shifted by the seed offset, in the file's
        ``looks`` (``harness.evidence.SeedPlan``). None for a seed-exempt claim, or one whose settings name no seeds (it names its
        own draws)."""
        if claim.seed_exempt is not None:
            return None
        own = self.settings(claim, profile)
        f = self._file_of[claim.file]
        seeds = own.get("seeds") or self._shared(f, profile).get("seeds")
        if not seeds:
            return None
        looks = f.looks.get(profile)
        if self.smoke or not looks:
            looks = (len(seeds), len(seeds) + 1) if self.smoke else (len(seeds),)
        if self.seed_cap is not None:
            looks = tuple(n for n in looks if n <= self.seed_cap) or (len(seeds),)
        return SeedPlan.extend(seeds, looks)

    def settings_hash(self, claim: Claim, profile: str) -> str:
        """A digest of what the YAML says a claim runs with at a profile (its own settings and its
        family's shared ones, under --smoke the smoke settings, before any seed offset): a stored
        record whose digest differs is stale. The claim's thresholds count as settings here: a
        record decided by other numbers is stale too."""
        own = self._own(claim, profile) if profile in claim.profiles else None
        shared = self.shared[claim.id].shared.get(profile, {}) if claim.id in self.shared else {}
        if self.smoke and claim.id in self.shared:
            shared = self.shared[claim.id].smoked("shared", profile, shared)
        digest = {"claim": own, "shared": shared}
        if claim.thresholds:
            digest["thresholds"] = claim.thresholds.as_record()
        text = json.dumps(digest, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def current_settings_hash(self, claim_id: str, case: str | None, profile: str) -> str | None:
        """:meth:`settings_hash` of the claim (or half) a record speaks for; None when the catalogue
        no longer has it at that profile."""
        if claim_id not in self.claims:
            return None
        half = self.half_of(claim_id, case)
        claim = self.cases.get((claim_id, half)) if half else self.claims[claim_id]
        return self.settings_hash(claim, profile) if claim is not None and profile in claim.profiles else None

    def half_of(self, cid: str, case: str | None) -> str | None:
        """The half a test case belongs to (``vgg`` for cases ``vgg`` and ``vgg-…``), None for the main entry."""
        for i, half in self.cases:
            if i == cid and case is not None and (case == half or case.startswith(half + "-")):
                return half
        return None

    def expected_for(self, cid: str, case: str | None, profile: str) -> Expected | None:
        # an entry speaks for the main claim or for one half, never across: a claim-wide entry
        # does not reach a half, an entry naming the half covers all of the half's cases; within
        # that scope a case-specific entry wins over a wider one
        half = self.half_of(cid, case)
        matches = [e for e in self.expected
                   if self.half_of(cid, e.case) == half and (e.applies(cid, case, profile) or
                                                             (e.case == half and e.claim == cid and profile in e.profiles))]
        matches.sort(key=lambda e: (e.case is None, e.case == half))
        return matches[0] if matches else None
