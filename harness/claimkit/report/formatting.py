"""How the report writes numbers, seed lists and durations (the HTML and the verdict history's text)."""

from __future__ import annotations

import math
from typing import Any


def format_value(value: Any, depth: int = 0) -> str:
    """Compact text for a measured value: 4 significant digits, long lists shortened."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if value == 0 or (1e-3 <= abs(value) < 1e5):
            return f"{value:.4g}"
        return f"{value:.3e}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        items = [format_value(v, depth + 1) for v in value[:12]]
        more = f", … ({len(value)} values)" if len(value) > 12 else ""
        return "[" + ", ".join(items) + more + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v, depth + 1)}" for k, v in value.items()) + "}"
    return str(value)


def seconds_text(value: Any) -> str:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "–"
    return f"{value:.1f} s" if value >= 0.1 else f"{value * 1000:.0f} ms"


def format_seeds(seeds: list) -> str:
    """Seeds as a short text: runs of consecutive integers become ranges."""
    if not seeds:
        return "–"
    values = sorted(set(seeds)) if all(isinstance(s, int) for s in seeds) else seeds
    parts, start, prev = [], None, None
    for s in values:
        if isinstance(s, int) and prev is not None and s == prev + 1:
            prev = s
            continue
        if start is not None:
            parts.append(f"{start}–{prev}" if prev != start else f"{start}")
        start = prev = s
    parts.append(f"{start}–{prev}" if prev != start else f"{start}")
    text = ", ".join(str(p) for p in parts)
    return text if len(parts) <= 6 else ", ".join(str(p) for p in parts[:6]) + f", … ({len(values)} seeds)"

