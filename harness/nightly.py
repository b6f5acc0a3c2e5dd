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

The stages and the judging pass are the claims machinery's driver (``harness.claimkit.nightly``);
this module is the batch-norm suite's entry point and help text.
"""

from __future__ import annotations

import sys

from harness.claimkit import nightly
from harness.claimkit.nightly import MAX_STAGES

PROG = "python -m harness.nightly"
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


def main(argv: list[str] | None = None) -> int:
    return nightly.main(argv, USAGE, PROG, store="model cache")


if __name__ == "__main__":
    sys.exit(main())
