"""Probed VGG runs: probes do not change training, layer grouping, records, divergence, LR range."""

from __future__ import annotations

import math

import pytest
import torch

from harness.cache import ModelCache
from harness.data import synthetic_cifar
from harness.models import vgg_cifar
from harness.probes.checkpoints import layer_groups
from harness.settings import SettingsError, VGGShared, parse
from harness.vgg_runs import _config, block_losses, lr_range, norm_after, tail_mean, train_vgg

TINY = dict(config="vgg11", width=1 / 16, lr=0.1, momentum=0.0, weight_decay=0.0, batch_size=16, steps=6, checkpoints=2,
            step_multipliers=[0.5, 4], ics_layers=[2, 9], ics_norms=["none", "batch"], probe_norms=["none", "batch", "l2"],
            dist_layer=7, dist_units=3, eval_train_samples=32, dataset="synthetic", resolution=32, n_train=64, n_test=32, data_seed=0,
            converged_within=0.1, seeds=[0])


@pytest.fixture(scope="module")
def data():
    return synthetic_cifar(n_train=64, n_test=32, resolution=32, seed=0)


@pytest.mark.parametrize("norm", ["batch", "l2", "noisy_batch"])
def test_probes_do_not_change_the_training_trajectory(data, norm):
    probed = train_vgg(norm, data, TINY, seed=0)
    plain = train_vgg(norm, data, TINY, seed=0, probes=False)
    assert probed.losses == plain.losses  # bit for bit: BN statistics, noise and batch order untouched
    assert probed.activations.mean == plain.activations.mean
    assert len(probed.checkpoints) == (2 if norm in TINY["probe_norms"] else 0) and plain.checkpoints == []


def test_run_records_what_the_claims_read(data):
    run = train_vgg("batch", data, TINY, seed=1)
    assert len(run.losses) == len(run.accs) == 6 and run.diverged_at is None
    assert [c.step for c in run.checkpoints] == [0, 3]
    assert [e["step"] for e in run.evals] == [0, 3, 6]
    assert [layer["layer"] for layer in run.checkpoints[0].ics] == [2, 9]
    line = run.checkpoints[0].gradient_line
    assert line["steps"] == pytest.approx([0.05, 0.4]) and len(line["losses"]) == 2
    assert run.checkpoints[0].grad_norm > 0 and run.checkpoints[0].random_line["loss_range"] >= 0
    assert run.activations.steps == list(range(6)) and len(run.activations.mean[0]) == 3
    # BN's output has the moments β, γ² on every batch: near 0 and 1 at init
    assert all(abs(m) < 1e-5 for m in run.normalized.mean[0]) and all(abs(v - 1) < 1e-3 for v in run.normalized.var[0])
    assert len(run.activation_changes()) == 5 and all(c >= 0 for c in run.activation_changes())
    assert train_vgg("l2", data, TINY, seed=1).checkpoints[0].ics == []  # ICS only for ics_norms


def test_layer_groups_follow_the_numbered_layers():
    groups, weights = layer_groups(vgg_cifar("vgg11", "noisy_batch", width=1 / 16))
    assert len(groups) == len(weights) == 9
    assert groups[0] == ["features.0.weight", "features.1.0.weight", "features.1.0.bias"]
    assert weights[-1] == "fc.weight" and groups[-1] == ["fc.weight", "fc.bias"]
    groups, _ = layer_groups(vgg_cifar("vgg11", "none", width=1 / 16))
    assert groups[0] == ["features.0.weight", "features.0.bias"]


def test_norm_after_a_conv_layer():
    model = vgg_cifar("vgg11", "batch", width=1 / 16)
    assert norm_after(model, 1) is model.features[1] and isinstance(norm_after(model, 8), torch.nn.BatchNorm2d)
    with pytest.raises(ValueError, match="layer 9 is not among the conv layers 1..8"):
        norm_after(model, 9)


def test_divergence_is_a_measured_outcome(data):
    run = train_vgg("none", data, {**TINY, "lr": 1e4}, seed=0)
    assert run.diverged_at is not None and len(run.losses) == run.diverged_at  # the diverged batch is the last
    assert run.final["step"] == run.diverged_at - 1  # the end state is evaluated, not an earlier checkpoint
    assert all(math.isfinite(c) for c in run.activation_changes())  # non-finite records are cut off


def test_lr_range(data):
    per_seed = lr_range(("batch",), data, TINY, [0.01, 1e4], steps=2, seeds=[0, 1])
    runs = per_seed[0]["batch"]
    assert len(per_seed) == 2 and list(runs) == [0.01, 1e4] and runs[0.01].checkpoints == [] and len(runs[0.01].losses) == 2
    assert runs[0.01] == train_vgg("batch", data, TINY, 0, probes=False, lr=0.01, steps=2)  # side by side = in process
    assert per_seed[1]["batch"][0.01] == train_vgg("batch", data, TINY, 1, probes=False, lr=0.01, steps=2)


def test_tail_mean():
    assert tail_mean(list(range(20))) == pytest.approx(18.5)  # last 10%: 18, 19
    assert tail_mean([3.0]) == 3.0
    with pytest.raises(ValueError, match="no values"):
        tail_mean([])


def test_cached_vgg_run_equals_a_fresh_one_and_is_made_once(data, tmp_path, monkeypatch):
    fresh = train_vgg("batch", data, TINY, seed=0)
    assert train_vgg("batch", data, TINY, seed=0, cache=ModelCache(tmp_path)) == fresh
    monkeypatch.setattr("harness.vgg_runs._train_vgg", _no_training)
    assert train_vgg("batch", data, TINY, seed=0, cache=ModelCache(tmp_path)) == fresh
    other = synthetic_cifar(n_train=64, n_test=32, resolution=32, seed=1)  # same sizes, other images
    with pytest.raises(RuntimeError, match="trained again"):
        train_vgg("batch", other, TINY, seed=0, cache=ModelCache(tmp_path))


def _no_training(*args):
    raise RuntimeError("a cached run was trained again")


def test_block_losses_average_the_steps_around_each_checkpoint():
    from types import SimpleNamespace

    run = SimpleNamespace(checkpoints=[SimpleNamespace(step=s, loss=9.0) for s in (0, 4, 8)], losses=[float(v) for v in range(8)])
    # checkpoint 0: steps 0–1; checkpoint 4: steps 2–5; checkpoint 8 (after the last update): none left but its own
    assert block_losses(run) == [0.5, 3.5, 6.5]
    diverged = SimpleNamespace(checkpoints=run.checkpoints, losses=[1.0, 2.0])
    assert block_losses(diverged) == [1.5, 9.0, 9.0]  # no loss after the divergence: the checkpoints keep their own readings


def test_a_runs_config_leaves_out_what_only_the_claims_read(data):
    config = _config("batch", data, parse(VGGShared, TINY, "tiny"), 0, "cpu")
    assert config["settings"] == {k: v for k, v in TINY.items() if k not in ("seeds", "converged_within")}
    assert _config("batch", data, {**TINY, "seeds": [4, 5], "converged_within": 0.5}, 0, "cpu") == config  # a plain mapping: parsed
    with pytest.raises(SettingsError, match=r"VGG run settings: missing settings key\(s\) dist_layer"):
        train_vgg("batch", data, {k: v for k, v in TINY.items() if k != "dist_layer"}, seed=0)
