"""The labs' preconditions (harness.preconditions): one owner per family, named as the claims files name them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.lr_search import CHANCE
from harness.preconditions import LabPreconditions, VGGPreconditions
from harness.vgg_runs import VGGRun

CLAIMS = Path(__file__).resolve().parents[1] / "claims"


@pytest.mark.parametrize("family, measured", [("bjorck2018_training", LabPreconditions), ("santurkar2018_vgg", VGGPreconditions)])
def test_the_claims_file_declares_exactly_what_its_lab_measures(family, measured):
    declared = yaml.safe_load((CLAIMS / f"{family}.yaml").read_text(encoding="utf-8"))["preconditions"]
    assert set(declared) == set(measured.NAMES)


def _run(test_acc: float | None, diverged_at: int | None = None) -> VGGRun:
    evals = [] if test_acc is None else [{"step": 10, "test_acc": test_acc, "train_acc": test_acc}]
    return VGGRun("none", 0, [], [], evals, [], None, None, diverged_at)


def test_a_vgg_learns_at_twice_chance_on_every_seed_without_diverging():
    assert VGGPreconditions.LEARNS == 2 * CHANCE
    good = {"none": [_run(0.5), _run(0.2)], "batch": [_run(0.6), _run(0.7)]}
    pre = VGGPreconditions.measure(good, [0, 1])
    assert pre.met == {"standard_learns": True, "bn_learns": True}
    assert pre.detail["standard_learns"] == "standard VGG final test accuracy, seeds [0, 1]: 0.50, 0.20"
    below = VGGPreconditions.measure({**good, "none": [_run(0.5), _run(0.19)]}, [0, 1])
    assert below.met == {"standard_learns": False, "bn_learns": True}
    diverged = VGGPreconditions.measure({**good, "batch": [_run(0.9, diverged_at=7), _run(0.7)]}, [0, 1])
    assert diverged.met["bn_learns"] is False and diverged.detail["bn_learns"].endswith("seeds [0, 1]: diverged, 0.70")
