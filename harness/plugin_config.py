"""The claims plugin's command line and the configuration it checks before any claim runs.

- its options (``pytest_addoption``), known to pytest wherever it starts: the plugin is registered
  through the ``pytest11`` entry point of an installed bnclaims, not only by the root conftest;
- the rootdir repair (``pytest_load_initial_conftests``): pytest picks its rootdir and config file
  before it loads installed plugins, so the folder after ``--report-dir`` (or ``--cache-dir``,
  ``--cifar10-root``, ``--claims-dir``) written after a space counts there as a test path, and an
  existing folder outside the repository becomes the rootdir: no ``pyproject.toml``, no
  ``testpaths``, no claims. Once the options are known the plugin works the rootdir out again from
  the real test paths and, when pytest's differs, adopts it (with its config file, ``addopts`` and
  ``pythonpath``) before any conftest loads;
- the configuration checks: each problem one line naming the option (:class:`pytest.UsageError`);
- mutation plugins: a ``-p`` plugin that changes what is measured (``harness.bn_identity``, or one
  that does not say it changes nothing) marks its run, and the run's records never share a report
  or a model-cache key with real ones;
- the report folder, the seed offset and the executor settings, exported to worker processes.
"""

from __future__ import annotations

import copy
import importlib.metadata
import os
from pathlib import Path

import pytest

from harness import checks
from harness.cache import CACHE_ENV, MUTATION_ENV, CacheWarning, default_cache_dir
from harness.concurrent import EXECUTORS
from harness.data import CIFAR10_ENV, cifar10_root
from harness.evidence import MIN_SEEDS
from harness.registry import MAX_SEED_OFFSET, SEED_STRIDE

SEED_CAP_ENV = "BNCLAIMS_SEED_CAP"
SEED_OFFSET_ENV = "BNCLAIMS_SEED_OFFSET"
REPORT_ENV = "BNCLAIMS_REPORT_DIR"
# the options that name a folder: (dest, the option, its environment variable)
PATH_OPTIONS = (("report_dir", "--report-dir", REPORT_ENV), ("cache_dir", "--cache-dir", CACHE_ENV),
                ("cifar10_root", "--cifar10-root", CIFAR10_ENV), ("claims_dir", "--claims-dir", None))
PLUGIN = "harness.pytest_plugin"  # the claims plugin's module and its pytest11 entry point's name
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
        "--cifar10-root", default=None,
        help="folder holding cifar-10-batches-py/ (env BNCLAIMS_CIFAR10); claims that need CIFAR-10 skip without it",
    )
    group.addoption(
        "--cache-dir", default=None,
        help="trained-model cache (default: <rootdir>/fixtures/cache; env BNCLAIMS_CACHE)",
    )
    group.addoption(
        "--judge-only", action="store_true", default=False,
        help="judge from the model cache only: a claim whose trained runs are missing fails, naming them, instead of training",
    )
    group.addoption(
        "--fresh-report", action="store_true", default=False,
        help="start claims.json afresh instead of merging this run's records into it",
    )
    group.addoption(
        "--executor", default=None, choices=EXECUTORS,
        help="where side-by-side runs train: pool (default: one process per core; on a GPU in process or "
             "--runs-per-gpu), local (in this process, one after another), ray (Ray tasks on RAY_ADDRESS or a "
             "local Ray instance; pip install -e '.[ray]'); env BNCLAIMS_EXECUTOR. The records are the same bits",
    )
    group.addoption(
        "--runs-per-gpu", default=None,
        help="runs trained side by side on one GPU by the pool or Ray executor (default 1; env BNCLAIMS_RUNS_PER_GPU)",
    )
    group.addoption(
        "--plan", action="store_true", default=False,
        help="train nothing: list every run the selected claims need (stored or to make), with FLOP and time "
             "estimates, in reports/plan.json and a summary; claims whose runs are all stored are judged as usual",
    )
    group.addoption(
        "--plan-execute", action="store_true", default=False,
        help="with --plan: then make the missing runs the plan has recipes for, side by side on the executor, into "
             "the model cache (one stage of python -m harness.nightly)",
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
    if not any(getattr(namespace, dest, None) for dest, _, _ in PATH_OPTIONS):
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


def configure_executor(config: pytest.Config) -> None:
    """--executor / --runs-per-gpu (else their environment variables), checked and exported."""
    from harness.concurrent import EXECUTOR_ENV, RUNS_PER_GPU_ENV, executor, runs_per_gpu

    for option, env in (("executor", EXECUTOR_ENV), ("runs_per_gpu", RUNS_PER_GPU_ENV)):
        if config.getoption(option) is not None:
            export(config, env, str(config.getoption(option)))
    try:
        runs_per_gpu()
        kind = executor()
    except ValueError as err:
        raise pytest.UsageError(str(err).replace(RUNS_PER_GPU_ENV, "--runs-per-gpu / " + RUNS_PER_GPU_ENV)) from None
    if kind == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise pytest.UsageError("--executor ray needs Ray, an optional extra: pip install -e '.[ray]'")


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
    generator it uses accepts (harness.registry)."""
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


def check_entry_point(config: pytest.Config) -> None:
    """A warning when the installed bnclaims declares no pytest11 entry point (installed before it
    had one, or a stale ``bnclaims.egg-info`` first on the path): the plugin then loads through the
    root conftest only, and a folder after --report-dir can again be taken for a test path."""
    if PLUGIN not in _installed_plugins():
        config.issue_config_time_warning(UserWarning(
            f"bnclaims is installed without its pytest plugin entry point ({PLUGIN}): run pip install -e . again, "
            "else a folder written after --report-dir (or --cache-dir, …) may be taken for a test path"), stacklevel=2)


def mutation_label(config: pytest.Config) -> str | None:
    """This run's mutation plugins as the report names them (None: a real run)."""
    mutation = config.stash.get(MUTATION_KEY, [])
    return ", ".join(sorted(m["plugin"] for m in mutation)) or None


def configure_mutation(config: pytest.Config) -> list[dict]:
    """Find this run's mutation plugins, keep them for the report and export them, so that the
    model cache gives their runs keys of their own in every process (harness.cache.environment)."""
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


def check_path_options(config: pytest.Config) -> None:
    """An option given an empty path (``--cifar10-root ""``) is an error, not the option left out."""
    for dest, option, env in PATH_OPTIONS:
        if config.getoption(dest) is not None and not str(config.getoption(dest)).strip():
            unset = f" (or {env})" if env else ""
            raise pytest.UsageError(f"{option}: an empty path; give a folder, or leave the option{unset} out for its default")


def check_configuration(config: pytest.Config) -> None:
    """Everything a claim run needs that can be wrong before it starts; one line per problem."""
    root = Path(config.rootpath)
    try:
        checks.gpus(os.environ)
        if config.getoption("collectonly"):
            return
        folder = report_dir(config)
        checks.report_dir(folder, f"--report-dir (env {REPORT_ENV})")
        _check_report_store(config, folder)
        cache = default_cache_dir(config.getoption("cache_dir"), root)
        if not checks.cache_dir(cache, f"--cache-dir (env {CACHE_ENV})"):
            # issued as a pytest warning: this runs before the terminal exists, and the warnings summary shows it
            config.issue_config_time_warning(CacheWarning(
                f"the model cache {cache} is read-only: stored runs are served, a missing one stops its claim with an error"),
                stacklevel=2)
        checks.cifar10(cifar10_root(config.getoption("cifar10_root")), f"--cifar10-root (env {CIFAR10_ENV})")
    except checks.ConfigError as err:
        raise pytest.UsageError(str(err)) from None


def _check_report_store(config: pytest.Config, folder: Path) -> None:
    """The report folder's claims.json holds runs of this run's kind (real, or under the same
    mutation plugins): the two never share a store, so a mixed run stops here, before any claim."""
    from harness.report.records import ReportError, check_store_kind, load_records

    path = folder / "claims.json"
    try:
        _, runs = load_records(path) if path.is_file() else ([], [])
    except ReportError:  # unreadable: the run sets it aside and starts a new report
        return
    try:
        check_store_kind(path, runs, mutation_label(config), f"--report-dir (env {REPORT_ENV})")
    except ReportError as err:
        raise checks.ConfigError(str(err)) from None
