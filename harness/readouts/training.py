"""bjorck2018 in training: from runs (LR searches, final accuracies, diverging updates) to verdicts.

Every claim of claims/bjorck2018_training.yaml decides here, on what its test measured:

- the LR claims (Tables 2, 3; App. G, H, J) read the highest achievable LR of each net on each seed
  (:class:`harness.lr_search.LRSearch`) and decide on a yes/no per seed: an ordering of the nets, or
  a net's LR equal to the paper's. A grid LR has no continuous margin, so these decide by the
  share of seeds that show it (``Condition.most_seeds``: a typical seed, under the sequential sign
  test). A net with no achievable LR on the grid ranks below every grid LR;
- the generalization claims (§2, Fig. 1) read final test accuracies (or losses), one per seed, and
  decide on the 95% interval of the seed mean of a paired difference (harness.claimkit.evidence). A seed
  whose full run diverged has no value (NaN): the test then makes the claim inconclusive
  (``Verdict.finite``) before deciding, as the conditions cannot be decided on it;
- the few-step claims (App. J, §3.4, App. N) read whether short runs diverged, the loss and the
  channel moments along each seed's diverging update, and how far the loss decreases along the
  gradient, per seed;
- B-SGD-NOISE reads the exponents of an exact expectation: a single yes/no, no seed interval.

Each function returns a :class:`Readout` whose values are recorded under the keys the claim's
report has always used; every number a decision compares with comes from ``thresholds`` (the
claim's YAML ``thresholds``, fixed from the paper's words before measuring). LRs that say which
runs were made (BN at 0.1, both nets at 1e-4) are arguments, used for labels only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.claimkit.evidence import Condition, Readout
from harness.readouts import paper_num
from harness.claimkit.registry import Thresholds

if TYPE_CHECKING:
    from harness.lr_search import LRSearch

    Searches = Sequence[LRSearch]  # one net's LR search per seed, in seed order

TOP_LR_NETS = ("BN", "top only", "none")
PARTS_FULL = ("γ, β, μ, σ²", "γ, μ, σ²", "β, μ, σ²", "μ, σ²")  # Table 2's rows that keep both μ and σ²
PARTS_ROWS = (*PARTS_FULL, "σ²", "μ", "none")


# --- formatting and shared helpers --------------------------------------------------------------

def fmt_lr(value: float | None) -> str:
    """A max LR as the report shows it: '0.1', or 'none on grid'."""
    return "none on grid" if value is None else f"{value:g}"


def fmt_lrs(searches: Searches) -> str:
    """Max LR per seed: '0.1, 0.1, 0.003'."""
    return ", ".join(fmt_lr(s.max_lr) for s in searches)


def _fraction(x: float) -> str:
    return {0.5: "½", 1 / 3: "⅓", 2 / 3: "⅔"}.get(x, paper_num(x))


def _key(lr: float) -> str:
    """An LR in a record key: 0.1 → '0_1', 1e-4 → '1e_4'."""
    return paper_num(lr).replace(".", "_").replace("-", "_")


def rank(lr: float | None) -> float:
    """Max LRs compared with 'no achievable LR' below every grid value."""
    return 0.0 if lr is None else lr


def search_record(searches: Searches) -> dict:
    """One net's searches as recorded: max LR and the trials per seed."""
    return {"max_lr": [s.max_lr for s in searches],
            "trials": [[f"{t.lr:g}: {t.status} after {t.steps_done} steps" for t in s.trials] for s in searches]}


def _mean(values) -> float:
    """Seed mean for a summary, skipping a seed without a value (its run diverged)."""
    return float(np.nanmean(values))


def _same_seeds(*per_seed: Sequence, what: str) -> int:
    """The number of seeds, which every list must share (at least one)."""
    sizes = {len(v) for v in per_seed}
    if len(sizes) != 1 or not sizes.pop():
        raise ValueError(f"{what}: need one value per seed for every net, got {[len(v) for v in per_seed]}")
    return len(per_seed[0])


def _paired(a: Sequence[float], b: Sequence[float], what: str) -> np.ndarray:
    """a − b, paired by seed (NaN where a seed has no value)."""
    _same_seeds(a, b, what=what)
    return np.asarray(a, dtype=float) - np.asarray(b, dtype=float)


def _ordered(*searches: Searches) -> list[bool]:
    """Per seed: the nets' max LRs strictly increase in the order given."""
    _same_seeds(*searches, what="max LR ordering")
    ranks = [[rank(s.max_lr) for s in ss] for ss in searches]
    return [all(a < b for a, b in zip(lrs, lrs[1:])) for lrs in zip(*ranks)]


def _need_keys(mapping: Mapping, keys: Sequence, what: str) -> None:
    if set(mapping) != set(keys):
        raise ValueError(f"{what}: need exactly {list(keys)}, got {list(mapping)}")


# --- §2, Table 2; App. J ------------------------------------------------------------------------

def lr_max(bn: Searches, none: Searches, thresholds: Thresholds) -> Readout:
    """B-LR-MAX: per seed, BN's highest achievable LR is ``bn_max_lr``; BN's over the unnormalized
    net's is ≥ ``min_lr_ratio`` (no achievable LR unnormalized: ratio ∞; none with BN: 0); and the
    unnormalized net's trial at ``none_diverges_at`` diverged (at chance is recorded, and fails)."""
    _same_seeds(bn, none, what="B-LR-MAX")
    top, min_ratio, fail_lr = thresholds["bn_max_lr"], thresholds["min_lr_ratio"], thresholds["none_diverges_at"]
    ratios = [b.max_lr / n.max_lr if b.max_lr and n.max_lr else (np.inf if b.max_lr else 0.0) for b, n in zip(bn, none)]
    # §3.4: a too large LR "invariably" makes the unnormalized loss explode; at chance is not that
    failures = [next((t.status for t in n.trials if t.lr == fail_lr), "not run") for n in none]
    return Readout({"bn": search_record(bn), "none": search_record(none), "ratio": ratios, f"none_at_{_key(fail_lr)}": failures},
                   (Condition.most_seeds(f"BN's max LR is {paper_num(top)}", [b.max_lr == top for b in bn]),
                    Condition.most_seeds(f"BN/unnormalized max LR ≥ {paper_num(min_ratio)}", [r >= min_ratio for r in ratios]),
                    Condition.most_seeds(f"unnormalized diverges at {paper_num(fail_lr)}", [f == "diverged" for f in failures])),
                   f"max LR per seed: BN {fmt_lrs(bn)}, unnormalized {fmt_lrs(none)}; unnormalized at {paper_num(fail_lr)}: "
                   f"{', '.join(failures)}")


def extreme_lrs(runs: Mapping[float, Sequence[Any]], steps: int, thresholds: Thresholds) -> Readout:
    """B-LR-EXTREME: BN's short runs at two constant LRs, one run per seed (objects with
    ``diverged``, ``diverged_at`` and ``losses``, like harness.train's TrainResult): per seed, no
    divergence at the lower LR (3.0) and divergence at the higher (10.0). Divergence (batch loss
    > 1e3 or non-finite) is the training loop's; the LRs are the runs the test made, so the claim
    has no number of its own to compare with."""
    if len(runs) != 2:
        raise ValueError(f"B-LR-EXTREME: need runs at exactly two LRs, got {list(runs)}")
    low, high = sorted(runs)
    _same_seeds(runs[low], runs[high], what="B-LR-EXTREME")

    def outcome(lr: float) -> str:
        return ", ".join(f"step {r.diverged_at}" if r.diverged else "none" for r in runs[lr])

    return Readout({f"lr_{lr:g}": {"diverged_at": [r.diverged_at for r in runs[lr]],
                                   "max_loss": [max(r.losses) for r in runs[lr]]} for lr in (low, high)},
                   (Condition.most_seeds(f"no divergence at {low}", [not r.diverged for r in runs[low]]),
                    Condition.most_seeds(f"divergence at {high}", [r.diverged for r in runs[high]])),
                   f"divergence within {steps} steps per seed: LR {low} {outcome(low)}; LR {high} {outcome(high)}")


# --- §2, Fig. 1 ---------------------------------------------------------------------------------

def high_lr_generalization(bn: Sequence[float], none: Sequence[float], none_best_lr: Sequence[float], bn_lr: float,
                           thresholds: Thresholds) -> Readout:
    """B-GEN-HIGHLR: final test accuracy of BN at ``bn_lr`` (0.1) minus the unnormalized net's at
    its own highest achievable LR, paired by seed, > ``min_difference`` on the seed interval."""
    diff = _paired(bn, none, "B-GEN-HIGHLR")
    lr, best = paper_num(bn_lr), ", ".join(f"{x:g}" for x in none_best_lr)
    return Readout({f"bn_at_{_key(bn_lr)}": bn, "none_at_best": none, "none_best_lr": list(none_best_lr),
                    "difference": diff.tolist()},
                   (Condition.at_least(f"test acc BN@{lr} − unnormalized@best", diff, thresholds["min_difference"],
                                       strict=True),),
                   f"test acc BN@{lr} {_mean(bn):.3f} vs unnormalized at its best LR ({best}) {_mean(none):.3f}")


def low_lr_no_better(bn: Sequence[float], none: Sequence[float], lr: float, thresholds: Thresholds) -> Readout:
    """B-GEN-LOWLR: final test accuracy of BN minus the unnormalized net's, both at ``lr`` (1e-4),
    paired by seed, ≤ ``max_difference`` ("barely reaches") on the seed interval."""
    at = paper_num(lr)
    return Readout({f"bn_at_{_key(lr)}": bn, f"none_at_{_key(lr)}": none},
                   (Condition.at_most(f"test acc BN@{at} − unnormalized@{at}", _paired(bn, none, "B-GEN-LOWLR"),
                                      thresholds["max_difference"]),),
                   f"test acc at {at}: BN {_mean(bn):.3f}, unnormalized {_mean(none):.3f}")


def mid_lr_between(acc: Mapping[float, Sequence[float]], thresholds: Thresholds) -> Readout:
    """B-GEN-MIDLR: BN's final test accuracy at three LRs (1e-4, 0.003, 0.1), one per seed: the
    middle LR's minus the lowest's, and the highest's minus the middle's, paired by seed, each
    ≥ ``min_difference`` on the seed interval."""
    if len(acc) != 3:
        raise ValueError(f"B-GEN-MIDLR: need accuracies at exactly three LRs, got {list(acc)}")
    low, mid, high = sorted(acc)
    arrays = {lr: np.asarray(acc[lr], dtype=float) for lr in acc}
    at_least = thresholds["min_difference"]

    def step(a: float, b: float) -> Condition:
        return Condition.at_least(f"BN acc@{paper_num(a)} − acc@{paper_num(b)}", _paired(acc[a], acc[b], "B-GEN-MIDLR"), at_least)

    return Readout({"test_acc": {f"{lr:g}": a for lr, a in arrays.items()}},
                   (step(mid, low), step(high, mid)),
                   "BN test acc " + " ≤ ".join(f"{a.mean():.3f} (LR {lr:g})" for lr, a in arrays.items()))


def gap_larger_at_low_lr(gap: Mapping[float, Sequence[float]], thresholds: Thresholds) -> Readout:
    """B-GEN-GAP: BN's train − test accuracy gap at two LRs (0.003, 0.1), one per seed, each finite
    (the test makes a claim with a diverged run inconclusive first): the lower LR's gap exceeds the
    higher's, and is ≥ ``min_gap_ratio`` times it when the higher LR's gap is positive. Decided on
    the margin per seed, gap(low) − max(gap(high), ``min_gap_ratio`` · gap(high)), above
    ``min_gap_margin`` (0) on the seeds' interval."""
    if len(gap) != 2:
        raise ValueError(f"B-GEN-GAP: need gaps at exactly two LRs, got {list(gap)}")
    low, high = sorted(gap)
    _same_seeds(gap[low], gap[high], what="B-GEN-GAP")
    arrays = {lr: np.asarray(g, dtype=float) for lr, g in gap.items()}
    if not all(np.all(np.isfinite(a)) for a in arrays.values()):
        raise ValueError(f"B-GEN-GAP: every seed needs a finite gap, got {({lr: a.tolist() for lr, a in arrays.items()})}")
    ratio = thresholds["min_gap_ratio"]
    margin = [float(a - max(b, ratio * b)) for a, b in zip(arrays[low], arrays[high])]
    return Readout({"train_minus_test": {f"{lr:g}": a for lr, a in arrays.items()}, "margin": margin},
                   (Condition.at_least(f"gap({low:g}) − max(gap({high:g}), {ratio:g}·gap({high:g}))", margin,
                                       thresholds["min_gap_margin"], strict=True),),
                   f"train−test gap (seed mean): LR {low:g} {arrays[low].mean():+.3f}, LR {high:g} {arrays[high].mean():+.3f}")


def low_lr_training_loss(bn: Mapping[str, Sequence[float]], none: Mapping[str, Sequence[float]], lr: float,
                         thresholds: Thresholds) -> Readout:
    """R1-LOWLR-LOSS: final losses at ``lr`` (1e-4) of BN and of the unnormalized net
    (``{"train_loss": [...], "test_loss": [...]}``, one per seed): the unnormalized net's training
    loss minus BN's, paired by seed, > ``min_difference`` on the seed interval (the paper's side).
    The test losses are recorded, not decided on."""
    for name, losses in (("BN", bn), ("none", none)):
        _need_keys(losses, ("train_loss", "test_loss"), f"R1-LOWLR-LOSS ({name})")
    at = paper_num(lr)
    diff = _paired(none["train_loss"], bn["train_loss"], "R1-LOWLR-LOSS")
    return Readout({f"{n}_{k}": np.asarray(v[k], dtype=float) for n, v in (("BN", bn), ("none", none))
                    for k in ("train_loss", "test_loss")},
                   (Condition.at_least(f"train loss unnormalized − BN at {at}", diff, thresholds["min_difference"],
                                       strict=True),),
                   f"training loss at {at}: BN {_mean(bn['train_loss']):.3f}, unnormalized {_mean(none['train_loss']):.3f}")


# --- §2.1, Eq. 2 --------------------------------------------------------------------------------

def sgd_noise_exponents(batch_exponents: Sequence[float], lr_exponents: Sequence[float], covered: Sequence[bool], draws: int,
                        thresholds: Thresholds) -> Readout:
    """B-SGD-NOISE: the log–log exponents of the exact expected noise, in |B| at every α and in α
    at every |B|, each within ``exponent_tolerance`` of ``batch_exponent`` (−1, the paper's) and
    ``lr_exponent`` (2): one yes/no each (an exact computation, no seeds). ``covered`` (whether the
    Monte-Carlo interval holds the exact value, per |B|) is reported only."""
    if not len(batch_exponents) or not len(lr_exponents):
        raise ValueError("B-SGD-NOISE: need the exponents of |B| (one per α) and of α (one per |B|)")
    tol, b, a = thresholds["exponent_tolerance"], thresholds["batch_exponent"], thresholds["lr_exponent"]

    def exact(exponents: Sequence[float], expected: float) -> bool:
        return all(abs(e - expected) <= tol for e in exponents)  # one flag: an exact computation

    return Readout({"batch_exponent": list(batch_exponents), "lr_exponent": list(lr_exponents),
                    "monte_carlo_covers_exact": list(covered)},
                   (Condition.exact(f"exponent of |B| within {tol:g} of {b:g}", exact(batch_exponents, b)),
                    Condition.exact(f"exponent of α within {tol:g} of {a:g}", exact(lr_exponents, a))),
                   f"exact expectation: exponent of |B| {batch_exponents[0]:.6f} (paper −1, review −2), exponent of α "
                   f"{lr_exponents[0]:.6f}; Monte Carlo ({draws} draws per |B|): the exact value lies in the 99% BCa "
                   f"interval at {sum(covered)} of {len(covered)} batch sizes")


# --- §3.4, Figs. 5, 6; App. N, Fig. 24 ----------------------------------------------------------

EXPLODED = 1e30  # a non-finite value along a path counts as this large (an explosion), so ratios stay finite


def early_rise(t: Sequence[float], loss: Sequence[float], until: float) -> float:
    """The largest rise of the loss along a path up to ``until``: max over t ≤ ``until`` of
    loss(t) / min over s ≤ t of loss(s), the lowest point reached so far (a path may first dip far
    below its start, and a rise from there is a rise). A non-finite loss counts as
    :data:`EXPLODED`."""
    t, loss = np.asarray(t, dtype=float), np.asarray(loss, dtype=float)
    early = np.where(np.isfinite(loss), loss, EXPLODED)[t <= until]
    if early.size == 0 or not np.all(early > 0):
        raise ValueError(f"a path needs positive losses at t ≤ {until}, got {early.tolist()}")
    return float(np.max(early / np.minimum.accumulate(early)))


def diverging_path(updates: Mapping[int, Any], thresholds: Thresholds) -> Readout:
    """B-DIV-PATH: per seed, the update that made the unnormalized net diverge (``lr``, ``step`` and
    ``path`` = ``{"t": [...], "loss": [...]}``, the batch loss along θ + tΔ). The loss explodes at
    the end, loss(1) > ``divergence_loss`` or non-finite (a yes/no event per seed: a typical seed);
    and not near the start: its largest rise for t ≤ ``early_until`` over the lowest loss reached so
    far (:func:`early_rise`) ≤ ``max_early_growth``, on the seeds' interval (log scale)."""
    if not updates or any(u is None for u in updates.values()):
        raise ValueError(f"B-DIV-PATH: need a diverging update on every seed, got {dict(updates)}")
    explode, until, growth = thresholds["divergence_loss"], thresholds["early_until"], thresholds["max_early_growth"]
    rows, exploded, rises = {}, [], []
    for seed, update in updates.items():
        t, loss = np.asarray(update.path["t"]), np.asarray(update.path["loss"])
        rise = early_rise(t, loss, until)
        rows[str(seed)] = {"lr": update.lr, "step": update.step, "loss_t0": float(loss[0]), "loss_t1": float(loss[-1]),
                           "min_loss_first_half": float(np.min(np.where(np.isfinite(loss), loss, EXPLODED)[t <= until])),
                           "largest_rise_first_half": rise}
        exploded.append(not np.isfinite(loss[-1]) or loss[-1] > explode)
        rises.append(rise)
    return Readout({"per_seed": rows, "largest_rise_first_half": rises},
                   (Condition.most_seeds(f"loss(1) > {paper_num(explode)}", exploded),
                    Condition.at_most(f"largest rise of the loss for t ≤ {_fraction(until)} over its lowest so far", rises,
                                      growth, log=True)),
                   f"per seed loss(0) → lowest for t ≤ {_fraction(until)}, its largest rise there → loss(1): " + "; ".join(
                       f"{r['loss_t0']:.3g} → {r['min_loss_first_half']:.3g}, ×{r['largest_rise_first_half']:.3g} → {r['loss_t1']:.3g}"
                       for r in rows.values()))


def moment_growth(path: dict, moment: str) -> float:
    """One path's growth along the update (value at t = 1 over t = 0) of a channel moment ("mean"
    or "var"), geometric mean over the top third of the conv layers over that over the bottom third;
    a moment that is non-finite at t = 1 counts as exploded (:data:`EXPLODED`)."""
    layers = sorted(path["var"])
    third = len(layers) // 3
    if not third:
        raise ValueError(f"need at least three conv layers, got {layers}")
    g = np.asarray([path[moment][k][-1] / max(path[moment][k][0], 1 / EXPLODED) for k in layers])
    g = np.where(np.isfinite(g), np.maximum(g, 1 / EXPLODED), EXPLODED)
    return float(np.exp(np.mean(np.log(g[-third:])) - np.mean(np.log(g[:third]))))


def diverging_moments(paths: Sequence[dict], thresholds: Thresholds) -> Readout:
    """B-DIV-MOMENTS: per seed's diverging update (``path`` with ``{"mean"|"var": {layer: [...]}}``
    along t), :func:`moment_growth` of |channel mean| and of channel variance ≥ ``min_growth_ratio``,
    on the seed interval (log scale). No summary of its own: the conditions' intervals say it."""
    if not paths:
        raise ValueError("B-DIV-MOMENTS: no diverging update given")
    ratios = {m: [moment_growth(p, m) for p in paths] for m in ("mean", "var")}
    layers = sorted(paths[-1]["var"])
    return Readout({"growth_ratio_top_over_bottom": ratios,
                    "layers": f"conv layers 1..{layers[-1]} (paper numbering); thirds of {len(layers)}"},
                   tuple(Condition.at_least(f"{m} growth top/bottom third", ratios[m], thresholds["min_growth_ratio"], log=True)
                         for m in ("mean", "var")),
                   "")


def bn_decreasing_steps(lines: Mapping[tuple[str, int], Mapping[int, dict]], seeds: Sequence[int], batches: Sequence[int],
                        thresholds: Thresholds) -> Readout:
    """B-DIV-BN-STEP: per (net, seed), with net "BN" or "none", the gradient lines at the probed
    batches (``{batch: {"decreasing_until", "largest_decreasing_eta", "loss0", ...}}``,
    harness.probes.divergence.gradient_line). Per seed: at every batch BN's ``decreasing_until`` is
    ≥ ``min_step_ratio`` × the unnormalized net's (one that never decreases counts as 0; BN's must
    exist). Steps are points of a grid, so their ratios take few values and tie across seeds: a
    yes/no per seed, decided for a typical seed (the share of seeds, against one half)."""
    missing = [f"{n} seed {s}" for s in seeds for n in ("BN", "none") if lines.get((n, s)) is None]
    if missing:
        raise ValueError(f"B-DIV-BN-STEP: no gradient lines for {', '.join(missing)} (a run diverged before the batch?)")
    ratio = thresholds["min_step_ratio"]
    until = {(n, s, b): lines[n, s][b]["decreasing_until"] for n, s in lines for b in batches}

    def further(seed: int) -> bool:
        bn, none = ([until[n, seed, b] for b in batches] for n in ("BN", "none"))
        return all(x is not None and (y is None or x >= ratio * y) for x, y in zip(bn, none))

    def per_line(field: str) -> dict:
        return {f"{n} seed {s} batch {b}": lines[n, s][b][field] for n, s in lines for b in batches}

    return Readout({field: per_line(field) for field in ("decreasing_until", "largest_decreasing_eta", "loss0")},
                   (Condition.most_seeds(f"BN decreases the loss ≥ {ratio:g}× further along −g at every probed batch",
                                         [further(s) for s in seeds]),),
                   "η up to which the loss decreases, per seed: " + "; ".join(
                       f"seed {s}: " + ", ".join(f"batch {b} BN {fmt_lr(until['BN', s, b])} / none {fmt_lr(until['none', s, b])}"
                                                 for b in batches)
                       for s in seeds))


# --- App. G, H, J; Tables 2, 3 ------------------------------------------------------------------

def top_lr(search: Mapping[str, Searches], acc: Mapping[str, Sequence[float]], thresholds: Thresholds) -> Readout:
    """B-TOP-LR: LR searches and final test accuracies (each net at its highest achievable LR) of
    "BN", "top only" and "none", per seed: none < top only < BN by max LR; and top-only's accuracy
    gain minus ``gain_share`` (⅔) of BN's, (acc_top − acc_none) − ⅔ (acc_BN − acc_none), linear (a
    ratio flips sign or blows up when BN's gain is near 0), > ``min_margin`` on the seed interval."""
    _need_keys(search, TOP_LR_NETS, "B-TOP-LR searches")
    _need_keys(acc, TOP_LR_NETS, "B-TOP-LR accuracies")
    _same_seeds(*search.values(), *acc.values(), what="B-TOP-LR")
    share = thresholds["gain_share"]
    a = {n: np.asarray(v, dtype=float) for n, v in acc.items()}
    margin = (a["top only"] - a["none"]) - share * (a["BN"] - a["none"])
    return Readout({"max_lr": {n: [s.max_lr for s in ss] for n, ss in search.items()}, "test_acc_at_max_lr": dict(acc),
                    "top_gain_minus_two_thirds_of_bn_gain": margin},
                   (Condition.most_seeds("unnormalized < top only < BN (max LR)",
                                         _ordered(search["none"], search["top only"], search["BN"])),
                    Condition.at_least(f"top-only gain − {_fraction(share)} BN's gain (test accuracy)", margin,
                                       thresholds["min_margin"], strict=True)),
                   f"max LR per seed: unnormalized {fmt_lrs(search['none'])}, top only {fmt_lrs(search['top only'])}, "
                   f"BN {fmt_lrs(search['BN'])}")


def alternating_lr(none: Searches, alternating: Searches, bn: Searches, thresholds: Thresholds) -> Readout:
    """B-ALT-LR: per seed, max LR unnormalized < alternating normalization < BN. No number to
    compare with: ``thresholds`` is empty."""
    search = {"unnormalized": none, "alternating": alternating, "BN": bn}
    return Readout({n: search_record(s) for n, s in search.items()},
                   (Condition.most_seeds("unnormalized < alternating < BN (max LR)", _ordered(none, alternating, bn)),),
                   "max LR per seed: " + "; ".join(f"{n} {fmt_lrs(s)}" for n, s in search.items()))


def depth_lr(search: Mapping[int, Searches], thresholds: Thresholds) -> Readout:
    """B-DEPTH-LR: the unnormalized net's searches by depth: per seed, max LR non-increasing in
    depth and the shallowest's > the deepest's. No number to compare with."""
    depths = sorted(search)
    if len(depths) < 2:
        raise ValueError(f"B-DEPTH-LR: need at least two depths, got {depths}")
    seeds = _same_seeds(*search.values(), what="B-DEPTH-LR")
    per_seed = [[rank(search[d][i].max_lr) for d in depths] for i in range(seeds)]
    return Readout({"max_lr": {str(d): [s.max_lr for s in search[d]] for d in depths},
                    **{f"depth_{d}": search_record(search[d]) for d in depths}},
                   (Condition.most_seeds("max LR non-increasing in depth, shallowest > deepest",
                                         [all(b <= a for a, b in zip(lr, lr[1:])) and lr[0] > lr[-1] for lr in per_seed]),),
                   "max LR per seed by depth: " + "; ".join(f"{d}: {fmt_lrs(search[d])}" for d in depths))


def warm_start_lr(cold: Searches, warm: Searches, thresholds: Thresholds) -> Readout:
    """B-WARM-LR: per seed, the unnormalized net's max LR after a warm start > without one. No
    number to compare with."""
    return Readout({"cold": search_record(cold), "warm": search_record(warm)},
                   (Condition.most_seeds("max LR warm > cold", _ordered(cold, warm)),),
                   f"max LR per seed: warm {fmt_lrs(warm)}, cold {fmt_lrs(cold)}")


def parts_lr(search: Mapping[str, Searches], thresholds: Thresholds) -> Readout:
    """B-PARTS: searches per row of Table 2 (``PARTS_ROWS``: the parts of Eq. 1 kept). Per seed:
    each variant with μ and σ² ≥ σ²-only and ≥ μ-only; μσ² > σ²-only and > μ-only; σ²-only and
    μ-only > none (by max LR). No number to compare with."""
    _need_keys(search, PARTS_ROWS, "B-PARTS")
    seeds = _same_seeds(*search.values(), what="B-PARTS")

    def ordered(i: int) -> bool:
        lr = {row: rank(ss[i].max_lr) for row, ss in search.items()}
        return (all(lr[f] >= lr["σ²"] and lr[f] >= lr["μ"] for f in PARTS_FULL) and lr["μ, σ²"] > lr["σ²"]
                and lr["μ, σ²"] > lr["μ"] and lr["σ²"] > lr["none"] and lr["μ"] > lr["none"])

    return Readout({"max_lr": {row: [s.max_lr for s in ss] for row, ss in search.items()}},
                   (Condition.most_seeds("the order of Table 2's rows", [ordered(i) for i in range(seeds)]),),
                   "max LR per seed: " + "; ".join(f"{row}: {fmt_lrs(ss)}" for row, ss in search.items()))


# --- beyond the paper ---------------------------------------------------------------------------

def small_batch(base: Sequence[float], small: Sequence[float], bn: Sequence[float], divisor: int, batch_size: int,
                thresholds: Thresholds) -> Readout:
    """X-SMALLBATCH: final test accuracies, one per seed, of the unnormalized net at (α*,
    ``batch_size``), at (α*/``divisor``, ``batch_size``/``divisor``), and of BN at its best LR (the
    best of the LRs the lab trains BN at, per seed: "BN-like accuracy" is what BN reaches, not BN
    at an LR where it trains worst): the small-batch run's minus BN's, paired by seed, ≥
    ``min_difference`` on the seed interval."""
    small_size = batch_size // divisor
    return Readout({"small_batch": small_size,
                    "test_acc": {f"none (α*, {batch_size})": base, f"none (α*/{divisor}, {small_size})": small,
                                 f"BN (best LR, {batch_size})": bn}},
                   (Condition.at_least(f"test acc unnormalized (α*/{divisor}, |B| {small_size}) − BN at its best LR",
                                       _paired(small, bn, "X-SMALLBATCH"), thresholds["min_difference"]),),
                   f"unnormalized at (α*/{divisor}, |B| {small_size}) {_mean(small):.3f} vs BN at its best LR {_mean(bn):.3f}; "
                   f"at (α*, {batch_size}): {_mean(base):.3f}")


def alt_norms_lr(bn: Searches, group: Searches, layer: Searches, thresholds: Thresholds) -> Readout:
    """X-ALTNORMS: per seed, GroupNorm's and LayerNorm's max LR ≥ BN's. No number to compare with."""
    search = {"BN": bn, "GroupNorm": group, "LayerNorm": layer}
    _same_seeds(bn, group, layer, what="X-ALTNORMS")
    lr = {n: [rank(s.max_lr) for s in ss] for n, ss in search.items()}
    return Readout({n: search_record(s) for n, s in search.items()},
                   (Condition.most_seeds("GroupNorm and LayerNorm max LR ≥ BN's",
                                         [g >= b and ln >= b for b, g, ln in zip(lr["BN"], lr["GroupNorm"], lr["LayerNorm"])]),),
                   "max LR per seed: " + "; ".join(f"{n} {fmt_lrs(s)}" for n, s in search.items()))


def fixup_lr(fixup: Searches, none: Searches, thresholds: Thresholds) -> Readout:
    """X-FIXUP: per seed, the Fixup ResNet's max LR is ``fixup_max_lr``; the plain unnormalized net's
    is reported."""
    top = thresholds["fixup_max_lr"]
    _same_seeds(fixup, none, what="X-FIXUP")
    return Readout({"fixup": search_record(fixup), "none": search_record(none)},
                   (Condition.most_seeds(f"Fixup's max LR is {paper_num(top)}", [f.max_lr == top for f in fixup]),),
                   f"Fixup max LR per seed {fmt_lrs(fixup)}; plain unnormalized {fmt_lrs(none)}")

