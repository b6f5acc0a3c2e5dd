"""Figures for the report, drawn with matplotlib and returned as SVG text.

Claim tests hand plain data to these helpers; nothing outside this package imports matplotlib.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

plt.rcParams.update(
    {
        "svg.fonttype": "none",  # text stays text: smaller files, selectable labels
        "figure.figsize": (5.2, 3.4),
        "figure.dpi": 100,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "font.size": 9,
    }
)


def _to_svg(fig) -> str:
    buf = io.StringIO()
    fig.tight_layout()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    return buf.getvalue()


def errorbar_lines(
    x: Sequence[float],
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    logy: bool = False,
    reference: Mapping[str, Sequence[float]] | None = None,
) -> str:
    """Mean ± std per x for each named series (as Figs. 11 and 12), optional dashed references."""
    fig, ax = plt.subplots()
    for name, (mean, std) in series.items():
        ax.errorbar(x, mean, yerr=std, marker="o", ms=4, capsize=3, label=name)
    for name, values in (reference or {}).items():
        ax.plot(x, values, "k--", lw=1, label=name)
    if logy:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    return _to_svg(fig)


def histograms_with_density(
    panels: Sequence[Mapping],
    *,
    title: str,
    bins: int = 80,
) -> str:
    """One panel per entry {label, samples, grid, density, xlabel}: sample histogram vs a curve."""
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.8), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        samples = np.asarray(panel["samples"])
        hi = np.quantile(samples, 0.995)
        ax.hist(samples[samples <= hi], bins=bins, density=True, alpha=0.55, label="measured")
        grid, dens = np.asarray(panel["grid"]), np.asarray(panel["density"])
        keep = grid <= hi
        ax.plot(grid[keep], dens[keep], "k-", lw=1.2, label=panel.get("curve_label", "Eq. 5"))
        ax.set_title(panel["label"], fontsize=9)
        ax.set_xlabel(panel.get("xlabel", ""))
        ax.set_ylim(0, max(dens[keep][np.isfinite(dens[keep])].max(initial=0) * 0.25, ax.get_ylim()[1] * 0.6))
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return _to_svg(fig)


def overlaid_histograms(
    groups: Mapping[str, Sequence[float]], *, xlabel: str, title: str, bins: int = 80, logx: bool = False
) -> str:
    """Histograms of several samples on one axis (as Fig. 8)."""
    fig, ax = plt.subplots()
    data = {k: np.asarray(v, dtype=float) for k, v in groups.items()}
    pooled = np.concatenate(list(data.values()))
    if logx:
        edges = np.logspace(np.log10(pooled[pooled > 0].min()), np.log10(pooled.max()), bins)
        ax.set_xscale("log")
    else:
        edges = np.linspace(0, np.quantile(pooled, 0.999), bins)
    for name, values in data.items():
        ax.hist(values, bins=edges, density=True, histtype="step", lw=1.3, label=name)
    ax.set(xlabel=xlabel, ylabel="density", title=title)
    ax.legend(fontsize=8)
    return _to_svg(fig)


def lines(
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    logx: bool = False,
    logy: bool = False,
    markers: bool = True,
) -> str:
    """Plain line plot of named series over a common x."""
    fig, ax = plt.subplots()
    for name, values in series.items():
        ax.plot(x, values, marker="o" if markers else None, ms=4, label=name)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    return _to_svg(fig)
