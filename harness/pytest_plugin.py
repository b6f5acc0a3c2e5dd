"""pytest plugin: claims registry, profiles, verdict records and the claims report.

Claim tests are marked ``@pytest.mark.claim("B-RMT-KAPPA")`` and request the ``verdict`` fixture.
The plugin then
- parametrizes them over the profiles their YAML lists (ids like ``B-RMT-KAPPA-fast``, each
  carrying the marker ``fast``/``slow``/``paper``; a plain ``pytest`` runs no slow or paper case),
- turns entries of ``claims/expected_verdicts.yaml`` (refuted or inconclusive, each with its
  cause) into ``xfail(strict=True)``,
- under ``--smoke``, runs the slow and paper cases at their files' smoke settings (tiny budgets,
  the same code) as a test of the code path: records at tier ``smoke``, never verdicts, never
  compared with the expected verdicts, written to ``reports/smoke/`` by default,
- under ``--plan``, trains nothing: lists every run the selected claims ask for (stored or to
  make, with FLOP and time estimates) in ``reports/plan.json`` and a summary (harness.plan),
- shifts every seed by ``--seed-offset`` (env ``BNCLAIMS_SEED_OFFSET``), so a run can draw fresh
  randomness,
- ships one record per test to the controlling process (through ``report.user_properties``, so
  pytest-xdist workers need no shared files) and merges it into ``reports/claims.json`` after
  every claim, and renders ``reports/claims.html`` at the end, also after Ctrl-C or SIGTERM;
- checks the configuration (report and cache folders, claims folder, CIFAR-10 root, GPU list,
  threshold names against the readouts) before any claim runs, each problem one line naming the
  option (harness.plugin_config, which also holds the options);
- records every signal that stops the run (harness.interruptions), and marks the records of a
  run under a plugin that changes what is measured, which go to a report of their own.

Installed, it is a registered pytest plugin (the ``pytest11`` entry point): its options are known
wherever pytest starts. In a project without a claims folder it unregisters itself.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from harness import checks
from harness.cache import Planned, default_cache_dir
from harness.data import CIFAR10_ENV, cifar10_root
from harness.interruptions import Interruptions
from harness.plan import Planner
from harness.plugin_config import (MUTATION_KEY, SEED_OFFSET_ENV, check_configuration, check_entry_point,  # noqa: F401
                                   check_path_options, configure_executor, configure_mutation, mutation_label, pytest_addoption,
                                   pytest_load_initial_conftests, report_dir, seed_cap, seed_offset)
from harness.registry import ID_PATTERN, PROFILES, SMOKE_TIER, SMOKED, Registry, RegistryError, Thresholds
from harness.report.records import ReportError, suite_version
from harness.settings import Settings
from harness.verdicts import ERROR, HOLDS, INCONCLUSIVE, NOT_RUN, REFUTED, ClaimInconclusive, ClaimRefuted, Verdict, to_plain

RAISES = {REFUTED: ClaimRefuted, INCONCLUSIVE: ClaimInconclusive}
STAND_IN_IMAGES = ("synthetic-", "natural-patches-")  # image data other than the papers' CIFAR-10

RECORD_PROPERTY = "bnclaims_record"
PLAN_PROPERTY = "bnclaims_plan"  # under --plan: the runs a test noted, and whether it waits for missing ones
CLAIM_KEY = pytest.StashKey[tuple]()  # (claim, profile, case)
VERDICT_KEY = pytest.StashKey[Verdict]()
SETUP_TIME_KEY = pytest.StashKey[float]()
STATE_KEY = pytest.StashKey["ClaimsSession"]()


class ClaimsSession:
    def __init__(self, config: pytest.Config, registry: Registry):
        self.config = config
        self.registry = registry
        self.records: dict[str, dict] = {}
        self.profiles: set[str] = set()
        self.started = time.time()
        self.started_text = _dt.datetime.fromtimestamp(self.started, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        self.is_worker = hasattr(config, "workerinput")
        self.commit = None if self.is_worker else _git_commit(Path(config.rootpath))  # the controller stamps records
        self.code_version = None if self.is_worker else suite_version(config.rootpath)
        self.run_id = f"{self.started:.6f} {socket.gethostname()} {os.getpid()}"  # records name the run they came from
        self.fresh = bool(config.getoption("fresh_report"))  # ignore the stored records, once
        self.report_paths: tuple[Path, Path] | None = None
        self.warned = False
        self.report_dir = report_dir(config)
        self.deselected_profiles: list[str] = []  # node ids of slow / paper cases this selection leaves out
        self.planning = bool(config.getoption("plan") or config.getoption("plan_execute"))
        self.planner = Planner() if self.planning else None  # this process's (a worker's, or a serial run's)
        self.planned: list[list[dict]] = []  # every test's planned runs (on the controller)
        self.waiting: dict[str, int] = {}  # claim case → runs it waits for
        self.plan_path: Path | None = None
        self.plan_lines: list[str] = []
        self.made = 0  # runs --plan-execute made in this process
        self.interrupts = Interruptions()  # the controller installs it: every SIGINT / SIGTERM, however many
        self.exit_interrupted = False  # pytest ended the session as interrupted
        self.final_signals: int | None = None  # signals the last finished write recorded (None: not written yet)
        self.mutation = config.stash.get(MUTATION_KEY, [])  # plugins that change what is measured

    def run_info(self, *, finished: bool, interrupted: bool = False) -> dict:
        import torch

        from harness.device import describe

        return {
            "id": self.run_id,
            "started": self.started_text,
            "commit": self.commit,
            "wall_time_s": time.time() - self.started,
            "finished": finished,
            "interrupted": interrupted or self.exit_interrupted or bool(self.interrupts.received),
            "signals": list(self.interrupts.received),
            "mutation": self.mutation or None,
            # under xdist the controller collects nothing: the profiles are then those of the records
            "profiles": sorted(self.profiles or {r["profile"] for r in self.records.values()}),
            "seed_offset": self.registry.seed_offset,
            "device": describe(),
            "torch_version": torch.__version__,
            "python_version": platform.python_version(),
            "host": socket.gethostname(),
            "workers": int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")) or self.config.getoption("numprocesses", None) or 1,
        }

    def write(self, *, finished: bool, interrupted: bool = False) -> tuple[Path, Path] | None:
        """Merge this run's records into the report store (claims.json) and, at the end, render
        the whole store as HTML. A failed write warns once; the run goes on."""
        from harness.report import update_store, write_html

        json_path, html_path = self.report_dir / "claims.json", self.report_dir / "claims.html"
        render = (lambda records, runs: write_html(records, runs, html_path, self.stale(records))) if finished else None
        signals = len(self.interrupts.received)
        try:
            with self.interrupts.protected(reraise=not finished):  # a signal now waits until the store is consistent
                _, _, warning = update_store(json_path, self.records.values(), self.run_info(finished=finished, interrupted=interrupted),
                                             fresh=self.fresh, then=render, option="--report-dir (env BNCLAIMS_REPORT_DIR)")
            self.fresh = False  # later writes merge with what this run wrote
            if warning:
                self._warn(warning)
            if finished:
                self.final_signals = signals
                return json_path, html_path
        except (OSError, ReportError) as err:
            self._warn(f"could not write the claims report in {self.report_dir} (--report-dir): {err}")
        return None

    def stale(self, records: list[dict]) -> dict[str, str]:
        """Why stored records are stale: made with other code than this checkout's, or with other
        settings than the YAML now gives their claim."""
        from harness.report.records import stale_reasons

        return stale_reasons(records, self.code_version,
                             lambda r: self.registry.current_settings_hash(r["claim_id"], r.get("case"), r["profile"]))

    def _warn(self, text: str) -> None:
        if not self.warned:
            self.warned = True
            _print_warning(self.config, f"claims report: {text}")

    # hooks: this object is registered as a plugin in pytest_configure

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # on the controller (or in a serial run) the records of every worker arrive here; the record
        # (figures included) is taken out of the report, so --junitxml does not copy it
        if self.is_worker:
            return
        properties = report.user_properties
        report.user_properties = [(n, v) for n, v in properties if n not in (RECORD_PROPERTY, PLAN_PROPERTY)]
        for name, value in properties:
            if name == PLAN_PROPERTY:
                planned = json.loads(value)
                self.planned.append(planned["runs"])
                if planned["waiting"]:
                    self.waiting[planned["case"]] = planned["waiting"]
            if name == RECORD_PROPERTY:
                record = json.loads(value)
                # this run's, also on xdist workers' records
                record.update(run_id=self.run_id, recorded=self.started_text, commit=self.commit, code_version=self.code_version,
                              mutation=mutation_label(self.config))
                self.records[record["nodeid"]] = record
                self.write(finished=False)  # an interrupted run keeps what finished

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.exit_interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        try:
            if self.planning and self.config.getoption("plan_execute") and self.planner.makes:
                from harness.concurrent import side_by_side_workers
                from harness.device import select_device

                self.made = self.planner.execute(side_by_side_workers(select_device()))  # each process its own claims' runs
        finally:  # a signal during the runs still leaves the plan and the report written
            if self.planning and not self.is_worker:
                self.write_plan()
            if not self.is_worker and self.records:  # --collect-only, or no claim ran: the report stays as it was
                self.write_history()  # first: the HTML shows this run in each claim's history
                self.report_paths = self.write(finished=True)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """The run's last word in the report: written here when a signal stopped the session before
        its final write, or rewritten when signals arrived after it (so the entry lists them all)."""
        if not self.is_worker and self.records and (self.final_signals is None
                                                    or self.final_signals < len(self.interrupts.received)):
            self.report_paths = self.write(finished=True)
        self.interrupts.uninstall()

    def write_history(self) -> None:
        """Append this run's records to the verdict history beside the report (harness.report.history).
        A smoke run adds none: its verdicts test code paths at tiny budgets and count for nothing."""
        if self.registry.smoke:
            return
        from harness.report.history import append_run, provenance

        run = {**self.run_info(finished=True), **provenance(self.config.rootpath),
               "code_version": self.code_version}
        _, warning = append_run(self.report_dir, self.records.values(), run)
        if warning:
            _print_warning(self.config, f"verdict history: {warning}")

    def write_plan(self) -> None:
        from harness.device import describe, select_device
        from harness.models.flops import calibrate
        from harness.plan import merge_runs, summarize, summary_lines, write_plan

        tflops = self.config.getoption("plan_tflops")
        rate, source = (tflops * 1e12, "--plan-tflops") if tflops else (calibrate(select_device()), f"measured on {describe()}")
        plan = summarize(merge_runs(self.planned), self.waiting, rate, source, describe())
        try:
            self.plan_path = write_plan(plan, self.report_dir / "plan.json")
        except OSError as err:
            self._warn(f"could not write the plan in {self.report_dir} (--report-dir): {err}")
        self.plan_lines = summary_lines(plan)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.plan_lines:
            executed = self.config.getoption("plan_execute")
            terminalreporter.write_sep("-", "plan, then made by --plan-execute" if executed else "plan (nothing was trained)")
            for line in self.plan_lines:
                terminalreporter.write_line(line)
            if executed:
                terminalreporter.write_line(f"plan: --plan-execute made the runs it had recipes for "
                                            f"({self.made} recipe(s) in this process; under -n each worker made its own)")
            if self.plan_path:
                terminalreporter.write_line(f"wrote {self.plan_path}")
        if not self.report_paths:
            return
        counts: dict[str, int] = {}
        for rec in self.records.values():
            counts[rec["verdict"]] = counts.get(rec["verdict"], 0) + 1
        unexpected = sum(1 for r in self.records.values() if r["as_expected"] is False)
        terminalreporter.write_sep("-", "claims report")
        by_tier: dict[str, dict[str, int]] = {}
        for rec in self.records.values():
            tier = by_tier.setdefault(rec.get("tier", "?"), {})
            tier[rec["verdict"]] = tier.get(rec["verdict"], 0) + 1
        for tier, tier_counts in sorted(by_tier.items()):
            text = ", ".join(f"{n} {v}" for v, n in sorted(tier_counts.items()))
            terminalreporter.write_line(f"tier {tier}: {text}")
        if self.registry.smoke:
            terminalreporter.write_line(f"smoke run: {len(self.records)} slow/paper claim case(s) ran end to end at tiny "
                                        "budgets; their verdicts test the code path and count for nothing")
        else:
            terminalreporter.write_line(f"{unexpected} verdict(s) differ from the expected verdicts")
        terminalreporter.write_line(f"wrote {self.report_paths[1]} and {self.report_paths[0]}")


def _git_commit(root: Path) -> str | None:
    """The checkout's commit (short), or None outside a git checkout."""
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _print_warning(config: pytest.Config, text: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"WARNING {text}", yellow=True)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """With ``-n N``, distribute by file (``--dist loadfile``) unless the user chose a mode: a claim
    family is one file and shares session fixtures (trained runs, probed records), so each file
    runs on one worker. Not loadgroup: with pytest 9, xdist 3.8's loadgroup ignores xdist_group
    marks. Set here rather than in addopts, so ``-p no:xdist`` keeps working."""
    if getattr(config.option, "numprocesses", None) and getattr(config.option, "dist", "no") == "no":
        config.option.dist = "loadfile"


def _check_history(config: pytest.Config) -> None:
    """A verdict history from a newer schema stops a run that would add to it before any claim
    runs, rather than after hours of training with nowhere to put its rows."""
    if any(config.getoption(o) for o in ("collectonly", "plan", "plan_execute", "smoke")):
        return  # these add no history rows
    from harness.report.history import NewerHistory, check_schema

    try:
        check_schema(report_dir(config))
    except NewerHistory as err:
        raise pytest.UsageError(f"verdict history: {err}") from None


def pytest_configure(config: pytest.Config) -> None:
    claims_dir = Path(config.getoption("claims_dir") or Path(config.rootpath) / "claims")
    if not config.getoption("claims_dir") and not claims_dir.is_dir():
        # another project, where an installed bnclaims is loaded through its entry point: change nothing there
        config.pluginmanager.unregister(sys.modules[__name__])
        return
    for name, text in (
        ("fast", "CPU profile: small nets, three seeds, real offline data (scikit-learn digits and photographs)"),
        ("slow", "nightly GPU profile at the papers' scale"),
        ("paper", "the paper's full protocol (opt-in, hours)"),
        ("claim(id, case=None)", "the claim ID (claims/*.yaml) a test checks; case: which half of it"),
    ):
        config.addinivalue_line("markers", f"{name}: {text}")
    from harness.device import configure_threads

    try:
        configure_threads()
    except ValueError as err:  # a bad BNCLAIMS_THREADS: one line, before any claim runs
        raise pytest.UsageError(f"{err} (unset it for the default of 1)") from None
    check_path_options(config)
    try:
        if config.getoption("claims_dir"):
            checks.claims_dir(claims_dir, "--claims-dir")
    except checks.ConfigError as err:
        raise pytest.UsageError(str(err)) from None
    configure_executor(config)
    configure_mutation(config)
    controller = not hasattr(config, "workerinput")
    if controller:  # the controller checks once; workers inherit a checked setup
        check_configuration(config)
        check_entry_point(config)
        _check_history(config)
    try:
        offset = seed_offset(config)
        smoke = bool(config.getoption("smoke"))
        cap = seed_cap(config)
        registry = (Registry.load(claims_dir, offset, smoke, cap) if claims_dir.is_dir()
                    else Registry([], seed_offset=offset, seed_cap=cap))
        if controller:
            _check_threshold_names(registry, claims_dir)
    except RegistryError as err:
        raise pytest.UsageError(f"claims registry: {err}") from None
    _check_keyword_ids(config, registry)
    state = ClaimsSession(config, registry)
    config.stash[STATE_KEY] = state
    config.pluginmanager.register(state, "bnclaims-session")
    if controller and state.interrupts.install():  # Ctrl-C and SIGTERM (timeout, a batch scheduler), however many
        config.add_cleanup(state.interrupts.uninstall)


def _check_threshold_names(registry: Registry, claims_dir: Path) -> None:
    """Every threshold name a claim's test reads through its readout is one the claim declares:
    a typo stops the run now, not after the measurement (harness.threshold_reads)."""
    from harness.sources import REPO
    from harness.threshold_reads import readout_modules, undeclared_reads

    problems = undeclared_reads(registry, claims_dir, readout_modules(REPO))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise RegistryError(problems[0] + more)


def _check_keyword_ids(config: pytest.Config, registry: Registry) -> None:
    """``-k B-RMT-KAPX`` would silently select nothing: name the unknown claim IDs instead."""
    tokens = re.findall(r"[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+", config.getoption("keyword") or "")
    unknown = [t for t in tokens if ID_PATTERN.match(t) and t not in registry.claims
               and not any(cid.startswith(t) for cid in registry.claims)]
    if registry.claims and unknown:
        raise pytest.UsageError(
            f"-k names unknown claim ID(s) {', '.join(unknown)}; known IDs: {', '.join(sorted(registry.claims))}"
        )


def _state(config: pytest.Config) -> ClaimsSession:
    return config.stash[STATE_KEY]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("claim")
    if marker is None:
        return
    where = metafunc.definition.nodeid
    if len(marker.args) != 1 or not isinstance(marker.args[0], str) or set(marker.kwargs) - {"case"}:
        raise RegistryError(f"{where}: @pytest.mark.claim takes exactly one claim ID (and optionally case=...)")
    claim = _state(metafunc.config).registry.claim(marker.args[0], case=marker.kwargs.get("case"), where=where)
    if "profile" not in metafunc.fixturenames:
        raise RegistryError(f"{where}: a claim test must request the 'verdict' fixture")
    # ids like "B-RMT-KAPPA-fast" (a half: "S-LAND-LOSS-fast-vgg"): the claim ID is in every test
    # id, so `-k B-RMT-KAPPA` selects it
    half = f"-{claim.case}" if claim.case else ""
    metafunc.parametrize(
        "profile",
        [pytest.param(p, marks=getattr(pytest.mark, p), id=f"{claim.id}-{p}{half}") for p in PROFILES if p in claim.profiles],
        indirect=True,
    )


def _case_id(item: pytest.Item, claim_id: str, profile: str) -> str | None:
    """The test's parametrization id without the claim-profile part (None when there is none)."""
    full, token = item.callspec.id, f"{claim_id}-{profile}"
    if full == token:
        return None
    if full.startswith(token + "-"):
        return full[len(token) + 1 :]
    if full.endswith("-" + token):
        return full[: -len(token) - 1]
    return full.replace(token, "").strip("-") or None


def named_profiles(markexpr: str | None) -> set[str]:
    """The profiles a ``-m`` expression names (as words)."""
    return {p for p in PROFILES if re.search(rf"\b{p}\b", markexpr or "")}


def selected_profiles(markexpr: str | None, smoke: bool = False) -> set[str]:
    """The profiles whose claim cases a ``-m`` expression may select: ``fast`` always, ``slow`` and
    ``paper`` only when the expression names them (``-m slow``, ``-m "fast or paper"``). So a plain
    ``pytest`` or ``pytest -m "not benchmark"`` never starts hours of training on a CPU.
    ``smoke``: the slow and paper profiles the expression names, both when it names neither."""
    if smoke:
        return (named_profiles(markexpr) & set(SMOKED)) or set(SMOKED)
    return {"fast"} | named_profiles(markexpr)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    state = _state(config)
    keep, dropped = [], []
    smoke = config.getoption("smoke")
    allowed = selected_profiles(config.getoption("markexpr"), smoke)
    for item in items:
        marker = item.get_closest_marker("claim")
        if marker is not None:
            profile = item.callspec.params["profile"]
            if profile not in allowed:
                dropped.append(item)  # slow and paper cases run only when -m names their profile; --smoke runs no fast case
                continue
            claim = state.registry.claim(marker.args[0], case=marker.kwargs.get("case"))
            case = _case_id(item, claim.id, profile)
            item.stash[CLAIM_KEY] = (claim, profile, case)
            expected = state.registry.expected_for(claim.id, case, profile)
            if expected is not None and not smoke and not state.planning:
                item.add_marker(
                    pytest.mark.xfail(
                        strict=True, raises=RAISES[expected.verdict],
                        reason=f"expected {expected.verdict} at {profile} ({expected.cause}): {expected.reason} "
                               f"(recorded: {expected.measured})",
                    )
                )
        keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
        state.deselected_profiles = [i.nodeid for i in dropped]


def pytest_collection_finish(session: pytest.Session) -> None:
    state = _state(session.config)
    state.profiles = {i.stash[CLAIM_KEY][1] for i in session.items if CLAIM_KEY in i.stash}


def pytest_report_header(config: pytest.Config) -> list[str]:
    """What this run computes on and where its results go, above the test list."""
    from harness.device import compute_threads, describe

    root = Path(config.rootpath)
    cifar = cifar10_root(config.getoption("cifar10_root"))
    return [f"bnclaims: device {describe()}, {compute_threads()} torch thread(s) per process, seed offset "
            f"{_state(config).registry.seed_offset}"
            f"{f', at most {_state(config).registry.seed_cap} seeds per claim (--seed-cap)' if _state(config).registry.seed_cap else ''}"
            f"{', SMOKE run (tiny budgets, no verdicts)' if config.getoption('smoke') else ''}",
            f"bnclaims: model cache {default_cache_dir(config.getoption('cache_dir'), root)}"
            f"{' (judge only)' if config.getoption('judge_only') else ''}, report {report_dir(config)}, "
            f"CIFAR-10 {cifar if cifar else 'not configured'}"]


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> list[str]:
    """Say why slow / paper cases did not run when the user asked for some (-m or node ids), and
    when they run without CIFAR-10, that other images stand in."""
    state, lines = _state(config), []
    markexpr = config.getoption("markexpr")
    # said when the selection did not name a profile itself (-m "not benchmark", node ids), not for -m fast
    asked = (markexpr and not named_profiles(markexpr)) or any("::" in str(a) for a in config.args)
    if state.deselected_profiles and asked:
        shown = ", ".join(state.deselected_profiles[:3]) + (" …" if len(state.deselected_profiles) > 3 else "")
        lines.append(f"bnclaims: {len(state.deselected_profiles)} slow/paper claim case(s) not run ({shown}): they run "
                     "only when -m names their profile, e.g. -m slow or -m paper")
    files = {f.path: f for f in state.registry.files}
    cases = [(files[i.stash[CLAIM_KEY][0].file], i.stash[CLAIM_KEY][1]) for i in items if CLAIM_KEY in i.stash]
    families = sorted({f.family for f, p in cases if p in ("slow", "paper") and _reads(f.shared.get(p, {}), "dataset", "cifar10")})
    if families and cifar10_root(config.getoption("cifar10_root")) is None:
        lines.append(f"bnclaims: CIFAR-10 is not configured (--cifar10-root or {CIFAR10_ENV}): the slow/paper claims "
                     f"that ask for it ({', '.join(families)}) run on stand-in images, and the report counts them as stand-ins")
    return lines


def _reads(settings: Mapping[str, Any], key: str, value: Any) -> bool:
    """Whether ``settings`` (a profile's shared block, its overrides included) set ``key`` to ``value``."""
    return settings.get(key) == value or any(isinstance(v, Mapping) and _reads(v, key, value) for v in settings.values())


@pytest.fixture(scope="session")
def planner(request: pytest.FixtureRequest) -> Planner | None:
    """This process's planner under --plan (the model cache notes runs in it), else None."""
    return _state(request.config).planner


@pytest.fixture(scope="session")
def claims_registry(request: pytest.FixtureRequest) -> Registry:
    return _state(request.config).registry


@pytest.fixture(scope="session")
def profile(request: pytest.FixtureRequest) -> str:
    """The profile a claim runs at (fast / slow / paper), set by the plugin's parametrization."""
    if not hasattr(request, "param"):
        raise RuntimeError("the 'profile' fixture is only available to tests marked @pytest.mark.claim")
    return request.param


@pytest.fixture
def verdict(request: pytest.FixtureRequest, profile: str) -> Verdict:
    """The claim's recorder: measure(), add_figure(), note(), conclude()."""
    claim, item_profile, case = request.node.stash[CLAIM_KEY]
    registry = _state(request.config).registry
    v = Verdict(claim=claim, profile=item_profile, case=case, settings=registry.settings(claim, item_profile),
                tier=claim.tier(item_profile), plan=registry.seed_plan(claim, item_profile))
    request.node.stash[VERDICT_KEY] = v
    return v


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """A stochastic claim runs look by look (``Verdict.run``): its test body again on more seeds
    while a condition is undecided and its seed plan has another look. Under --plan, a look that
    stops at runs not yet made also lists the runs of the seeds up to the cap, as conditional."""
    v = pyfuncitem.stash.get(VERDICT_KEY, None)
    if v is None or v.plan is None:
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    state = _state(pyfuncitem.config)
    body = (lambda: pyfuncitem.obj(**args)) if state.planner is None else _planned_looks(pyfuncitem, v, args, state.planner)
    v.run(body)
    return True


def _planned_looks(item: pytest.Function, v: Verdict, args: dict, planner: Planner):
    """The test body under --plan: when a look stops at missing runs (:class:`Planned`), run it once
    more on every seed up to the cap with the planner noting runs as conditional (made only if the
    claim is still undecided after the looks before), then stop as the look did."""

    def body() -> None:
        try:
            item.obj(**args)
        except Planned:
            if len(v.seeds) < v.plan.design.cap:
                first, v.seeds = v.seeds, list(v.plan.sequence)
                with planner.conditional():
                    try:
                        item.obj(**args)
                    except Exception:  # noqa: BLE001 - a listing pass: whatever stops it, the look's own stop stands
                        pass
                    finally:
                        v.seeds = first
            raise

    return body


@pytest.fixture
def settings(verdict: Verdict) -> Settings:
    """The claim's settings for the active profile (from its YAML), typed by its family's claim
    settings class (harness.settings): ``settings.steps`` or ``settings["steps"]``."""
    return verdict.settings


@pytest.fixture
def thresholds(verdict: Verdict) -> Thresholds:
    """The claim's numeric thresholds (its YAML ``thresholds``), for its readout: ``thresholds["min_ratio"]``."""
    return verdict.claim.thresholds


def _error_text(call: pytest.CallInfo) -> str:
    if call.excinfo is None:
        return ""
    tb = call.excinfo.traceback
    where = f"{Path(str(tb[-1].path)).name}:{tb[-1].lineno + 1}: " if len(tb) else ""
    return where + call.excinfo.exconly()


def pytest_runtest_setup(item: pytest.Item) -> None:
    state = _state(item.config)
    if state.planner is not None and CLAIM_KEY in item.stash:
        state.planner.start_claim(item.callspec.id)


def _plan_report(item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo) -> pytest.TestReport:
    """Under --plan: ship the runs this test noted; a test stopped for missing runs is skipped (it
    waits for them), a verdict is not recorded (nothing counts as one), an error stays an error."""
    state = _state(item.config)
    waiting = 0
    if call.excinfo is not None and call.excinfo.errisinstance(Planned):
        waiting = call.excinfo.value.missing
        report.outcome, report.longrepr = "skipped", (str(item.path), item.location[1] or 0, f"Skipped: {call.excinfo.value}")
    elif call.excinfo is not None and call.excinfo.errisinstance(tuple(RAISES.values())):
        report.outcome, report.longrepr = "passed", None
    runs = state.planner.take()
    if runs or waiting:
        report.user_properties.append((PLAN_PROPERTY, json.dumps({"case": item.callspec.id, "runs": runs,
                                                                   "waiting": waiting})))
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if CLAIM_KEY not in item.stash:
        return report
    if _state(item.config).planning:
        return _plan_report(item, report, call)
    if report.when == "setup":
        item.stash[SETUP_TIME_KEY] = report.duration
        if report.passed:
            return report
    elif report.when != "call":
        return report
    v = item.stash.get(VERDICT_KEY, None)
    if (report.when == "call" and report.failed and _state(item.config).registry.smoke and v is not None
            and v.verdict is not None and call.excinfo is not None and call.excinfo.errisinstance(tuple(RAISES.values()))):
        report.outcome, report.longrepr = "passed", None  # --smoke: any verdict reached is a pass, only errors fail
    if report.when == "call" and report.passed and (v is None or v.verdict is None):
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid}: the claim test ended without calling verdict.conclude()"
    _check_the_reason(item, report, v)
    record = _build_record(item, report, call, v)
    report.user_properties.append((RECORD_PROPERTY, json.dumps(record)))
    return report


def _check_the_reason(item: pytest.Item, report: pytest.TestReport, v: Verdict | None) -> None:
    """A verdict as recorded in the expected-verdicts file, reached for another reason than the
    entry's ``why`` (another failed condition, a precondition, a run that could not be judged), is
    not the recorded result: the test fails, saying what changed."""
    state = _state(item.config)
    claim, profile, case = item.stash[CLAIM_KEY]
    expected = None if state.registry.smoke else state.registry.expected_for(claim.id, case, profile)
    if expected is None or expected.why is None or v is None or v.verdict != expected.verdict or not hasattr(report, "wasxfail"):
        return
    why = v.why()
    if why != list(expected.why):
        del report.wasxfail
        report.outcome = "failed"
        report.longrepr = (f"{claim.id} is {v.verdict} at profile '{profile}' as recorded, but for another reason: "
                           f"recorded why {list(expected.why)}, now {why}. {v.summary}")


def _build_record(item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo, v: Verdict | None) -> dict:
    import torch

    from harness.device import describe

    state = _state(item.config)
    claim, profile, case = item.stash[CLAIM_KEY]
    error = None
    if report.skipped and not hasattr(report, "wasxfail"):
        verdict_value = NOT_RUN
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        summary = reason.removeprefix("Skipped: ")
    elif v is not None and v.verdict is not None:
        verdict_value, summary = v.verdict, v.summary
    else:
        verdict_value, summary = ERROR, None
        error = _error_text(call) or str(report.longrepr)
    smoke = state.registry.smoke
    expected = None if smoke else state.registry.expected_for(claim.id, case, profile)
    expected_verdict = expected.verdict if expected else HOLDS
    tier = SMOKE_TIER if smoke else claim.tier(profile)
    if v is not None and tier not in ("stand-in", SMOKE_TIER) and v.dataset.startswith(STAND_IN_IMAGES):
        tier = "stand-in"  # the profile asked for CIFAR-10 and other images stood in
        v.note(f"{v.dataset} images stood in for CIFAR-10 (none was configured), so this run counts as a stand-in.")
    setup_time = item.stash.get(SETUP_TIME_KEY, 0.0)
    deviation = claim.deviations.get(profile)
    if smoke:
        deviation = ("--smoke: ran at the claims file's smoke settings (tiny budgets, the same code), not the profile's"
                     + (f"; the profile itself departs from the paper: {deviation}" if deviation else ""))
    return {
        "nodeid": item.nodeid,
        "claim_id": claim.id,
        "case": case,
        "paper": claim.paper,
        "section": claim.section,
        "source": claim.source,
        "statement": claim.statement,
        "paper_value": claim.paper_value,
        "threshold": claim.threshold,
        "thresholds": claim.thresholds.as_record(),
        "figure": claim.figure,
        "deviation": deviation,
        "profile": profile,
        "tier": tier,
        "smoke": smoke,
        "seed_exempt": claim.seed_exempt,
        "seed_offset": state.registry.seed_offset,
        "settings": to_plain(v.settings if v else state.registry.settings(claim, profile)),
        "settings_hash": state.registry.settings_hash(claim, profile),
        "order": list(state.registry.claims).index(claim.id),  # the catalogue's (the papers') order
        "verdict": verdict_value,
        "tentative": v.tentative if v else None,
        "why": v.why() if v else [],
        "summary": summary,
        "expected": expected_verdict,
        "cause": expected.cause if expected else None,
        "expected_reason": expected.reason if expected else None,
        "expected_measured": expected.measured if expected else None,
        "as_expected": None if verdict_value == NOT_RUN or smoke else verdict_value == expected_verdict,
        "measured": v.measured if v else {},
        "figures": v.figures if v else [],
        "notes": v.notes if v else [],
        "dataset": v.dataset if v else "–",
        "seeds": v.seeds if v else [],
        "seed_plan": v.seed_record() if v else None,
        "device": describe(),
        "torch_version": torch.__version__,
        "wall_time_s": setup_time + (report.duration if report.when == "call" else 0.0),
        "error": error,
    }
