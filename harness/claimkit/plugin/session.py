"""A claims run's state in the controlling process: its records, the report store and history
it writes, the plan, the signals it received, and the terminal summary."""


from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from harness.claimkit.interruptions import Interruptions
from harness.claimkit.plan import Planner
from harness.claimkit.plugin.options import MUTATION_KEY, mutation_label, report_dir
from harness.claimkit.registry import PAPERS, Registry
from harness.claimkit.report.records import ReportError, suite_version
from harness.claimkit.verdicts import Verdict


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
        self.code_version = None if self.is_worker else suite_version(config.rootpath, _code_packages(config))
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
            "title": self.config.hook.pytest_claimkit_title() or None,
            "papers": {f.paper: PAPERS.get(f.paper, f.paper) for f in self.registry.files},
            **environment(self.config),
            "python_version": platform.python_version(),
            "host": socket.gethostname(),
            "workers": int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")) or self.config.getoption("numprocesses", None) or 1,
        }

    def write(self, *, finished: bool, interrupted: bool = False) -> tuple[Path, Path] | None:
        """Merge this run's records into the report store (claims.json) and, at the end, render
        the whole store as HTML. A failed write warns once; the run goes on."""
        from harness.claimkit.report import update_store, write_html

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
        from harness.claimkit.report.records import stale_reasons

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
                made = self.config.hook.pytest_claimkit_execute_plan(config=self.config, planner=self.planner)  # each process its own claims' runs
                self.made = made if made is not None else self.planner.execute()
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
        """Append this run's records to the verdict history beside the report (harness.claimkit.report.history).
        A smoke run adds none: its verdicts test code paths at tiny budgets and count for nothing."""
        if self.registry.smoke:
            return
        from harness.claimkit.report.history import append_run

        found = provenance(self.config.rootpath)
        for more in self.config.hook.pytest_claimkit_provenance(provenance=dict(found)):
            found.update(more or {})
        run = {**self.run_info(finished=True), **found,
               "code_version": self.code_version}
        _, warning = append_run(self.report_dir, self.records.values(), run)
        if warning:
            _print_warning(self.config, f"verdict history: {warning}")

    def write_plan(self) -> None:
        from harness.claimkit.plan import merge_runs, summarize, summary_lines, write_plan

        tflops = self.config.getoption("plan_tflops")
        device = environment(self.config).get("device", "?")
        if tflops:  # the given rate: the suite measures nothing
            rate, source = tflops * 1e12, "--plan-tflops"
        else:
            rate, source, device = (self.config.hook.pytest_claimkit_plan_rate(config=self.config)
                                    or (None, "no rate: the suite prices no runs", device))
        plan = summarize(merge_runs(self.planned), self.waiting, rate, source, device)
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


def _code_packages(config: pytest.Config) -> list[str]:
    """The folders of the suite's code (``pytest_claimkit_code_packages``), else the claims folder's."""
    named = [p for packages in config.hook.pytest_claimkit_code_packages() for p in packages]
    return named or [Path(config.getoption("claims_dir") or Path(config.rootpath) / "claims").name]


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


def _state(config: pytest.Config) -> ClaimsSession:
    return config.stash[STATE_KEY]


def environment(config: pytest.Config) -> dict[str, Any]:
    """What the suite says its measurements ran on (``pytest_claimkit_environment``), merged."""
    out: dict[str, Any] = {}
    for part in config.hook.pytest_claimkit_environment():
        out.update(part or {})
    return out



def provenance(root: Path | str) -> dict:
    """What claims.json's run description lacks for the history: whether tracked files differ from
    the commit and the CPU (a suite adds more: ``pytest_claimkit_provenance``)."""

    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True,
                             text=True, timeout=30)
        dirty = bool(out.stdout.strip()) if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        dirty = None
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"dirty": dirty, "cpu": model, "threads": None}
