"""Train everything the selected claims need, then judge them: ``python -m harness.nightly [pytest args]``.

    python -m harness.nightly -m slow --executor ray --runs-per-gpu 2 --cache-dir /shared/cache

Each *stage* is a pytest run with ``--plan --plan-execute``: it lists the runs the selected claims
ask for and makes the missing ones, side by side on the executor (``--executor``), into the model
cache, so a cluster gets every known run at once instead of one claim's at a time. What a stage
made lets claims ask for their next runs (a full run at the LR a search found, the next doubling
of a divergence search), so stages repeat until one has nothing left to make. Then a pytest run
with ``--judge-only`` judges every claim from the cache and writes the report: a run the stages
did not make stops its claim with an error naming it instead of training while judging. (Work
that is never stored, the init passes and per-example gradients, is done in that last run.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

MAX_STAGES = 10
OWN = ("--plan", "--plan-execute", "--judge-only")  # what the driver adds to the pytest runs itself
USAGE = f"""usage: python -m harness.nightly [PYTEST ARGS]

Train everything the selected claims need, in stages, then judge every claim from the model cache.
Run it from the repository root, with the arguments you would give pytest, e.g.

  python -m harness.nightly -m slow --cifar10-root DIR --runs-per-gpu 4
  python -m harness.nightly -m slow --smoke -k "S-THM41 or B-RMT-EDGE"

Each stage is `pytest ARGS --plan --plan-execute`: it lists the runs the claims ask for and makes
the missing ones into the model cache (--cache-dir), up to {MAX_STAGES} stages, until one has nothing
left to make. Then `pytest ARGS --judge-only` judges every claim and writes the report (--report-dir,
default reports/; reports/smoke/ under --smoke). The driver adds --plan, --plan-execute and
--judge-only itself.
`python -m pytest --help` lists the options ARGS may hold (the claims suite's are under
"claims suite").
"""


def _pytest(args: list[str]) -> int:
    return subprocess.call([sys.executable, "-m", "pytest", *args])


def _made_in_stage(plan_path: Path) -> set[str] | None:
    """The cache keys of the runs a stage's plan listed as missing and makeable; None when the
    stage wrote no plan."""
    try:
        plan = json.loads(plan_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {r["key"] for r in plan.get("runs", []) if r.get("makeable") and not r.get("stored")}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        print(USAGE, end="")
        return 0
    if any(a in OWN for a in args):
        print("error: python -m harness.nightly adds --plan, --plan-execute and --judge-only itself", file=sys.stderr)
        return 2
    made: list[set[str]] = []
    with tempfile.TemporaryDirectory(prefix="bnclaims-nightly-") as tmp:
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
    print("== judging every claim from the model cache (--judge-only)", flush=True)
    return _pytest([*args, "--judge-only"])


if __name__ == "__main__":
    sys.exit(main())
