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
  make, with FLOP and time estimates) in ``reports/plan.json`` and a summary (harness.claimkit.plan),
- shifts every seed by ``--seed-offset`` (env ``BNCLAIMS_SEED_OFFSET``), so a run can draw fresh
  randomness,
- ships one record per test to the controlling process (through ``report.user_properties``, so
  pytest-xdist workers need no shared files) and merges it into ``reports/claims.json`` after
  every claim, and renders ``reports/claims.html`` at the end, also after Ctrl-C or SIGTERM;
- checks the configuration (the report and claims folders here, the suite's own through its
  hooks) before any claim runs, each problem one line naming the option
  (harness.claimkit.plugin.options, which also holds the options);
- records every signal that stops the run (harness.claimkit.interruptions), and marks the records of a
  run under a plugin that changes what is measured, which go to a report of their own.

What a suite adds (its devices, data, options, checks, the stamps on its records) comes through
the hooks of :mod:`harness.claimkit.plugin.hookspec`; the batch-norm suite's are in
``harness.bn_plugin``. The plugin is split by responsibility: options and the rootdir repair
(``options``), the session's state, report, history and plan (``session``), one test's record and
outcome (``outcomes``), and here parametrization, collection and the fixtures.

Installed, it is a registered pytest plugin (the ``pytest11`` entry point): its options are known
wherever pytest starts. In a project without a claims folder it unregisters itself.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from harness.claimkit import checks
from harness.claimkit.plan import Planner
from harness.claimkit.plugin import hookspec
from harness.claimkit.plugin.options import (check_configuration, check_entry_point, check_path_options,  # noqa: F401
                                             configure_mutation, pytest_addoption, pytest_load_initial_conftests,
                                             report_dir, seed_cap, seed_offset)
from harness.claimkit.plugin.outcomes import RAISES, _planned_stops, pytest_runtest_makereport, pytest_runtest_setup  # noqa: F401
from harness.claimkit.plugin.session import CLAIM_KEY, STATE_KEY, VERDICT_KEY, ClaimsSession, _state
from harness.claimkit.registry import ID_PATTERN, PROFILES, SMOKED, Registry, RegistryError, Thresholds
from harness.claimkit.settings import Settings
from harness.claimkit.verdicts import Verdict


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """The hooks a suite implements to add its devices, data, options and checks (``hookspec``)."""
    pluginmanager.add_hookspecs(hookspec)


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
    from harness.claimkit.report.history import NewerHistory, check_schema

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
        ("fast", "the quick profile (a CPU, minutes; its claims file says what it runs at)"),
        ("slow", "the nightly profile at the papers' scale"),
        ("paper", "the paper's full protocol (opt-in, hours)"),
        ("claim(id, case=None)", "the claim ID (claims/*.yaml) a test checks; case: which half of it"),
    ):
        config.addinivalue_line("markers", f"{name}: {text}")
    check_path_options(config)
    try:
        if config.getoption("claims_dir"):
            checks.claims_dir(claims_dir, "--claims-dir")
    except checks.ConfigError as err:
        raise pytest.UsageError(str(err)) from None
    controller = not hasattr(config, "workerinput")
    config.hook.pytest_claimkit_configure(config=config, controller=controller)
    configure_mutation(config)
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
            config.hook.pytest_claimkit_check_registry(config=config, registry=registry, claims_dir=claims_dir)
    except RegistryError as err:
        raise pytest.UsageError(f"claims registry: {err}") from None
    _check_keyword_ids(config, registry)
    state = ClaimsSession(config, registry)
    config.stash[STATE_KEY] = state
    config.pluginmanager.register(state, "bnclaims-session")
    if controller and state.interrupts.install():  # Ctrl-C and SIGTERM (timeout, a batch scheduler), however many
        config.add_cleanup(state.interrupts.uninstall)


def _check_keyword_ids(config: pytest.Config, registry: Registry) -> None:
    """``-k B-RMT-KAPX`` would silently select nothing: name the unknown claim IDs instead."""
    tokens = re.findall(r"[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+", config.getoption("keyword") or "")
    unknown = [t for t in tokens if ID_PATTERN.match(t) and t not in registry.claims
               and not any(cid.startswith(t) for cid in registry.claims)]
    if registry.claims and unknown:
        raise pytest.UsageError(
            f"-k names unknown claim ID(s) {', '.join(unknown)}; known IDs: {', '.join(sorted(registry.claims))}"
        )


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
    """What this run draws and where its results go, above the test list; then the suite's lines
    (what it computes on, where its inputs are)."""
    registry = _state(config).registry
    return [f"claims: seed offset {registry.seed_offset}"
            f"{f', at most {registry.seed_cap} seeds per claim (--seed-cap)' if registry.seed_cap else ''}"
            f"{', SMOKE run (tiny budgets, no verdicts)' if config.getoption('smoke') else ''}, report {report_dir(config)}",
            *(line for lines in config.hook.pytest_claimkit_report_header(config=config) for line in lines)]


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> list[str]:
    """Say why slow / paper cases did not run when the user asked for some (-m or node ids); then
    the suite's notes on the cases selected (e.g. which data stands in)."""
    state, lines = _state(config), []
    markexpr = config.getoption("markexpr")
    # said when the selection did not name a profile itself (-m "not benchmark", node ids), not for -m fast
    asked = (markexpr and not named_profiles(markexpr)) or any("::" in str(a) for a in config.args)
    if state.deselected_profiles and asked:
        shown = ", ".join(state.deselected_profiles[:3]) + (" …" if len(state.deselected_profiles) > 3 else "")
        lines.append(f"claims: {len(state.deselected_profiles)} slow/paper claim case(s) not run ({shown}): they run "
                     "only when -m names their profile, e.g. -m slow or -m paper")
    files = {f.path: f for f in state.registry.files}
    cases = [(files[i.stash[CLAIM_KEY][0].file], i.stash[CLAIM_KEY][1]) for i in items if CLAIM_KEY in i.stash]
    lines += [line for notes in config.hook.pytest_claimkit_collection_notes(config=config, cases=cases) for line in notes]
    return lines


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
        except _planned_stops(item.config):
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
