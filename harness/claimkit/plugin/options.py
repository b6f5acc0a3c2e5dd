"""The claims plugin's command line and the configuration it checks before any claim runs.

- its options (``pytest_addoption``), known to pytest wherever it starts: the plugin is registered
  through the ``pytest11`` entry point of an installed bnclaims, not only by the root conftest;
- the rootdir repair (``pytest_load_initial_conftests``): pytest picks its rootdir and config file
  before it loads installed plugins, so the folder after ``--report-dir`` (or ``--claims-dir``, or a
  suite's folder option: ``pytest_claimkit_path_options``) written after a space counts there as a test path, and an
  existing folder outside the repository becomes the rootdir: no ``pyproject.toml``, no
  ``testpaths``, no claims. Once the options are known the plugin works the rootdir out again from
  the real test paths and, when pytest's differs, adopts it (with its config file, ``addopts`` and
  ``pythonpath``) before any conftest loads;
- the configuration checks: each problem one line naming the option (:class:`pytest.UsageError`);
- mutation plugins: a ``-p`` plugin that changes what is measured (``harness.bn_identity``, or one
  that does not say it changes nothing) marks its run, and the run's records never share a report
  with real ones (the mutation is exported as ``BNCLAIMS_MUTATION``, so a suite's store keys its runs apart);
- the report folder and the seed offset, exported to worker processes.
"""

from __future__ import annotations

import copy
import importlib.metadata
import os
from pathlib import Path

import pytest

from harness.claimkit import checks
from harness.claimkit.evidence import MIN_SEEDS
from harness.claimkit.registry import MAX_SEED_OFFSET, SEED_STRIDE

SEED_CAP_ENV = "BNCLAIMS_SEED_CAP"
SEED_OFFSET_ENV = "BNCLAIMS_SEED_OFFSET"
REPORT_ENV = "BNCLAIMS_REPORT_DIR"
MUTATION_ENV = "BNCLAIMS_MUTATION"  # this run's mutation plugins, exported so stores of results key their runs apart
# the plugin's options that name a folder: (dest, the option, its environment variable); a suite adds
# its own through the pytest_claimkit_path_options hook
PATH_OPTIONS = (("report_dir", "--report-dir", REPORT_ENV), ("claims_dir", "--claims-dir", None))
PLUGIN = "harness.claimkit.plugin"  # the claims plugin's module and its pytest11 entry point's name
MUTATION_ATTR = "BNCLAIMS_MUTATION"  # a plugin module's word on what it changes in the measurements (None: nothing)
MUTATION_KEY = pytest.StashKey[list]()  # this run's mutation plugins: [{"plugin": name, "change": sentence}]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bnclaims", "claims suite")
    group.addoption("--claims-dir", default=None, help="directory of claims YAML files (default: <rootdir>/claims)")
    group.addoption(
        "--report-dir", default=None,
        help=f"where claims.json and claims.html are written (default: <rootdir>/reports, env {REPORT_ENV}; the smoke/ "
             "subfolder under --smoke, the mutation/ subfolder under a plugin that changes what is measured)",
    )
    group.addoption(
        "--fresh-report", action="store_true", default=False,
        help="start claims.json afresh instead of merging this run's records into it",
    )
    group.addoption(
        "--plan", action="store_true", default=False,
        help="train nothing: list every run the selected claims need (stored or to make), with FLOP and time "
             "estimates, in reports/plan.json and a summary; claims whose runs are all stored are judged as usual",
    )
    group.addoption(
        "--plan-execute", action="store_true", default=False,
        help="with --plan: then make the missing runs the plan has recipes for, side by side on the executor, into "
             "the suite's store, the model cache (one stage of python -m harness.nightly)",
    )
    group.addoption(
        "--judge-only", action="store_true", default=False,
        help="judge from the store (the model cache) only: a claim whose runs are missing fails, naming them, "
             "instead of making them (the judging pass of python -m harness.nightly)",
    )
    group.addoption(
        "--plan-tflops", type=float, default=None,
        help="with --plan: price runs at this sustained rate (TFLOP/s) instead of the one measured on this device",
    )
    group.addoption(
        "--smoke", action="store_true", default=False,
        help="run every slow and paper claim end to end at its file's tiny smoke settings (the same code; "
             "records never count as verdicts; report in reports/smoke/)",
    )
    group.addoption(
        "--seed-offset", default=None,
        help=f"shift every seed of every claim by K × {SEED_STRIDE} to re-run on fresh randomness "
             f"(a whole number from 0 to {MAX_SEED_OFFSET}, default 0; env {SEED_OFFSET_ENV})",
    )
    group.addoption(
        "--seed-cap", default=None,
        help=f"decide every stochastic claim on at most N seeds: its looks beyond N are dropped and the 5%% error "
             f"rate is spent over the looks left (N ≥ 3; default: each claims file's looks; env {SEED_CAP_ENV}). "
             f"Quicker, and verdicts may then differ from the expected ones, recorded at the full looks",
    )


# --- the rootdir ----------------------------------------------------------------------------------

@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """Before any conftest loads: when a folder given to one of the plugin's options made pytest
    choose another rootdir than the test paths do, adopt the test paths' (see the module's doc)."""
    namespace = early_config.known_args_namespace
    if not any(getattr(namespace, dest, None) for dest, _, _ in path_options(early_config)):
        return
    found = _setup_from_test_paths(early_config)
    if found is not None and (found[0], found[1]) != (early_config.rootpath, early_config.inipath):
        _adopt_setup(early_config, parser, args, *found)


def _setup_from_test_paths(config: pytest.Config) -> tuple | None:
    """(rootdir, config file, its settings) as pytest determines them from the test paths alone,
    now that the plugin's options (and so their folders) are known; None if this pytest's
    internals differ from the ones the repair was written for."""
    try:
        from _pytest.config.findpaths import determine_setup

        namespace = config.known_args_namespace
        rootpath, inipath, inicfg, _ = determine_setup(
            inifile=namespace.inifilename, override_ini=namespace.override_ini, args=namespace.file_or_dir,
            rootdir_cmd_arg=namespace.rootdir or None, invocation_dir=config.invocation_params.dir)
    except (ImportError, TypeError, ValueError, AttributeError):
        return None
    return rootpath, inipath, inicfg


def _adopt_setup(config: pytest.Config, parser: pytest.Parser, args: list[str], rootpath: Path, inipath: Path | None,
                 inicfg) -> None:
    """Make pytest use ``rootpath`` and ``inipath`` as if it had found them itself: its settings,
    its ``addopts`` (in place of the first config file's), its ``pythonpath`` and confcutdir."""
    if not all(hasattr(config, a) for a in ("_rootpath", "_inipath", "_inicfg", "_inicache", "_configure_python_path")):
        raise pytest.UsageError(
            f"pytest took a folder given to a bnclaims option for a test path and chose rootdir {config.rootpath}; "
            f"write the option with '=' (--report-dir=DIR) or name the test paths (claims/)")
    stale_addopts = list(config.getini("addopts"))
    config._rootpath, config._inipath, config._inicfg = rootpath, inipath, inicfg
    config._inicache.clear()
    parser.extra_info.update(rootdir=str(rootpath), inifile=str(inipath))
    if stale_addopts and args[: len(stale_addopts)] == stale_addopts:
        del args[: len(stale_addopts)]
    addopts = list(config.getini("addopts"))
    args[:0] = addopts
    config.pluginmanager.consider_preparse(addopts, exclude_only=False)
    namespace = parser.parse_known_args(args, namespace=copy.copy(config.option))
    if namespace.confcutdir is None:
        namespace.confcutdir = str(inipath.parent if inipath is not None else rootpath)
    config.known_args_namespace = namespace
    config._configure_python_path()


# --- settings exported to worker processes --------------------------------------------------------

def export(config: pytest.Config, name: str, value: str) -> None:
    """Set ``name`` for this process and the suite's worker processes (xdist, pool, Ray), restored at the end."""
    previous = os.environ.get(name)
    os.environ[name] = value
    config.add_cleanup(lambda: os.environ.pop(name) if previous is None else os.environ.__setitem__(name, previous))


def seed_cap(config: pytest.Config) -> int | None:
    """--seed-cap, else BNCLAIMS_SEED_CAP, else None (each claims file's looks)."""
    option = config.getoption("seed_cap")
    raw, where = (option, "--seed-cap") if option is not None else (os.environ.get(SEED_CAP_ENV), SEED_CAP_ENV)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < MIN_SEEDS:
        raise pytest.UsageError(f"{where}: expected a whole number of seeds ≥ {MIN_SEEDS}, got {raw!r}")
    return value


def seed_offset(config: pytest.Config) -> int:
    """--seed-offset, else BNCLAIMS_SEED_OFFSET, else 0; exported to the environment so the
    suite's worker processes (xdist, the session pool) shift their seeds alike. At most
    MAX_SEED_OFFSET, so that every seed the suite derives stays within what every seeded
    generator it uses accepts (harness.claimkit.registry)."""
    option = config.getoption("seed_offset")
    raw, where = (option, "--seed-offset") if option is not None else (os.environ.get(SEED_OFFSET_ENV, "0"), SEED_OFFSET_ENV)
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_SEED_OFFSET:
        raise pytest.UsageError(f"{where}: expected a whole number from 0 to {MAX_SEED_OFFSET}, got {raw!r}")
    export(config, SEED_OFFSET_ENV, str(value))
    return value


# --- mutation plugins -----------------------------------------------------------------------------

def _installed_plugins() -> set[str]:
    """The names and modules of the pytest plugins installed distributions declare (pytest11)."""
    entries = importlib.metadata.entry_points(group="pytest11")
    return {e.name for e in entries} | {e.value.split(":")[0] for e in entries}


def mutation_plugins(config: pytest.Config) -> list[dict]:
    """The plugins of this run (``-p NAME``, ``PYTEST_PLUGINS``) that change what is measured: a
    module whose ``BNCLAIMS_MUTATION`` says what it changes, and one that does not say (any code
    loaded into a run can patch what it measures). pytest's own plugins, installed ones (pytest11
    entry points) and a module that sets ``BNCLAIMS_MUTATION = None`` change nothing."""
    specs = [*(config.getoption("plugins", None) or []), *filter(None, os.environ.get("PYTEST_PLUGINS", "").split(","))]
    installed, out = _installed_plugins(), []
    for name in dict.fromkeys(s.strip() for s in specs):
        if not name or name.startswith("no:") or name in installed:
            continue
        module = config.pluginmanager.get_plugin(name)
        if getattr(module, "__name__", "").startswith("_pytest.") or getattr(module, "__name__", None) in installed:
            continue
        change = getattr(module, MUTATION_ATTR, "it does not declare BNCLAIMS_MUTATION, so it may change what is measured")
        if change is not None:
            out.append({"plugin": name, "change": str(change)})
    return out


def check_entry_point(config: pytest.Config, plugin: str = PLUGIN) -> None:
    """A warning when the installed project declares no pytest11 entry point for ``plugin`` (installed
    before it had one, or a stale ``*.egg-info`` first on the path): the plugin then loads through the
    root conftest only, and a folder after --report-dir can again be taken for a test path."""
    if plugin not in _installed_plugins():
        config.issue_config_time_warning(UserWarning(
            f"the claims suite is installed without the pytest plugin entry point {plugin}: run pip install -e . again, "
            "else a folder written after --report-dir (or --cache-dir, …) may be taken for a test path"), stacklevel=2)


def mutation_label(config: pytest.Config) -> str | None:
    """This run's mutation plugins as the report names them (None: a real run)."""
    mutation = config.stash.get(MUTATION_KEY, [])
    return ", ".join(sorted(m["plugin"] for m in mutation)) or None


def configure_mutation(config: pytest.Config) -> list[dict]:
    """Find this run's mutation plugins, keep them for the report and export them, so that the
    suite's stores of results (the batch-norm suite's model cache) key their runs apart in every process."""
    mutation = config.stash[MUTATION_KEY] = mutation_plugins(config)
    if mutation:
        export(config, MUTATION_ENV, mutation_label(config))
    return mutation


# --- folders --------------------------------------------------------------------------------------

def report_dir(config: pytest.Config) -> Path:
    """--report-dir as given; else BNCLAIMS_REPORT_DIR, else <rootdir>/reports, in its ``smoke/``
    subfolder under --smoke and its ``mutation/`` subfolder under a mutation plugin, so that
    neither ever mixes with the verdicts."""
    if config.getoption("report_dir"):
        return Path(config.getoption("report_dir"))
    folder = Path(os.environ.get(REPORT_ENV) or Path(config.rootpath) / "reports")
    if config.getoption("smoke"):
        folder = folder / "smoke"
    return folder / "mutation" if config.stash.get(MUTATION_KEY, []) else folder


def path_options(config: pytest.Config) -> list[tuple[str, str, str | None]]:
    """The options that name a folder: the plugin's, then each suite's (``pytest_claimkit_path_options``)."""
    return [*PATH_OPTIONS, *(o for options in config.hook.pytest_claimkit_path_options() for o in options)]


def check_path_options(config: pytest.Config) -> None:
    """An option given an empty path (``--cifar10-root ""``) is an error, not the option left out."""
    for dest, option, env in path_options(config):
        if config.getoption(dest) is not None and not str(config.getoption(dest)).strip():
            unset = f" (or {env})" if env else ""
            raise pytest.UsageError(f"{option}: an empty path; give a folder, or leave the option{unset} out for its default")


def check_configuration(config: pytest.Config) -> None:
    """The report folder and its store, before any claim runs; one line per problem (the suite
    checks its own settings in ``pytest_claimkit_configure``)."""
    if config.getoption("collectonly"):
        return
    try:
        folder = report_dir(config)
        checks.report_dir(folder, f"--report-dir (env {REPORT_ENV})")
        _check_report_store(config, folder)
    except checks.ConfigError as err:
        raise pytest.UsageError(str(err)) from None


def _check_report_store(config: pytest.Config, folder: Path) -> None:
    """The report folder's claims.json holds runs of this run's kind (real, or under the same
    mutation plugins): the two never share a store, so a mixed run stops here, before any claim."""
    from harness.claimkit.report.records import ReportError, check_store_kind, load_records

    path = folder / "claims.json"
    try:
        _, runs = load_records(path) if path.is_file() else ([], [])
    except ReportError:  # unreadable: the run sets it aside and starts a new report
        return
    try:
        check_store_kind(path, runs, mutation_label(config), f"--report-dir (env {REPORT_ENV})")
    except ReportError as err:
        raise checks.ConfigError(str(err)) from None
