"""The claims registry: every claims file of a folder, and the expected-verdicts file beside them.

The claims files' format (fields, tiers, seeds, looks, smoke settings, halves) is described in
:mod:`harness.claimkit.claims`, which parses one file; this module gathers a folder of them
(:class:`Registry`), gives each claim's settings and seed plan as a session runs them (seed
offset, ``--smoke``, ``--seed-cap``), and reads ``expected_verdicts.yaml``: the claims that do not
hold, each with its cause and why (:func:`load_expected`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.claimkit import settings as schemas
from harness.claimkit.claims import (CAUSES, EXPECTABLE, ID_PATTERN, MAX_SEED, MAX_SEED_OFFSET, PAPERS, PROFILES,  # noqa: F401
                                     SEED_STRIDE, SMOKE_TIER, SMOKED, TIERS, Claim, ClaimsFile, RegistryError, Thresholds,
                                     register_claim_field, register_paper, shift_seeds, _where)
from harness.claimkit.evidence import SeedPlan
from harness.claimkit.loader import _load_yaml, _require_str, load_claims_file  # noqa: F401


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
    why: tuple[str, ...] | None = None  # what kept it from holding (harness.claimkit.verdicts.Verdict.why); None: not checked

    def applies(self, claim: str, case: str | None, profile: str) -> bool:
        return (
            self.claim == claim
            and profile in self.profiles
            and (self.case is None or self.case == case)
        )


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
        ``looks`` (``harness.claimkit.evidence.SeedPlan``). None for a seed-exempt claim, or one whose settings name no seeds (it names its
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
