"""The labs' preconditions, all in one place: what a lab's runs must show for its claims to bear
on the paper at all (a claims file's ``preconditions``, required per claim by ``requires``).

- the bjorck2018 training lab (:class:`LabPreconditions`): its LR searches must show Table 2's
  shape (BN learns at the top of the grid, the unnormalized net learns lower and fails there);
- the santurkar2018 VGG runs (:class:`VGGPreconditions`): the standard and the BN VGG train.

They are measured on the runs of the seeds a claim decides on (its look's seeds), so a claim that
adds seeds checks them on the new ones too. Kept out of the labs: a lab makes runs that the model
cache stores, and what decides about them must not version them. "Learns" is read against
chance (``harness.lr_search.CHANCE``, ten balanced classes) in both.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.claimkit.verdicts import Preconditions
from harness.lr_search import CHANCE, LRSearch
from harness.resnet_lab import ResNetLab
from harness.vgg_runs import VGGRun


class LabPreconditions(Preconditions):
    """Whether the lab can show the LR and generalization claims at all (bjorck2018 Table 2, App. J),
    measured on the base nets' LR searches, every seed:

    - ``bn_learns``: BN's ResNet is achievable at the top of the grid (0.1);
    - ``none_learns``: the unnormalized net has an achievable LR on the grid (a baseline that learns);
    - ``none_fails_top``: the unnormalized net is not achievable at the top of the grid.

    A claim declares the ones it depends on (YAML ``requires``); ``check`` records them in its
    verdict, which is then inconclusive when one fails.
    """

    NAMES = ("bn_learns", "none_learns", "none_fails_top")

    @classmethod
    def unknown(cls, why: str) -> LabPreconditions:
        """Every precondition unmet, for ``why`` (they cannot be measured yet)."""
        return cls(dict.fromkeys(cls.NAMES, False), dict.fromkeys(cls.NAMES, f"not known: {why}"), known=False)

    @classmethod
    def measure(cls, lab: ResNetLab, seeds: Sequence[int]) -> LabPreconditions:
        """On the base nets' searches of ``seeds`` (made side by side when missing)."""
        seeds, top = list(seeds), max(lab.settings["grid"])
        nets = {"BN": lab.model("batch"), "unnormalized": lab.model("none")}
        lab.prefetch(searches=[{"model": m, "seed": s} for m in nets.values() for s in seeds])
        bn, none = ([lab.max_lr(m, seed=s) for s in seeds] for m in nets.values())

        def at_top(search: LRSearch) -> str:
            trial = search.trials[0]  # the search starts at the top of the grid
            return trial.status if trial.test_acc is None else f"{trial.status} ({trial.test_acc:.2f})"

        met = {"bn_learns": all(s.max_lr == top for s in bn),
               "none_learns": all(s.max_lr is not None for s in none),
               "none_fails_top": all(s.max_lr != top for s in none)}
        detail = {
            "bn_learns": f"BN at {top:g}, seeds {seeds}: " + ", ".join(at_top(s) for s in bn),
            "none_learns": f"unnormalized highest achievable LR, seeds {seeds}: "
                           + ", ".join("none on grid" if s.max_lr is None else f"{s.max_lr:g}" for s in none),
            "none_fails_top": f"unnormalized at {top:g}, seeds {seeds}: " + ", ".join(at_top(s) for s in none),
        }
        return cls(met, detail)


class VGGPreconditions(Preconditions):
    """Whether the VGG runs can show the claims that compare with the standard net (santurkar2018
    Fig. 1b: both nets train at the family's LR), every seed of the look:

    - ``standard_learns``: the standard VGG's final test accuracy is at least ``LEARNS`` (twice
      chance), and it did not diverge;
    - ``bn_learns``: the same for the BN VGG.
    """

    NAMES = ("standard_learns", "bn_learns")
    LEARNS = 2 * CHANCE  # final test accuracy that counts as "trains"

    @classmethod
    def measure(cls, runs: dict[str, list[VGGRun]], seeds: Sequence[int]) -> VGGPreconditions:
        """On the runs of ``seeds``: ``runs`` maps a norm (``none``, ``batch``) to its run of each seed."""
        met, detail = {}, {}
        for name, norm, label in (("standard_learns", "none", "standard"), ("bn_learns", "batch", "BN")):
            learns = [r.diverged_at is None and r.final.get("test_acc", 0.0) >= cls.LEARNS for r in runs[norm]]
            met[name] = all(learns)
            detail[name] = f"{label} VGG final test accuracy, seeds {list(seeds)}: " + ", ".join(
                "diverged" if r.diverged_at is not None else f"{r.final['test_acc']:.2f}" for r in runs[norm])
        return cls(met, detail)
