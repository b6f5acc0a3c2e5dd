"""The hooked initialization pass, BN on top, the bias fix, and the claim readouts (incl. sabotage)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness.models import resnet_cifar
from harness.models.init import equalize_output_bias
from harness.readouts import init as ro
from harness.readouts import init_extra as rox
from harness.probes.init_probe import (InitPass, class_masked_cotangents, class_masked_kernel_grads, norm_slots, pre_relu_source,
                                       probe_init)
from harness.probes.summands import summand_statistics, table1_row
from harness.claimkit.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
TH = {c.id: c.thresholds for c in Registry.load(ROOT / "claims").claims.values()}  # the claims' own thresholds

DEPTH = 20  # conv layers 1..19, fc 20
T1, ACT, MASK = (4, 10, 16), (3, 9, 15), 10


def _batch(n=16, res=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, res, res, generator=g), torch.randint(0, 10, (n,), generator=g)


def _model(norm="none", seed=0, **kw):
    torch.manual_seed(seed)
    return resnet_cifar(DEPTH, norm, width=8, **kw)


def _probe(model, seed=0, mask=MASK):
    x, y = _batch(seed=seed)
    return probe_init(model, x, y, table1_layers=T1, activation_layers=ACT, mask_layer=mask)


def _sabotaged_bn(seed=0):
    """A BN network with every BatchNorm replaced by an identity: the claims must not hold for it."""
    model = _model("batch", seed)
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(module, child_name, nn.Identity())
    return model


def test_norm_where_top_puts_one_bn_after_the_last_block():
    model = _model("batch", norm_where="top")
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 1 and bns[0] is model.top_norm and bns[0].num_features == 32
    assert list(model.layer_numbers()) == list(range(1, DEPTH + 1))
    x, _ = _batch()
    captured = {}
    model.top_norm.register_forward_hook(lambda m, i, o: captured.update(inp=i[0], out=o))
    model(x)
    torch.testing.assert_close(captured["inp"], model.features(x))  # right after the residual blocks
    with pytest.raises(ValueError, match="norm_where must be one of all, top"):
        resnet_cifar(DEPTH, "batch", norm_where="middle")


def test_equalize_output_bias_gives_equal_mean_logits():
    model = _model()
    x, _ = _batch()
    assert model(x).mean(0).std() > 1e-3
    before = {k: v.clone() for k, v in model.state_dict().items()}
    equalize_output_bias(model, x)
    torch.testing.assert_close(model(x).mean(0), torch.zeros(10), atol=1e-4, rtol=0)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed == ["fc.bias"]
    with pytest.raises(ValueError, match="`fc`"):
        equalize_output_bias(nn.Sequential(nn.Linear(3, 2)), x)


def test_probe_records_what_a_plain_pass_gives():
    model = _model("batch")
    p = _probe(model)
    assert p.layers == list(range(1, DEPTH))
    # reference: a second, unhooked pass of the same model and batch
    x, y = _batch()
    ref_model = _model("batch")
    outs = {}
    hooks = [ref_model.layer(k).register_forward_hook(lambda m, i, o, k=k: outs.__setitem__(k, (i[0], o))) for k in p.layers]
    F.cross_entropy(ref_model(x), y).backward()
    for h in hooks:
        h.remove()
    for k in (1, 4, 19):
        out = outs[k][1].detach()
        np.testing.assert_allclose(p.channel_mean[k], out.double().mean((0, 2, 3)).numpy(), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(p.channel_var[k], out.double().var((0, 2, 3), unbiased=False).numpy(), rtol=1e-4)
        np.testing.assert_allclose(p.weight_grad[k], ref_model.layer(k).weight.grad.double().numpy(), rtol=1e-4, atol=1e-7)
    # β's gradient is the per-channel Σ_bxy ∂L/∂(BN output)
    np.testing.assert_allclose(p.channel_grad[4], ref_model.blocks[1].bn1.bias.grad.double().numpy(), rtol=1e-4, atol=1e-7)
    assert set(p.table1) == set(T1) and set(p.activations) == set(ACT)
    assert p.class_grad.shape == (10,) and p.branch_var.shape == p.skip_var.shape == (9,)


def test_table1_in_the_probe_matches_the_summand_statistics():
    model = _model()
    x, y = _batch()
    p = probe_init(model, x, y, table1_layers=(10,))
    captured = {}
    ref = _model()
    conv = ref.layer(10)

    def capture(module, inputs, out):
        captured["inp"] = inputs[0].detach()
        out.register_hook(lambda g: captured.update(g=g))

    conv.register_forward_hook(capture)
    F.cross_entropy(ref(x), y).backward()
    row = table1_row(summand_statistics(conv, captured["inp"], captured["g"]), 16, captured["g"].shape[2] * captured["g"].shape[3])
    for name, value in row.items():
        assert p.table1[10][name] == pytest.approx(value, rel=1e-4)


def test_class_masked_gradients_sum_to_the_kernel_gradient():
    model = _model()
    x, y = _batch()
    kept = {}
    model.layer(MASK).register_forward_hook(lambda m, i, o: kept.update(inp=i[0].detach(), out=o))
    logits = model(x)
    F.cross_entropy(logits, y).backward(retain_graph=True)
    per_class = class_masked_kernel_grads(model.layer(MASK), logits, y, kept["inp"], kept["out"])
    assert per_class.shape == (10, *model.layer(MASK).weight.shape)
    torch.testing.assert_close(per_class.sum(0), model.layer(MASK).weight.grad, rtol=1e-4, atol=1e-6)
    cot = class_masked_cotangents(logits, y)
    assert torch.count_nonzero(cot[3][:, [c for c in range(10) if c != 3]]) == 0


def test_probe_rejects_bad_requests():
    model = _model()
    x, y = _batch()
    with pytest.raises(ValueError, match="layer 20 is not a conv layer"):
        probe_init(model, x, y, table1_layers=(20,))
    with pytest.raises(ValueError, match="at least 2 images"):
        probe_init(model, x[:1], y[:1])
    with pytest.raises(TypeError, match="CifarResNet"):
        norm_slots(nn.Sequential())
    with pytest.raises(ValueError, match="second conv of a block"):
        pre_relu_source(4, DEPTH)
    assert pre_relu_source(5, DEPTH) == 4


SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def passes():
    """Three seeds, one batch each, grouped by seed as the readouts take them."""
    return {"none": {s: [_probe(_model("none", s))] for s in SEEDS}, "batch": {s: [_probe(_model("batch", s))] for s in SEEDS},
            "sabotaged": {s: [_probe(_sabotaged_bn(s))] for s in SEEDS}}


def test_sabotaged_bn_is_the_unnormalized_network(passes):
    for s in SEEDS:
        np.testing.assert_array_equal(passes["sabotaged"][s][0].weight_grad[12], passes["none"][s][0].weight_grad[12])


def test_bn_vs_none_claims_do_not_hold_with_bn_replaced_by_identities(passes):
    none, fake = passes["none"], passes["sabotaged"]
    scale = ro.grad_scale(none, fake, 12, TH["B-GRAD-SCALE"])
    assert scale.verdict != "holds" and scale.values["ratio"]["median"] == pytest.approx([1.0] * 3)
    moments = ro.moment_depth(none, fake, TH["B-MOM-DEPTH"])
    assert moments.verdict != "holds"
    assert moments.values["growth"]["batch"] == moments.values["growth"]["none"]
    align = ro.t1_align(none, fake, T1, TH["B-T1-ALIGN"])
    assert align.verdict != "holds"
    assert align.values["abs_sum_bxy"]["batch"] == pytest.approx(align.values["abs_sum_bxy"]["none"])
    for readout in (ro.grad_tails(none, fake, 12, TH["B-GRAD-TAILS"]), ro.output_bias(none, fake, TH["B-OUT-BIAS"]),
                    ro.output_mask(none, fake, TH["B-OUT-MASK"]), ro.low_rank(none, fake, 9, TH["B-LOWRANK"]),
                    rox.mean_grad(none, fake, 9, DEPTH, TH["B-MEAN-GRAD"]), rox.layer_grad(none, fake, TH["B-LAYER-GRAD"]),
                    rox.act_hist(none, fake, ACT, TH["B-ACT-HIST"]), rox.top_grad(none, fake, fake, 12, TH["B-TOP-GRAD"]),
                    rox.radial(none, fake, TH["X-RADIAL"]), rox.residual_scale(none, fake, TH["X-RESIDUAL-SCALE"])):
        assert readout.verdict != "holds", readout.summary


def test_real_bn_separates_where_the_sabotage_does_not(passes):
    # the decisions depend on the BN passes: even at depth 20 (batch 16, 8×8) the BN net cancels its
    # summands more than the unnormalized one at every seed (×7.5, 7.8, 7.6 vs ×4.1, 7.7, 5.3), the
    # direction B-T1-ALIGN claims
    real = ro.t1_align(passes["none"], passes["batch"], T1, TH["B-T1-ALIGN"]).values["abs_sum_bxy"]
    assert all(b > a for a, b in zip(real["none"], real["batch"]))
    assert np.exp(np.mean(np.log(real["batch"]))) > 1.3 * np.exp(np.mean(np.log(real["none"])))


def test_every_readout_runs_on_small_passes(passes):
    none, bn = passes["none"], passes["batch"]
    for readout in (ro.grad_scale(none, bn, 12, TH["B-GRAD-SCALE"]), ro.grad_tails(none, bn, 12, TH["B-GRAD-TAILS"]),
                    ro.moment_depth(none, bn, TH["B-MOM-DEPTH"]), ro.output_bias(none, bn, TH["B-OUT-BIAS"]),
                    ro.output_mask(none, bn, TH["B-OUT-MASK"]), ro.t1_align(none, bn, T1, TH["B-T1-ALIGN"]),
                    ro.t1_trend(none, T1, "abs_sum_bxy", TH["R1-T1-TREND"]), ro.low_rank(none, bn, 9, TH["B-LOWRANK"]),
                    rox.mean_grad(none, bn, 9, DEPTH, TH["B-MEAN-GRAD"]), rox.layer_grad(none, bn, TH["B-LAYER-GRAD"]),
                    rox.act_hist(none, bn, ACT, TH["B-ACT-HIST"]), rox.top_grad(none, bn, bn, 12, TH["B-TOP-GRAD"]),
                    rox.bias_fix(none, none, TH["X-BIASFIX"]), rox.radial(none, bn, TH["X-RADIAL"]),
                    rox.residual_scale(none, bn, TH["X-RESIDUAL-SCALE"])):
        assert readout.verdict in ("holds", "refuted", "inconclusive") and readout.summary
        assert "inf" not in readout.decision.summary and "nan" not in readout.decision.summary
        assert all(len(c.values) == len(SEEDS) for c in readout.conditions)
    # BN "on top" identical to BN: a ratio of exactly 1 on every seed, within any factor of it (every seed
    # on the holding side; no spread, so three seeds count as yes/no outcomes and do not decide yet)
    same_as_bn = rox.top_grad(none, bn, bn, 12, TH["B-TOP-GRAD"]).conditions
    assert [c.values for c in same_as_bn[:2]] == [(1.0,) * 3] * 2
    assert [c.lean()["side"] for c in same_as_bn[:2]] == ["holds", "holds"]
    scales_nothing = rox.top_grad(none, bn, none, 12, TH["B-TOP-GRAD"]).conditions[2]  # "on top" that scales nothing
    assert scales_nothing.state() != "holds" and scales_nothing.lean()["side"] == "refuted"
    assert rox.bias_fix(none, none, TH["X-BIASFIX"]).values["none_over_fixed_cv"] == pytest.approx([1.0] * 3)  # no fix, no change


def test_output_gradients_and_low_rank_helpers():
    p = _probe(_model(), mask=None)
    g = ro.output_gradients(p)
    np.testing.assert_allclose(g.sum(1), 0, atol=1e-12)  # softmax − one-hot sums to zero per image
    assert ro.favoured_class([p]) == int(np.bincount(p.logits.argmax(1), minlength=10).argmax())
    rank_one = np.outer(np.arange(1, 9), np.arange(1, 7)).astype(float)
    s = ro.low_rank_excess(rank_one)
    assert s["share"] == pytest.approx(1.0) and s["share"] > s["null_max"]
    with pytest.raises(ValueError, match="class masking"):
        ro.output_mask({0: [p]}, {0: [p]}, TH["B-OUT-MASK"])
    with pytest.raises(ValueError, match="no passes"):
        ro.grad_scale({0: []}, {0: [p]}, 4, TH["B-GRAD-SCALE"])
    with pytest.raises(ValueError, match="different seeds"):
        ro.grad_scale({0: [p]}, {1: [p]}, 4, TH["B-GRAD-SCALE"])


def test_a_stored_pass_loads_back_equal_in_fewer_bytes(passes):
    import io

    import torch

    p = passes["none"][0][0]
    stored = p.as_stored()
    assert stored["weight"][12].dtype == torch.float32  # a float32 net's weights: exact in float32
    back = InitPass.from_stored(stored)
    for field in ("logits", "weight", "weight_grad", "channel_mean", "activations"):
        a, b = getattr(p, field), getattr(back, field)
        if isinstance(a, dict):
            for k in a:
                if hasattr(a[k], "positive_fraction"):
                    np.testing.assert_array_equal(a[k].samples, b[k].samples)
                else:
                    np.testing.assert_array_equal(a[k], b[k])
                    assert b[k].dtype == a[k].dtype
        else:
            np.testing.assert_array_equal(a, b)
    full, half = io.BytesIO(), io.BytesIO()
    torch.save({k: torch.from_numpy(v) for k, v in p.weight.items()}, full)
    torch.save(stored["weight"], half)
    assert len(half.getvalue()) < 0.6 * len(full.getvalue())
