"""What a selection of claims needs trained, found without training: ``pytest -m slow --plan``.

Under ``--plan`` the suite's store (:class:`harness.claimkit.store.Store`) gets a
:class:`Planner` (``Store.planner``). Every run a claim asks for is noted with its key: a stored
one is loaded as usual (so a claim whose runs are all stored judges as always), a missing one is
listed and not made, and the claim stops there (:class:`Planned`). Labs that ask for many runs at once (the VGG and DLN runs, the
ResNet lab's LR searches and prefetch lists, the init passes) declare the whole list first
(``Store.declare``), so one planning pass lists all of them.
An LR search lists every LR of its grid below the first one it lacks: those are *conditional*
(App. J's search stops at the first achievable LR, which only the runs can tell), so the plan's
cost is an upper bound and says how much of it is conditional.

A full run at an LR a search will pick (the unnormalized net's best LR) costs the same whatever
the LR, so the claims declare it before their search (``ResNetLab.expect_after_search``): it is
listed as *pending*, priced, with a key that exists once the search ran. A claim that still needs
results before it can say which runs come next is listed as *waiting*: plan again once the listed
runs are stored and its next runs appear. A lab's preconditions that cannot be measured yet count
as unknown under --plan, so the claims behind them still declare their own runs. On a warm cache the plan lists exactly the runs an
execution makes, all stored (``tests/test_plan.py`` checks this on the smoke profile).

Estimates (``harness.models.flops``): each run's FLOPs are its model's forward FLOPs
(``torch.utils.flop_counter`` on one input) × 3 for a training step (forward + backward) × batch ×
steps, plus its evaluations' forward passes; probes (landscape lines, ICS) are not counted. Time
is FLOPs over the sustained rate measured on the current device by training a ResNet-20 for a few
steps (``calibrate``), or over ``--plan-tflops``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.claimkit.report.records import atomic_write_text

PLAN_VERSION = 1


class Planned(Exception):
    """Under --plan, a claim asked for runs its store lacks: they are listed, not made. A suite's
    store raises this (or a type it declares through ``claimkit_planned_stops``)."""

    def __init__(self, missing: int):
        super().__init__(f"plan: waits for {missing} run(s) not yet stored")
        self.missing = missing


@dataclasses.dataclass
class PlannedRun:
    key: str
    kind: str
    name: str
    stored: bool  # in the model cache already
    conditional: bool  # made only if the runs before it in its LR search are not achievable, or its claim stays undecided
    flops: float | None  # estimate; None when unknown
    cacheable: bool = True  # False: computed in the session, never stored (init passes)
    makeable: bool = False  # a recipe makes it (--plan-execute)
    pending: bool = False  # a full run whose LR its search decides: counted at its cost, its key known after the search
    claims: list[str] = dataclasses.field(default_factory=list)


class Planner:
    """The runs a planning pass met, by cache key, and which claims asked for them."""

    def __init__(self):
        self.runs: dict[str, PlannedRun] = {}
        self.claim: str | None = None  # the claim case being planned (set by the plugin)
        self.noted: list[str] = []  # keys noted since the plugin last took them (one test)
        self.makes: dict[str, tuple] = {}  # key → recipe (function, args) of a missing run, this process's
        self.uncertain = False  # the runs noted now may never be made (a later look, or behind unknown preconditions)

    def start_claim(self, claim: str) -> None:
        """A new claim case is planned (the plugin calls this before each)."""
        self.claim, self.uncertain = claim, False

    def from_here_conditional(self) -> None:
        """Every run the current claim notes from now on is conditional: it runs only if something
        not known yet allows it (the lab's preconditions, measured once the lab's runs are stored)."""
        self.uncertain = True

    @contextlib.contextmanager
    def conditional(self):
        """Within: every run noted is conditional (the seeds of a claim's later looks)."""
        previous, self.uncertain = self.uncertain, True
        try:
            yield
        finally:
            self.uncertain = previous

    def note(self, key: str, kind: str, name: str, stored: bool, flops: float | None = None,
             conditional: bool = False, cacheable: bool = True, pending: bool = False, make: tuple | None = None) -> None:
        conditional = conditional or self.uncertain
        run = self.runs.get(key)
        if run is None:
            run = self.runs[key] = PlannedRun(key, kind, name, stored, conditional, flops, cacheable, pending=pending)
        else:  # asked for again: unconditional when any claim needs it for sure
            run.conditional = run.conditional and conditional
            run.stored = run.stored or stored
        if make is not None and not run.stored:
            self.makes.setdefault(key, make)
            run.makeable = True
        if self.claim and self.claim not in run.claims:
            run.claims.append(self.claim)
        self.noted.append(key)

    def execute(self, map_runs: Callable[[Callable, list], Any] | None = None) -> int:
        """Make every missing run this process noted a recipe for, each stored by the process that
        makes it: one after another, or through ``map_runs(fn, calls)`` (``fn(*call)`` for each call,
        on a suite's executor, to make them side by side). Returns how many recipes ran."""
        recipes = [(fn, tuple(args)) for fn, args in self.makes.values()]
        if map_runs is None:
            for fn, args in recipes:
                _apply(fn, args)
        else:
            map_runs(_apply, recipes)  # like harness.concurrent.parallel_map: _apply(*call) for each call
        self.makes.clear()
        return len(recipes)

    def take(self) -> list[dict]:
        """The runs noted since the last call, as plain records (shipped from xdist workers)."""
        keys, self.noted = list(dict.fromkeys(self.noted)), []
        return [dataclasses.asdict(self.runs[k]) for k in keys]


def _apply(fn, args: tuple):
    fn(*args)  # the run stores itself in the model cache; nothing comes back


def merge_runs(groups: Iterable[Iterable[Mapping[str, Any]]]) -> dict[str, dict]:
    """Planned runs of several tests or workers, one per key: stored if any saw it stored,
    conditional only if every claim that asked for it may go without it, claims united."""
    out: dict[str, dict] = {}
    for group in groups:
        for run in group:
            have = out.get(run["key"])
            if have is None:
                out[run["key"]] = {**run, "claims": list(run["claims"])}
                continue
            have["stored"] = have["stored"] or run["stored"]
            have["makeable"] = have.get("makeable", False) or run.get("makeable", False)
            have["conditional"] = have["conditional"] and run["conditional"]
            have["claims"] += [c for c in run["claims"] if c not in have["claims"]]
    return out


# --- the plan file and its summary ----------------------------------------------------------

def summarize(runs: Mapping[str, Mapping[str, Any]], waiting: Mapping[str, int], flops_per_s: float | None, rate_source: str,
              device: str) -> dict:
    """plan.json's content: every run, the claims still waiting, and the totals."""
    todo = [r for r in runs.values() if not r["stored"]]
    certain = [r for r in todo if not r["conditional"]]

    def total(rs) -> float:
        return sum(r["flops"] or 0.0 for r in rs)

    def hours(flops: float) -> float | None:
        return flops / flops_per_s / 3600 if flops_per_s else None

    unknown = sum(1 for r in todo if r["flops"] is None)
    return {
        "version": PLAN_VERSION,
        "device": device,
        "flops_per_s": flops_per_s,
        "rate_source": rate_source,
        "totals": {
            "runs": len(runs), "stored": len(runs) - len(todo), "to_make": len(todo), "conditional": len(todo) - len(certain),
            "pending": sum(1 for r in todo if r.get("pending")),
            "makeable": sum(1 for r in todo if r.get("makeable")),
            "without_estimate": unknown,
            "flops_to_make": total(todo), "flops_certain": total(certain),
            "hours_to_make": hours(total(todo)), "hours_certain": hours(total(certain)),
            "waiting_claims": len(waiting),
        },
        "waiting": dict(sorted(waiting.items())),
        "runs": sorted(runs.values(), key=lambda r: (r["stored"], r["kind"], r["name"])),
    }


def summary_lines(plan: Mapping[str, Any]) -> list[str]:
    t = plan["totals"]
    rate = f"{plan['flops_per_s'] / 1e12:.3g} TFLOP/s ({plan['rate_source']})" if plan["flops_per_s"] else plan["rate_source"]
    lines = [f"plan: {t['runs']} run(s): {t['stored']} stored, {t['to_make']} to make"
             + (f" ({t['conditional']} conditional: on their LR search, or on a claim still undecided after its first seeds)"
                if t["conditional"] else "")
             + (f"; {t['pending']} of them full runs at an LR their search will pick" if t["pending"] else ""),
             f"plan: {t['flops_to_make'] / 1e15:.3g} PFLOP to make, "
             + (f"≈ {t['hours_to_make']:.3g} h at {rate}" if t["hours_to_make"] is not None else f"no time estimate ({rate})")
             + (f"; {t['hours_certain']:.3g} h without the conditional runs" if t["conditional"] and t["hours_certain"] is not None
                else "")]
    by_kind: dict[str, list[int]] = {}
    for run in plan["runs"]:
        counts = by_kind.setdefault(run["kind"], [0, 0])
        counts[0 if run["stored"] else 1] += 1
    lines.append("plan: by kind (stored / to make): " + ", ".join(f"{k} {s}/{m}" for k, (s, m) in sorted(by_kind.items())))
    if t["without_estimate"]:
        lines.append(f"plan: {t['without_estimate']} run(s) to make have no FLOP estimate")
    if t["waiting_claims"]:
        lines.append(f"plan: {t['waiting_claims']} claim case(s) stop at runs not yet made; once these are made, plan "
                     "again: a claim that picks further runs from results (its doublings, its next stage) lists them then")
    else:
        lines.append("plan: every selected claim case has declared all its runs")
    return lines


def write_plan(plan: Mapping[str, Any], path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(plan, indent=1, sort_keys=False) + "\n")
    return path
