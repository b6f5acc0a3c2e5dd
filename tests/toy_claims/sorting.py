"""Comparison-counting sorts: the measurements of the toy claims (slow, obviously correct code)."""

from __future__ import annotations

import random


class Counter:
    def __init__(self):
        self.comparisons = 0

    def less(self, a, b) -> bool:
        self.comparisons += 1
        return a < b


def quicksort(values: list, rng: random.Random, counter: Counter) -> list:
    """Randomized quicksort (uniform pivot, three-way split; distinct keys make one comparison each)."""
    if len(values) <= 1:
        return list(values)
    pivot = values[rng.randrange(len(values))]
    lower, upper = [], []
    for v in values:
        if v == pivot:
            continue
        (lower if counter.less(v, pivot) else upper).append(v)
    return quicksort(lower, rng, counter) + [pivot] + quicksort(upper, rng, counter)


def insertion_sort(values: list, counter: Counter) -> list:
    out = list(values)
    for i in range(1, len(out)):
        j = i
        while j > 0 and counter.less(out[j], out[j - 1]):
            out[j], out[j - 1] = out[j - 1], out[j]
            j -= 1
    return out


def merge_sort(values: list, counter: Counter) -> list:
    if len(values) <= 1:
        return list(values)
    mid = len(values) // 2
    left, right = merge_sort(values[:mid], counter), merge_sort(values[mid:], counter)
    out, i, j = [], 0, 0
    while i < len(left) and j < len(right):
        if counter.less(right[j], left[i]):
            out.append(right[j])
            j += 1
        else:
            out.append(left[i])
            i += 1
    return out + left[i:] + right[j:]


def random_array(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.random() for _ in range(n)]
