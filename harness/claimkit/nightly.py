"""Make everything the selected claims need, then judge them: a suite's nightly driver.

Each *stage* is a pytest run with ``--plan --plan-execute``: it lists the runs the selected claims
ask for and makes the missing ones (side by side, on whatever pool the suite's
``pytest_claimkit_execute_plan`` hook gives) into the suite's store
(:mod:`harness.claimkit.store`), so a cluster gets every known run at once instead of one claim's
at a time. What a stage made lets claims ask for their next runs (a full run at the LR a search
found, the next step of a search), so stages repeat until one has nothing left to make. Then a
pytest run with ``--judge-only`` judges every claim from the store and writes the report: a run
the stages did not make stops its claim with an error naming it instead of being made while
judging. A suite gives this driver its own entry point and help text (``main(argv, usage, prog)``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

MAX_STAGES = 10
OWN = ("--plan", "--plan-execute", "--judge-only")  # what the driver adds to the pytest runs itself


def help_text(prog: str) -> str:
    return f"""usage: {prog} [PYTEST ARGS]

Make everything the selected claims need, in stages, then judge every claim from the store.
Each stage is `pytest ARGS --plan --plan-execute`: it lists the runs the claims ask for and makes
the missing ones, up to {MAX_STAGES} stages, until one has nothing left to make. Then
`pytest ARGS --judge-only` judges every claim and writes the report. The driver adds --plan,
--plan-execute and --judge-only itself.
"""


def _pytest(args: list[str]) -> int:
    return subprocess.call([sys.executable, "-m", "pytest", *args])


def _made_in_stage(plan_path: Path) -> set[str] | None:
    """The store keys of the runs a stage's plan listed as missing and makeable; None when the
    stage wrote no plan."""
    try:
        plan = json.loads(plan_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {r["key"] for r in plan.get("runs", []) if r.get("makeable") and not r.get("stored")}


def main(argv: list[str] | None = None, usage: str | None = None, prog: str = "python -m harness.claimkit.nightly",
         store: str = "store") -> int:
    """Run the stages, then the judging pass, with ``argv`` (pytest's arguments); ``usage`` is the
    suite's help text (default: :func:`help_text` of ``prog``), ``store`` what the suite calls its store."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        print(usage or help_text(prog), end="")
        return 0
    if any(a in OWN for a in args):
        print(f"error: {prog} adds --plan, --plan-execute and --judge-only itself", file=sys.stderr)
        return 2
    made: list[set[str]] = []
    with tempfile.TemporaryDirectory(prefix="claimkit-nightly-") as tmp:
        plan_path = Path(tmp) / "plan.json"
        for stage in range(1, MAX_STAGES + 1):
            print(f"== nightly stage {stage}: plan and make the runs the claims ask for", flush=True)
            plan_path.unlink(missing_ok=True)
            code = _pytest([*args, "--plan", "--plan-execute", f"--report-dir={tmp}", "-q"])
            if code != 0:
                print(f"error: stage {stage} failed (pytest exit {code}); nothing is judged", file=sys.stderr)
                return code
            keys = _made_in_stage(plan_path)
            if keys is None:
                print(f"error: stage {stage} wrote no plan: pytest selected no claim (run from the repository root, or "
                      "name the claims folder); nothing is judged", file=sys.stderr)
                return 1
            print(f"== stage {stage}: made {len(keys)} run(s)", flush=True)
            if not keys:
                break
            if made and keys == made[-1]:
                print(f"error: stage {stage} was asked to make the same {len(keys)} run(s) as the stage before: they are "
                      "not being stored (see the runs in the plan)", file=sys.stderr)
                return 1
            made.append(keys)
        else:
            print(f"error: still runs to make after {MAX_STAGES} stages", file=sys.stderr)
            return 1
    print(f"== judging every claim from the {store} (--judge-only)", flush=True)
    return _pytest([*args, "--judge-only"])



if __name__ == "__main__":
    sys.exit(main())
