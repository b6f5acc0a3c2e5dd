"""The init readouts (harness.readouts.init and init_extra) decide per seed, on hand-made statistics.

Every readout gets three seeds of fake passes (objects with only the fields it reads) in three
arrangements: every seed as the claim says (holds), no seed (refuted), and one seed against two
(inconclusive: the seeds disagree, or the interval straddles the threshold). The BN-vs-none
readouts are also fed the unnormalized passes in place of BN's ("BN made the identity"), which
must never hold. Every readout decides with the claim's own thresholds, loaded from
claims/bjorck2018_init.yaml, so these tests use the numbers the claims use; bad input (no seeds,
zero or undefined statistics, missing fields or thresholds) is a clear error.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from harness.claimkit.evidence import HOLDS, INCONCLUSIVE, REFUTED
from harness.readouts import init as ro
from harness.readouts import init_extra as rox
from harness.claimkit.registry import Registry, Thresholds

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = Registry.load(ROOT / "claims").claims


def th(claim: str) -> Thresholds:
    """The claim's thresholds as its YAML declares them."""
    return CLAIMS[claim].thresholds

SEEDS = (0, 1, 2)
ARRANGEMENTS = {HOLDS: (True, True, True), REFUTED: (False, False, False), INCONCLUSIVE: (False, True, True)}
LAYERS = list(range(1, 10))  # conv layers 1..9 of a fake net


def fake(**fields):
    """A pass with only the fields a readout reads; ``layers`` comes from ``channel_mean``."""
    fields.setdefault("channel_mean", {k: np.ones(4) for k in LAYERS})
    p = SimpleNamespace(**fields)
    p.layers = sorted(p.channel_mean)
    return p


def by_seed(make, flags):
    """{seed: [one pass]} with ``make(seed, as_claimed)``."""
    return {s: [make(s, ok)] for s, ok in zip(SEEDS, flags)}


def rng(seed, salt=0):
    return np.random.default_rng(1000 * salt + seed)


# --- fakes per statistic ------------------------------------------------------------------------

def grads(scale, seed, salt=0, layer=5):
    return fake(weight_grad={layer: scale * rng(seed, salt).standard_normal((8, 8, 3, 3))})


def tails(heavy, seed, salt=0):
    """Laplace-distributed gradients (excess kurtosis 3) or Gaussian ones (0)."""
    g = rng(seed, salt).laplace(size=(16, 16, 3, 3)) if heavy else rng(seed, salt).standard_normal((16, 16, 3, 3))
    return fake(weight_grad={5: g})


def moments(growth_mean, growth_var, seed, top_var=None):
    """Channel |means| growing ×10^growth_mean per layer, variances ×10^growth_var; ``top_var`` sets
    the largest top-layer channel's variance."""
    r = rng(seed, 7)
    mean = {k: 0.5 * 10 ** (growth_mean * (k - 1)) * (1 + 0.05 * r.random(4)) for k in LAYERS}
    var = {k: 10 ** (growth_var * (k - 1)) * (1 + 0.05 * r.random(4)) for k in LAYERS}
    if top_var is not None:
        var[LAYERS[-1]][0] = top_var
    return fake(channel_mean=mean, channel_var=var)


def logits(biased, seed, favoured, n=64, salt=0, noise=0.01):
    """Logits of n images: a large input-independent bias on ``favoured`` (input noise ``noise``), or input-dependent."""
    r = rng(seed, salt)
    z = r.standard_normal((n, 10)) * (noise if biased else 1.5)
    z[:, favoured] += 8.0 if biased else 0.8
    return z, r.integers(0, 10, n)


def output_pass(biased, seed, favoured, salt=0, noise=0.01, **more):
    z, y = logits(biased, seed, favoured, salt=salt, noise=noise)
    return fake(logits=z, labels=y, **more)


def table(ratio, seed, layers=(18, 54, 90), rows=None):
    """Table 1 rows with Σ|d| / |Σd| = ratio (× a little seed noise), or the given rows."""
    r = rng(seed, 3)
    out = {}
    for i, k in enumerate(layers):
        total, rr = (rows[i], 1.0) if rows else (1e-4 * (i + 1), ratio * (1 + 0.02 * r.random()))
        out[k] = {"sum_bxy_abs": total * rr if rows else total, "abs_sum_bxy": total if rows else total / rr,
                  "sum_b_abs_sum_xy": total / 2, "sum_xy_abs_sum_b": total / 2}
    return fake(table1=out)


# --- the readouts, each as (as_claimed per seed) → Readout --------------------------------------

def _grad_scale(flags):
    return ro.grad_scale(by_seed(lambda s, ok: grads(100.0 if ok else 2.0, s), flags),
                         by_seed(lambda s, ok: grads(1.0, s, 1), flags), 5, th("B-GRAD-SCALE"))


def _grad_tails(flags):
    return ro.grad_tails(by_seed(lambda s, ok: tails(ok, s), flags), by_seed(lambda s, ok: tails(not ok, s, 1), flags), 5,
                         th("B-GRAD-TAILS"))


def _moment_depth(flags):
    return ro.moment_depth(by_seed(lambda s, ok: moments(0.25 if ok else 0.0, 0.3 if ok else 0.0, s), flags),
                           by_seed(lambda s, ok: moments(0.0, 0.02, s + 10), flags), th("B-MOM-DEPTH"))


def _output_bias(flags):
    # each seed favours its own class: pooling the seeds' images would pick the wrong j′ for two of them
    return ro.output_bias(by_seed(lambda s, ok: output_pass(ok, s, favoured=2 + s), flags),
                          by_seed(lambda s, ok: output_pass(False, s, favoured=5, salt=1), flags), th("B-OUT-BIAS"))


def _output_mask(flags):
    def make(s, ok, ratio):
        grad = np.full(10, 0.01) * (1 + 0.1 * rng(s, 4).random(10))
        grad[2 + s] = 0.01 * ratio
        return output_pass(True, s, favoured=2 + s, class_grad=grad)
    return ro.output_mask(by_seed(lambda s, ok: make(s, ok, 50.0 if ok else 2.0), flags),
                          by_seed(lambda s, ok: make(s, ok, 1.5), flags), th("B-OUT-MASK"))


def _t1_align(flags):
    return ro.t1_align(by_seed(lambda s, ok: table(1.8 if ok else 5.0, s), flags), by_seed(lambda s, ok: table(100.0, s), flags),
                       (18, 54, 90), th("B-T1-ALIGN"))


def _t1_trend(flags):
    def make(s, ok):
        values = [1e-4, 2e-4 * (1 + 0.1 * s), 3e-4] if ok else [3e-4, 2e-4 * (1 + 0.1 * s), 2.5e-4]
        return fake(table1={k: {"sum_bxy_abs": v * (1 + 0.01 * s)} for k, v in zip((18, 54, 90), values)})
    return ro.t1_trend(by_seed(make, flags), (18, 54, 90), "sum_bxy_abs", th("R1-T1-TREND"))


def _low_rank(flags):
    def make(s, structured, salt=0):
        r = rng(s, salt)
        m = np.outer(r.lognormal(0, 1, 16), r.lognormal(0, 1, 16)) if structured else r.random((16, 16))
        return fake(weight_grad={9: m[:, :, None, None] * np.ones((1, 1, 3, 3)) / 9})
    return ro.low_rank(by_seed(make, flags), by_seed(lambda s, ok: make(s, False, 5), flags), 9, th("B-LOWRANK"))


def _mean_grad(flags):
    def make(s, dependent, salt=0):
        r = rng(s, salt)
        mean = r.standard_normal(8)
        scale = np.exp(2 * mean)[None, :, None, None] if dependent else 1.0
        return fake(slot_mean={2: mean}, weight_grad={3: scale * np.abs(r.standard_normal((8, 8, 3, 3)))})
    return rox.mean_grad(by_seed(make, flags), by_seed(lambda s, ok: make(s, False, 1), flags), 3, 8, th("B-MEAN-GRAD"))


def _layer_grad(flags):
    def make(s, decades):
        r = rng(s, 6)
        return fake(channel_grad={k: 10 ** (-decades * (k - 1) / (len(LAYERS) - 1)) * (1 + 0.1 * r.random(4)) for k in LAYERS})
    return rox.layer_grad(by_seed(lambda s, ok: make(s, 2.5), flags),
                         by_seed(lambda s, ok: make(s + 10, 0.3 if ok else 2.4), flags), th("B-LAYER-GRAD"))


def _act_hist(flags, layers=(9, 45, 81, 83)):
    def make(s, share_first, share_last):
        def acts(share):
            f = np.full(100, 0.5)
            f[: round(100 * share)] = 0.99
            return SimpleNamespace(positive_fraction=f, bimodality=np.full(100, 0.4))
        shares = np.linspace(share_first, share_last, len(layers))
        return fake(activations={k: acts(v) for k, v in zip(layers, shares)})
    return rox.act_hist(by_seed(lambda s, ok: make(s, 0.1 + 0.05 * s, 0.4 + 0.1 * s) if ok else make(s, 0.4 + 0.1 * s, 0.1 + 0.05 * s), flags),
                       by_seed(lambda s, ok: make(s, 0.0, 0.01 * s), flags), list(layers), th("B-ACT-HIST"))


def _top_grad(flags):
    return rox.top_grad(by_seed(lambda s, ok: grads(100.0, s, 2, layer=55), flags), by_seed(lambda s, ok: grads(1.0, s, 1, layer=55), flags),
                       by_seed(lambda s, ok: grads(1.5 if ok else 0.01, s, 1, layer=55), flags), 55, th("B-TOP-GRAD"))


def _bias_fix(flags):
    def make(s, biased, noise=0.01):
        m = moments(0.25, 0.3, s)
        return output_pass(biased, s, favoured=2 + s, salt=2, noise=noise, channel_mean=m.channel_mean, channel_var=m.channel_var)
    # a fix that fails leaves the output gradient about as input-independent: twice the CV, not ten times
    return rox.bias_fix(by_seed(lambda s, ok: make(s, True), flags),
                       by_seed(lambda s, ok: make(s, False) if ok else make(s, True, noise=0.02 + 0.005 * s), flags), th("X-BIASFIX"))


def _radial(flags):
    def make(s, radial_, salt=0):
        r = rng(s, salt)
        w = {k: r.standard_normal((4, 4, 3, 3)) for k in LAYERS}
        g = {k: (2 * w[k] + 0.1 * r.standard_normal(w[k].shape)) if radial_ else r.standard_normal(w[k].shape) for k in LAYERS}
        return fake(weight=w, weight_grad=g)
    return rox.radial(by_seed(make, flags), by_seed(lambda s, ok: make(s, False, 1), flags), th("X-RADIAL"))


def _residual_scale(flags):
    def make(s, slope):
        blocks = np.arange(1, 19)
        r = rng(s, 8)
        return fake(branch_var=blocks ** slope * (1 + 0.05 * r.random(18)), skip_var=np.ones(18))
    return rox.residual_scale(by_seed(lambda s, ok: make(s, 0.0), flags),
                             by_seed(lambda s, ok: make(s, -1.0 if ok else 0.0), flags), th("X-RESIDUAL-SCALE"))


def _noskip(flags):
    depths = [4, 8, 16, 32]
    bn = np.array([[(1.2 + 0.01 * s if ok else 0.9 + 0.01 * s) ** d for s, ok in zip(SEEDS, flags)] for d in depths])
    return rox.noskip_explode(bn, np.full((4, 3), 0.5), depths, SEEDS, th("X-NOSKIP-EXPLODE"))


READOUTS = {"B-GRAD-SCALE": _grad_scale, "B-GRAD-TAILS": _grad_tails, "B-MOM-DEPTH": _moment_depth, "B-OUT-BIAS": _output_bias,
            "B-OUT-MASK": _output_mask, "B-T1-ALIGN": _t1_align, "R1-T1-TREND": _t1_trend, "B-LOWRANK": _low_rank,
            "B-MEAN-GRAD": _mean_grad, "B-LAYER-GRAD": _layer_grad, "B-ACT-HIST": _act_hist, "B-TOP-GRAD": _top_grad,
            "X-BIASFIX": _bias_fix, "X-RADIAL": _radial, "X-RESIDUAL-SCALE": _residual_scale, "X-NOSKIP-EXPLODE": _noskip}


@pytest.mark.parametrize("verdict", list(ARRANGEMENTS))
@pytest.mark.parametrize("claim", list(READOUTS))
def test_readout_decides_on_the_seeds(claim, verdict):
    readout = READOUTS[claim](ARRANGEMENTS[verdict])
    assert readout.verdict == verdict, readout.decision.summary
    assert all(len(c.values) == len(SEEDS) for c in readout.conditions)
    text = f"{readout.summary}; {readout.decision.summary}"
    assert not any(bad in text for bad in ("inf", "nan")), text


# "BN made the identity": the unnormalized passes stand in for BN's
IDENTITY = {
    "B-GRAD-SCALE": lambda n: ro.grad_scale(n, n, 5, th("B-GRAD-SCALE")),
    "B-GRAD-TAILS": lambda n: ro.grad_tails(n, n, 5, th("B-GRAD-TAILS")),
    "B-MOM-DEPTH": lambda n: ro.moment_depth(n, n, th("B-MOM-DEPTH")),
    "B-OUT-BIAS": lambda n: ro.output_bias(n, n, th("B-OUT-BIAS")),
    "B-OUT-MASK": lambda n: ro.output_mask(n, n, th("B-OUT-MASK")),
    "B-T1-ALIGN": lambda n: ro.t1_align(n, n, (18, 54, 90), th("B-T1-ALIGN")),
    "B-LOWRANK": lambda n: ro.low_rank(n, n, 9, th("B-LOWRANK")),
    "B-MEAN-GRAD": lambda n: rox.mean_grad(n, n, 3, 8, th("B-MEAN-GRAD")),
    "B-LAYER-GRAD": lambda n: rox.layer_grad(n, n, th("B-LAYER-GRAD")),
    "B-ACT-HIST": lambda n: rox.act_hist(n, n, [9, 45, 81, 83], th("B-ACT-HIST")),
    "B-TOP-GRAD": lambda n: rox.top_grad(n, n, n, 5, th("B-TOP-GRAD")),  # BN and BN on top both the identity
    "X-RADIAL": lambda n: rox.radial(n, n, th("X-RADIAL")),
    "X-RESIDUAL-SCALE": lambda n: rox.residual_scale(n, n, th("X-RESIDUAL-SCALE")),
}


def _unnormalized(claim):
    """The holds case's unnormalized passes of a claim, with every field the readouts read."""
    def make(s, ok):
        m = moments(0.25, 0.3, s)
        grad = np.full(10, 0.01)
        grad[2 + s] = 0.5
        z, y = logits(True, s, 2 + s)
        w = {k: rng(s, 9).standard_normal((16, 16, 3, 3)) for k in LAYERS}
        mean = rng(s, 10).standard_normal(16)
        g = {k: np.exp(2 * mean)[None, :, None, None] * rng(s, 11).laplace(size=(16, 16, 3, 3)) ** 3 for k in LAYERS}
        return fake(channel_mean=m.channel_mean, channel_var=m.channel_var, logits=z, labels=y, class_grad=grad,
                    table1=table(1.8, s).table1, weight=w, weight_grad=g, slot_mean={2: mean},
                    channel_grad={k: 10 ** (-2.5 * (k - 1) / 8) * np.ones(4) for k in LAYERS},
                    activations=_act_hist_fields(s), branch_var=np.arange(1, 19) ** -0.1, skip_var=np.ones(18))
    return by_seed(make, ARRANGEMENTS[HOLDS])


def _act_hist_fields(seed):
    f = {k: np.full(20, 0.5) for k in (9, 45, 81, 83)}
    for i, k in enumerate(f):
        f[k][: 2 + 3 * i] = 0.99
    return {k: SimpleNamespace(positive_fraction=v, bimodality=np.full(20, 0.4)) for k, v in f.items()}


@pytest.mark.parametrize("claim", list(IDENTITY))
def test_bn_made_the_identity_never_holds(claim):
    readout = IDENTITY[claim](_unnormalized(claim))
    assert readout.verdict != HOLDS, readout.decision.summary


def test_favoured_class_is_found_per_seed():
    readout = _output_bias(ARRANGEMENTS[HOLDS])
    assert [s["favoured_class"] for s in readout.values["none"]] == [2, 3, 4]
    assert max(s["cv"] for s in readout.values["none"]) < 0.01
    # pooled over the three networks, one j′ would serve all: two of them hardly predict it, and
    # the CV of p(j′) across their images is no longer "nearly the same"
    passes = by_seed(lambda s, ok: output_pass(True, s, favoured=2 + s), ARRANGEMENTS[HOLDS])
    pooled = ro.output_bias_seed([p for s in SEEDS for p in passes[s]])
    assert pooled["share_predicted"] < 0.5 and pooled["cv"] > 1


def test_output_bias_cv_zero_stays_finite():
    # logits that agree for every image (an unnormalized net at float32 precision): CV exactly 0
    seeds = range(6)  # CV exactly 0 on every seed: no spread, so the seeds decide as yes/no outcomes (six needed)
    none = {s: [fake(logits=np.tile(np.r_[40.0 + s, np.zeros(9)], (32, 1)), labels=np.arange(32) % 10)] for s in seeds}
    bn = {s: [output_pass(False, s, favoured=0, salt=1)] for s in seeds}
    stats = ro.output_bias_seed(none[0])
    assert stats["cv"] < 1e-15 and stats["favoured_class"] == 0
    readout = ro.output_bias(none, bn, th("B-OUT-BIAS"))
    assert max(readout.values["none_over_bn_cv"]) < 1e-15
    assert readout.verdict == HOLDS and "inf" not in readout.decision.summary
    assert ro.cv_share(0.0, 0.0) == 1.0 and ro.cv_share(0.5, 0.1) == 1.0 and ro.cv_share(0.01, 0.2) == pytest.approx(0.05)


def test_moment_depth_reads_the_top_channel_std_not_its_variance():
    # top channel variance 3e4 (std 173) with |means| below 10: the std is within [10, 1e3]
    none = by_seed(lambda s, ok: moments(0.145, 0.3, s, top_var=3e4 * (1 + s)), ARRANGEMENTS[HOLDS])
    bn = by_seed(lambda s, ok: moments(0.0, 0.02, s + 10), ARRANGEMENTS[HOLDS])
    readout = ro.moment_depth(none, bn, th("B-MOM-DEPTH"))
    assert max(readout.values["top_channel_none"]["abs_mean"]) < 10
    assert readout.values["top_channel_none"]["std"] == pytest.approx([math.sqrt(3e4 * (1 + s)) for s in SEEDS])
    assert readout.verdict == HOLDS, readout.decision.summary
    # a top channel of variance 1e8 (std 1e4) and |mean| 1e4 is out of the band either way
    big = by_seed(lambda s, ok: moments(0.5, 1.0, s, top_var=1e8), ARRANGEMENTS[HOLDS])
    assert ro.moment_depth(big, bn, th("B-MOM-DEPTH")).verdict == REFUTED
    band = th("B-MOM-DEPTH")["top_scale"]
    assert ro.decades_outside(100, band) == pytest.approx(-1) and ro.decades_outside(1e4, band) == pytest.approx(1)


def test_t1_align_paper_table_meets_the_one_figure_reading():
    # the paper's Table 1 (none: 1.74, 2.62, 2.11 → 2.13; BN 252, 113, 41) meets ≤ 2.5 and ≥ 10,
    # and would fail the old ≤ 2
    def paper(ratios):
        return lambda s, ok: fake(table1={k: {"sum_bxy_abs": r * (1 + 0.01 * s), "abs_sum_bxy": 1.0} for k, r in zip((18, 54, 90), ratios)})
    none, bn = by_seed(paper((1.74, 2.62, 2.11)), ARRANGEMENTS[HOLDS]), by_seed(paper((252, 113, 41)), ARRANGEMENTS[HOLDS])
    readout = ro.t1_align(none, bn, (18, 54, 90), th("B-T1-ALIGN"))
    assert readout.values["abs_sum_bxy"]["none"][0] == pytest.approx(2.13, abs=0.01)
    assert readout.verdict == HOLDS
    assert ro.t1_align(none, bn, (18, 54, 90), Thresholds({**th("B-T1-ALIGN"), "max_none": 2.0})).verdict == REFUTED


def test_per_layer_factors_fit_each_seed():
    depths = [4, 8, 16]
    norms = np.array([[1.2 ** d, 1.1 ** d] for d in depths])
    assert rox.per_layer_factors(norms, depths) == pytest.approx([1.2, 1.1])
    with pytest.raises(ValueError, match="positive"):
        rox.per_layer_factors(np.zeros((3, 2)), depths)
    with pytest.raises(ValueError, match="depths"):
        rox.per_layer_factors(norms, [4, 8])


def test_readouts_reject_mismatched_or_empty_seeds():
    p = grads(1.0, 0)
    with pytest.raises(ValueError, match="different seeds"):
        ro.grad_scale({0: [p], 1: [p]}, {0: [p]}, 5, th("B-GRAD-SCALE"))
    with pytest.raises(ValueError, match="no seeds"):
        ro.grad_scale({}, {}, 5, th("B-GRAD-SCALE"))
    with pytest.raises(ValueError, match="seed 1: no passes"):
        ro.grad_scale({0: [p], 1: []}, {0: [p], 1: [p]}, 5, th("B-GRAD-SCALE"))
    zero = fake(weight_grad={5: np.zeros((2, 2, 3, 3))})
    with pytest.raises(ValueError, match="positive finite"):
        ro.grad_scale({0: [p]}, {0: [zero]}, 5, th("B-GRAD-SCALE"))


# --- the thresholds come from the claims' YAML, all of them and only them ------------------------

class _Recording(Thresholds):
    """A claim's thresholds that remember which names were read."""

    def __init__(self, base: Thresholds):
        super().__init__(dict(base), base.claim)
        self.read: set[str] = set()

    def __getitem__(self, name: str):
        self.read.add(name)
        return super().__getitem__(name)


@pytest.mark.parametrize("claim", list(READOUTS))
def test_readout_reads_every_declared_threshold(claim, monkeypatch):
    seen = {}

    def recording(c):
        seen[c] = _Recording(CLAIMS[c].thresholds)
        return seen[c]
    monkeypatch.setitem(globals(), "th", recording)
    READOUTS[claim](ARRANGEMENTS[HOLDS])
    assert list(seen) == [claim]
    declared = set(CLAIMS[claim].thresholds)
    assert seen[claim].read == declared, f"declared {sorted(declared)}, read {sorted(seen[claim].read)}"


@pytest.mark.parametrize("claim", [c for c in READOUTS if CLAIMS[c].thresholds])
def test_readout_without_its_thresholds_names_the_claim(claim, monkeypatch):
    monkeypatch.setitem(globals(), "th", lambda c: Thresholds({}, c))
    with pytest.raises(KeyError, match=f"claim {claim} declares no threshold"):
        READOUTS[claim](ARRANGEMENTS[HOLDS])


def test_a_threshold_moves_the_decision():
    # the same statistics decide otherwise under another number: the readouts hold none of their own
    holds = _grad_scale(ARRANGEMENTS[HOLDS])
    assert holds.verdict == HOLDS
    none = by_seed(lambda s, ok: grads(100.0, s), ARRANGEMENTS[HOLDS])
    bn = by_seed(lambda s, ok: grads(1.0, s, 1), ARRANGEMENTS[HOLDS])
    assert ro.grad_scale(none, bn, 5, Thresholds({"min_ratio": 1e3}, "B-GRAD-SCALE")).verdict == REFUTED
    flat = by_seed(lambda s, ok: fake(branch_var=np.arange(1, 19) ** (-1.0 - 0.02 * s), skip_var=np.ones(18)), ARRANGEMENTS[HOLDS])
    level = by_seed(lambda s, ok: fake(branch_var=np.arange(1, 19) ** (0.02 * s), skip_var=np.ones(18)), ARRANGEMENTS[HOLDS])
    assert rox.residual_scale(level, flat, th("X-RESIDUAL-SCALE")).verdict == HOLDS
    moved = Thresholds({**th("X-RESIDUAL-SCALE"), "bn_slope_band": [-0.9, -0.5]}, "X-RESIDUAL-SCALE")
    assert rox.residual_scale(level, flat, moved).verdict == REFUTED


# --- bad input is a clear error ------------------------------------------------------------------

def test_readouts_reject_undefined_statistics():
    one = {0: [grads(1.0, 0)]}
    const = {0: [fake(weight_grad={5: np.zeros((4, 4, 3, 3))})]}
    with pytest.raises(ValueError, match="kurtosis undefined"):
        ro.grad_tails(one, const, 5, th("B-GRAD-TAILS"))
    zero55 = {0: [fake(weight_grad={55: np.zeros((4, 4, 3, 3))})]}
    g55 = {0: [grads(1.0, 0, layer=55)]}
    with pytest.raises(ValueError, match="positive finite"):
        rox.top_grad(g55, g55, zero55, 55, th("B-TOP-GRAD"))
    # every image labelled with the favoured class: no image to measure ∂L_b/∂z_j′ on
    z = np.tile(np.r_[5.0, np.zeros(9)], (16, 1))
    all_j = {0: [fake(logits=z, labels=np.zeros(16, dtype=int))]}
    with pytest.raises(ValueError, match="fewer than two images"):
        ro.output_bias(all_j, all_j, th("B-OUT-BIAS"))
    with pytest.raises(ValueError, match="non-negative"):
        ro.cv_share(-0.1, 0.2)
    unmasked = {0: [output_pass(True, 0, favoured=2, class_grad=None)]}
    with pytest.raises(ValueError, match="class masking"):
        ro.output_mask(unmasked, unmasked, th("B-OUT-MASK"))
    nothing = {0: [table(2.0, 0, rows=[0.0, 0.0, 0.0])]}
    with pytest.raises(ValueError, match="positive finite"):
        ro.t1_align(nothing, nothing, (18, 54, 90), th("B-T1-ALIGN"))
    zero9 = {0: [fake(weight_grad={9: np.zeros((4, 4, 3, 3))})]}
    with pytest.raises(ValueError, match="channel matrix is zero"):
        ro.low_rank(zero9, zero9, 9, th("B-LOWRANK"))
    dead = {0: [fake(channel_grad={k: np.zeros(4) for k in LAYERS})]}
    with pytest.raises(ValueError, match="scale is 0"):
        rox.layer_grad(dead, dead, th("B-LAYER-GRAD"))
    no_branch = {0: [fake(branch_var=np.zeros(18), skip_var=np.ones(18))]}
    with pytest.raises(ValueError, match="0 or undefined"):
        rox.residual_scale(no_branch, no_branch, th("X-RESIDUAL-SCALE"))
    with pytest.raises(ValueError, match="seed columns"):
        rox.noskip_explode(np.ones((3, 2)) * [[1.0], [2.0], [4.0]], np.ones((3, 2)), [4, 8, 16], SEEDS, th("X-NOSKIP-EXPLODE"))
    with pytest.raises(ValueError, match="depths"):
        rox.noskip_explode(np.ones((2, 3)), np.ones((2, 3)), [4, 8, 16], SEEDS, th("X-NOSKIP-EXPLODE"))
