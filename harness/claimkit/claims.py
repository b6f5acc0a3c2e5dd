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
        bn_vs_none: true         # a field a suite registers (register_claim_field): the batch-norm
                                 # suite's claims that must stop holding when BN is the identity
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

A stochastic claim decides on its seeds in looks (``harness.claimkit.evidence.Design``): a file declares,
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
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.claimkit.vocabulary import EXPECTABLE  # noqa: F401 - the file format names them

PAPERS: dict[str, str] = {}  # paper ID (a claims file's ``paper``) → its title; a suite registers them (register_paper)
EXTRA_FIELDS: dict[str, tuple[type, str]] = {}  # optional claim fields a suite adds: name → (type, what it means)
PROFILES = ("fast", "slow", "paper")
TIERS = ("paper", "reduced", "stand-in")  # best first
STAND_IN = TIERS[-1]  # the lowest: what ran stood in for the paper's model or data
SMOKE_TIER = "smoke"  # the tier of a --smoke record: a code path that ran, never a verdict
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
OPTIONAL_CLAIM_FIELDS = ("deviations", "figure", "paper", "case", "tiers", "seed_exempt", "requires",
                         "thresholds")
THRESHOLD_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
CASE_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
ID_PATTERN = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")


def register_paper(paper: str, title: str) -> None:
    """Declare a paper a claims file may name (``paper: ID``) and the title the report shows for it."""
    if not isinstance(paper, str) or not paper or not isinstance(title, str) or not title:
        raise ValueError(f"register_paper: a paper ID and a title (strings), got {paper!r}, {title!r}")
    PAPERS[paper] = title


def register_claim_field(name: str, kind: type, meaning: str) -> None:
    """Declare an optional claim field of the suite's own (read back as ``claim.extra[name]``),
    checked to be of type ``kind`` when a claims file sets it."""
    if name in CLAIM_FIELDS or name in OPTIONAL_CLAIM_FIELDS or not THRESHOLD_NAME.match(name):
        raise ValueError(f"register_claim_field: '{name}' is a field of every claim already, or not a snake_case name")
    EXTRA_FIELDS[name] = (kind, meaning)


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
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # the suite's own fields (EXTRA_FIELDS) it sets
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

