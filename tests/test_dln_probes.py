"""ICS, landscape and ℓp probes against hand-written references, and that probing never
changes the training state (parameters, BN running statistics, the global RNG)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from harness.cache import ModelCache
from harness.dln import _config, lr_range, squared_error, train_dln, train_dln_many
from harness.settings import DLNShared, SettingsError, parse
from harness.models import deep_linear
from harness.norms import LpNorm, make_norm
from harness.probes.checkpoints import layer_groups
from harness.probes.functional import ParamLoss
from harness.probes.ics import internal_covariate_shift
from harness.probes.landscape import landscape_line
from harness.readouts.dln import works
from harness.claimkit.registry import Registry


@pytest.mark.parametrize("p", [1.0, 2.0, math.inf])
def test_lp_norm_forward_definition(p):
    x = torch.randn(64, 5, dtype=torch.float64) * 3 + 2
    layer = LpNorm(5, p, dims=1).double().train()
    centred = x - x.mean(dim=0)
    scale = centred.abs().amax(dim=0) if math.isinf(p) else centred.abs().pow(p).mean(dim=0).pow(1 / p)
    assert torch.allclose(layer(x), centred / (scale + layer.eps), atol=1e-12)


def test_l2_norm_is_batchnorm_and_conv_stats_include_space():
    x = torch.randn(8, 3, 4, 4, dtype=torch.float64)
    bn = nn.BatchNorm2d(3, eps=1e-5).double().train()
    l2 = make_norm("l2")(3).double().train()
    # same statistic; BN adds ε under the square root, ℓp adds it to the scale
    assert torch.allclose(l2(x), bn(x), atol=1e-5)
    assert l2(x).mean(dim=(0, 2, 3)).abs().max() < 1e-12


def test_lp_norm_eval_uses_running_statistics_and_rejects_bad_p():
    layer = LpNorm(2, 1.0, dims=1)
    layer(torch.randn(32, 2) + 5)
    assert (layer.running_mean > 0.3).all()
    layer.eval()
    assert layer(torch.zeros(1, 2)).shape == (1, 2)
    with pytest.raises(ValueError, match="p must be"):
        LpNorm(2, 0.5)


def _three_layer(norm="batch"):
    torch.manual_seed(0)
    return deep_linear(depth=3, width=4, norm=norm).double().train()


def test_ics_matches_a_hand_written_update():
    model = _three_layer()
    x, y = torch.randn(16, 4, dtype=torch.float64), torch.randn(16, 4, dtype=torch.float64)
    lr = 0.05
    objective = ParamLoss(model, x, y, squared_error)
    groups, weights = layer_groups(model)
    assert weights == ["net.0.weight", "net.2.weight", "net.4.weight"] and groups[0] == ["net.0.weight", "net.1.weight", "net.1.bias"]
    got = internal_covariate_shift(objective, groups, weights, lr)
    # reference: copies of the network, earlier layers updated by hand
    loss = squared_error(model(x), y)
    grads = dict(zip([n for n, _ in model.named_parameters()], torch.autograd.grad(loss, list(model.parameters()))))
    for number, layer_ics in zip((1, 2, 3), got):
        clone = _three_layer()
        with torch.no_grad():
            for name, p in clone.named_parameters():
                if any(name in g for g in groups[: number - 1]):
                    p -= lr * grads[name]
        G2 = torch.autograd.grad(squared_error(clone(x), y), dict(clone.named_parameters())[weights[number - 1]])[0]
        G = grads[weights[number - 1]]
        assert layer_ics.l2 == pytest.approx(float((G - G2).norm()), rel=1e-9, abs=1e-12)
        assert layer_ics.cos == pytest.approx(float(torch.nn.functional.cosine_similarity(G.flatten(), G2.flatten(), dim=0)), abs=1e-9)
    assert got[0].l2 == pytest.approx(0.0, abs=1e-12) and got[0].cos == pytest.approx(1.0)  # nothing precedes layer 1


def test_landscape_line_matches_direct_evaluation():
    model = _three_layer("none")
    x, y = torch.randn(16, 4, dtype=torch.float64), torch.randn(16, 4, dtype=torch.float64)
    objective = ParamLoss(model, x, y, squared_error)
    steps = [0.001, 0.01, 0.1]
    line = landscape_line(objective, steps)
    g0 = torch.autograd.grad(squared_error(model(x), y), list(model.parameters()))
    losses, changes = [], []
    for eta in steps:
        clone = _three_layer("none")
        with torch.no_grad():
            for p, g in zip(clone.parameters(), g0):
                p -= eta * g
        loss = squared_error(clone(x), y)
        g1 = torch.autograd.grad(loss, list(clone.parameters()))
        losses.append(loss.item())
        changes.append(float(torch.cat([(a - b).flatten() for a, b in zip(g1, g0)]).norm()))
    assert line.losses == pytest.approx(losses, rel=1e-10)
    assert line.grad_change == pytest.approx(max(changes), rel=1e-9)
    assert line.loss_range == pytest.approx(max(losses) - min(losses), rel=1e-9)
    gnorm = float(torch.cat([g.flatten() for g in g0]).norm())
    assert line.beta == pytest.approx(max(c / (e * gnorm) for c, e in zip(changes, steps)), rel=1e-9)


def test_probes_do_not_change_training_state():
    model = _three_layer()
    model(torch.randn(16, 4, dtype=torch.float64))  # running statistics away from their init
    x, y = torch.randn(16, 4, dtype=torch.float64), torch.randn(16, 4, dtype=torch.float64)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    objective = ParamLoss(model, x, y, squared_error)
    groups, weights = layer_groups(model)
    internal_covariate_shift(objective, groups, weights, 0.1)
    landscape_line(objective, [0.01, 0.1], "gradient")
    landscape_line(objective, [0.01, 0.1], "random", torch.Generator().manual_seed(0))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert torch.equal(rng, torch.get_rng_state())


def test_probe_errors():
    model = _three_layer("none")
    objective = ParamLoss(model, torch.randn(4, 4, dtype=torch.float64), torch.randn(4, 4, dtype=torch.float64), squared_error)
    with pytest.raises(ValueError, match="direction must be"):
        landscape_line(objective, [0.1], "sideways")
    with pytest.raises(ValueError, match="needs a torch.Generator"):
        landscape_line(objective, [0.1], "random")
    with pytest.raises(ValueError, match="positive step sizes"):
        landscape_line(objective, [])
    groups, weights = layer_groups(model)
    with pytest.raises(ValueError, match="layer 9 is not among layers 1..3"):
        internal_covariate_shift(objective, groups, weights, 0.1, probe=[9])


def test_train_dln_records_checkpoints_and_divergence():
    settings = {"depth": 4, "width": 3, "samples": 50, "lr": 1e-3, "steps": 20, "checkpoints": 4, "seeds": [0], "converged_within": 0.1,
                "step_multipliers": [0.1, 1.0], "ics_layers": [2, 4], "shift_layer": 2}
    run = train_dln("batch", settings, seed=0)
    assert [c.step for c in run.checkpoints] == [0, 5, 10, 15, 20] and len(run.losses) == 21
    assert len(run.checkpoints[0].ics) == 2 and len(run.norm_stats[0].gamma_over_sigma) == 9
    assert [s.step for s in run.norm_stats] == [c.step for c in run.checkpoints]
    lr_range_thresholds = Registry.load(Path(__file__).resolve().parents[1] / "claims").claims["S-LR-RANGE"].thresholds
    assert run.diverged_at is None and works(run.losses, lr_range_thresholds)
    diverged = train_dln("none", settings, seed=0, probes=False, lr=10.0)
    assert diverged.diverged_at is not None and not works(diverged.losses, lr_range_thresholds)


def test_cached_dln_run_equals_a_fresh_one_and_is_made_once(tmp_path, monkeypatch):
    settings = {"depth": 4, "width": 3, "samples": 50, "lr": 1e-3, "steps": 10, "checkpoints": 2, "seeds": [0], "converged_within": 0.1,
                "step_multipliers": [0.1, 1.0], "ics_layers": [2, 4], "shift_layer": 2}
    fresh = train_dln("batch", settings, seed=0)
    cache = ModelCache(tmp_path)
    assert train_dln("batch", settings, seed=0, cache=cache) == fresh  # a miss hands back the stored record
    monkeypatch.setattr("harness.dln._train_dln", _no_training)
    assert train_dln("batch", settings, seed=0, cache=ModelCache(tmp_path)) == fresh  # next session: loaded
    with pytest.raises(RuntimeError, match="trained again"):  # another LR is another run
        train_dln("batch", settings, seed=0, lr=2e-3, cache=cache)


TINY = {"depth": 4, "width": 3, "samples": 50, "lr": 1e-3, "steps": 10, "checkpoints": 2, "seeds": [0], "converged_within": 0.1,
        "step_multipliers": [0.1, 1.0], "ics_layers": [2, 4], "shift_layer": 2}


def test_runs_side_by_side_equal_runs_one_after_another(tmp_path, monkeypatch):
    calls = [{"norm": "batch", "settings": TINY, "seed": 0}, {"norm": "l1", "settings": TINY, "seed": 0},
             {"norm": "none", "settings": TINY, "seed": 1, "lr": 2e-3}]
    serial = [train_dln(**c) for c in calls]
    assert train_dln_many(calls, workers=2) == serial  # two spawned processes, no cache
    cache = ModelCache(tmp_path)
    assert train_dln_many(calls, cache, workers=2) == serial  # the workers store, the caller loads
    monkeypatch.setattr("harness.concurrent.parallel_map", lambda *a: pytest.fail("cached runs were made again"))
    assert train_dln_many(calls, ModelCache(tmp_path), workers=2) == serial


def test_lr_range_by_norm_and_lr():
    runs = lr_range(("none", "batch"), TINY, [1e-3, 10.0], steps=5, seeds=[0, 1], workers=0)
    assert len(runs) == 2 and list(runs[0]) == ["none", "batch"] and list(runs[0]["none"]) == [1e-3, 10.0]
    assert runs[0]["none"][1e-3] == train_dln("none", TINY, 0, probes=False, lr=1e-3, steps=5)
    assert runs[1]["none"][1e-3] == train_dln("none", TINY, 1, probes=False, lr=1e-3, steps=5)
    assert runs[0]["none"][10.0].diverged_at is not None


def _no_training(*args):
    raise RuntimeError("a cached run was trained again")


@pytest.mark.parametrize("norm", ["batch", "none", "l1"])
def test_shift_input_is_the_layer_input_before_normalization(norm):
    """Reference: run the layers one by one and keep the output of linear layer shift_layer − 1."""
    from harness.dln import _norm_stats, regression_problem
    from harness.models import deep_linear

    torch.manual_seed(0)
    model = deep_linear(depth=4, width=3, norm=norm, init="xavier_uniform").train()
    x, _ = regression_problem(50, 3, seed=0)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    _, shift = _norm_stats(model, x, shift_layer=3)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())  # running statistics untouched
    h, seen = x, 0
    with torch.no_grad():
        for module in model.net:  # linear 1, its norm, linear 2: stop there, before linear 2's norm
            h = module(h)
            seen += isinstance(module, torch.nn.Linear)
            if seen == 2:
                break
    model.load_state_dict(state)  # the reference pass moved BN's running statistics
    torch.testing.assert_close(torch.tensor(shift["mean"]), h.detach().mean(0))
    torch.testing.assert_close(torch.tensor(shift["var"]), h.detach().var(0, unbiased=False))
    with pytest.raises(ValueError, match="shift_layer must name a linear layer with one before it"):
        _norm_stats(model, x, shift_layer=1)


def test_checkpoint_steps_are_even_or_dense_early():
    from harness.probes.checkpoints import CheckpointSchedule, checkpoint_steps

    assert checkpoint_steps(2000, 10) == list(range(0, 2001, 200))
    dense = checkpoint_steps(2000, 20, "quadratic")
    assert dense[:5] == [0, 5, 20, 45, 80] and dense[-1] == 2000 and len(dense) == 21
    assert sum(s < 200 for s in dense) == 7  # where a BN DLN that converges by step 200 still trains
    assert checkpoint_steps(10, 20, "quadratic") == sorted(set(checkpoint_steps(10, 20, "quadratic")))  # merged, distinct
    schedule = CheckpointSchedule(dense)
    assert schedule.due(45) and not schedule.due(46) and CheckpointSchedule(3).due(6)
    for bad, message in (((2000, 10, "log"), "linear' or 'quadratic"), ((0, 10), "steps ≥ 1")):
        with pytest.raises(ValueError, match=message):
            checkpoint_steps(*bad)
    with pytest.raises(ValueError, match="must be ≥ 1"):
        CheckpointSchedule(0)
    with pytest.raises(ValueError, match="non-empty set of updates"):
        CheckpointSchedule([])


def test_a_dln_run_probes_at_its_checkpoint_steps():
    run = train_dln("batch", {**TINY, "steps": 20, "checkpoints": 4, "checkpoint_spacing": "quadratic"}, seed=0)
    assert [c.step for c in run.checkpoints] == [0, 1, 5, 11, 20] == [s.step for s in run.norm_stats]


def test_a_runs_config_leaves_out_what_only_the_claims_read():
    config = _config("batch", parse(DLNShared, TINY, "tiny"), 3, True, None, None)
    run_part = {k: v for k, v in TINY.items() if k not in ("seeds", "converged_within")}
    assert config["settings"] == {**run_part, "precision": "float32", "checkpoint_spacing": "linear", "seed": 3}
    assert _config("batch", {**TINY, "seeds": [5, 6], "converged_within": 0.5}, 3, True, None, None) == config  # parsed
    with pytest.raises(SettingsError, match=r"DLN run settings: missing settings key\(s\) samples"):
        train_dln("batch", {k: v for k, v in TINY.items() if k != "samples"}, seed=0)
