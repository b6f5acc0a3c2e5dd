"""The toy claims: measured by counting comparisons, decided by the claims machinery's rules."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest

from harness.claimkit.evidence import Condition
from harness.claimkit.store import cached_record
from sorting import Counter, insertion_sort, merge_sort, quicksort, random_array


@dataclasses.dataclass
class Counted:
    comparisons: int


def _ratios(verdict, n, measure):
    """``measure(array, seed)`` for this look's seeds, one random array of ``n`` per seed."""
    return [measure(random_array(n, seed), seed) for seed in verdict.seeds]


def quicksort_run(n: int, seed: int) -> Counted:
    """One seed's randomized quicksort of its random array, counted."""
    values, counter = random_array(n, seed), Counter()
    assert quicksort(values, random.Random(seed), counter) == sorted(values)
    return Counted(counter.comparisons)


@pytest.mark.claim("T-QSORT-MEAN")
def test_quicksort_mean(verdict, claims_registry, thresholds, store):
    """The counts come from the suite's store: each seed's sort is made once ever (declared first, so
    --plan lists every seed of the look)."""
    n = claims_registry.family_settings("toy_sorting", verdict.profile)["n"]
    verdict.dataset = f"uniform random arrays, n = {n}"
    configs = [{"kind": "quicksort", "n": n, "seed": seed} for seed in verdict.seeds]
    store.declare(configs)
    counts = [cached_record(store, c, lambda c=c: quicksort_run(n, c["seed"]), lambda d: Counted(**d)) for c in configs]
    ratios = [c.comparisons / (2 * n * math.log(n)) for c in counts]
    verdict.measure(ratio_per_seed=ratios)
    verdict.decide(Condition.at_most("comparisons / (2 n ln n)", ratios, thresholds["max_ratio"]))


@pytest.mark.claim("T-MERGE-WORST")
def test_merge_sort_worst_case(verdict, settings):
    verdict.dataset = "every size's arrays in reverse, sorted and interleaved order"
    worst = {}
    for n in settings["sizes"]:
        arrays = [list(range(n)), list(range(n, 0, -1)), [i // 2 if i % 2 == 0 else n - i for i in range(n)]]
        counts = []
        for values in arrays:
            counter = Counter()
            assert merge_sort(values, counter) == sorted(values)
            counts.append(counter.comparisons)
        worst[str(n)] = (max(counts), n * math.log2(n) - n + 1)
    verdict.measure(worst={k: list(v) for k, v in worst.items()})
    ok = all(count <= bound for count, bound in worst.values())
    verdict.conclude(holds=ok, summary=", ".join(f"n = {k}: {c} ≤ {b:g}" for k, (c, b) in worst.items()))


@pytest.mark.claim("T-INSERTION-BEATS-MERGE")
def test_insertion_against_merge(verdict, claims_registry, thresholds):
    n = claims_registry.family_settings("toy_sorting", verdict.profile)["n"]
    verdict.dataset = f"uniform random arrays, n = {n}"

    def ratio(values, seed):
        a, b = Counter(), Counter()
        assert insertion_sort(values, a) == merge_sort(values, b) == sorted(values)
        return a.comparisons / b.comparisons

    ratios = _ratios(verdict, n, ratio)
    verdict.measure(ratio_per_seed=ratios)
    verdict.decide(Condition.at_most("insertion / merge comparisons", ratios, thresholds["max_ratio"]))
