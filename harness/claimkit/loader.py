"""Reading one claims file: strict YAML, every field checked, settings typed by the family's classes.

The format is described in :mod:`harness.claimkit.claims`; every error names the file, the claim
and the field (:class:`~harness.claimkit.claims.RegistryError`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from harness.claimkit import settings as schemas
from harness.claimkit.evidence import MIN_SEEDS

from harness.claimkit.claims import (CASE_PATTERN, CLAIM_FIELDS, EXTRA_FIELDS, ID_PATTERN, MAX_SEED, OPTIONAL_CLAIM_FIELDS,
                                     PAPERS, PROFILES, SMOKED, THRESHOLD_NAME, TIERS, Claim, ClaimsFile, RegistryError,
                                     Thresholds, _is_seed_key, _where)


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
    unknown = set(raw) - set(CLAIM_FIELDS) - set(OPTIONAL_CLAIM_FIELDS) - set(EXTRA_FIELDS)
    if unknown:
        raise RegistryError(f"{_where(path, label, sorted(unknown)[0])}: unknown field")
    _require_str(path, label, "id", cid)
    if not ID_PATTERN.match(cid):
        raise RegistryError(f"{_where(path, cid, 'id')}: '{cid}' is not an ID like B-RMT-KAPPA")
    claim_paper = raw.get("paper", paper)
    if claim_paper not in PAPERS:
        raise RegistryError(f"{_where(path, cid, 'paper')}: unknown paper '{claim_paper}' (known: {', '.join(PAPERS) or 'none'})")
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
    extra = {}
    for name, (kind, _) in EXTRA_FIELDS.items():
        if name in raw:
            value = raw[name]
            if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
                wanted = "true or false" if kind is bool else f"a {kind.__name__}"
                raise RegistryError(f"{_where(path, cid, name)}: must be {wanted}, got {value!r}")
            extra[name] = value
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
        extra=extra,
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
        raise RegistryError(f"{_where(path, None, 'paper')}: unknown paper '{paper}' (known: {', '.join(PAPERS) or 'none'}; "
                            f"a suite declares its papers with register_paper)")
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
