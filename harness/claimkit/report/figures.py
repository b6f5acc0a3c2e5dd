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
    log_stats: bool = False,
    reference: Mapping[str, Sequence[float]] | None = None,
) -> str:
    """Mean ± std per x for each named series (as Figs. 11 and 12), optional references.

    With ``log_stats`` the series hold mean and std of log10 values (quantities spanning many
    orders of magnitude, like κ): drawn on a log axis at 10^mean with bars 10^(mean ± std).
    """
    fig, ax = plt.subplots()
    for name, (mean, std) in series.items():
        mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
        if log_stats:
            centre = 10**mean
            ax.errorbar(x, centre, yerr=[centre - 10 ** (mean - std), 10 ** (mean + std) - centre], marker="o", ms=4,
                        capsize=3, label=name)
        else:
            ax.errorbar(x, mean, yerr=std, marker="o", ms=4, capsize=3, label=name)
    for (name, values), style in zip((reference or {}).items(), ("k--", "k:", "k-.")):
        ax.plot(x, values, style, lw=1.2, label=name)
    if log_stats:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    return _to_svg(fig)


def histograms_with_density(
    panels: Sequence[Mapping],
    *,
    title: str,
    bins: int = 60,
) -> str:
    """One panel per entry {label, samples, grid, density, xlabel}: sample histogram vs a density.

    Spectra of products pile up near 0 (Eq. 5 has a pole there), so both are drawn on a log x
    axis: the histogram of log10(x) against its density x·ρ(x)·ln 10.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.8), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        samples = np.asarray(panel["samples"], dtype=float)
        samples = samples[samples > 0]
        grid, dens = np.asarray(panel["grid"], dtype=float), np.asarray(panel["density"], dtype=float)
        keep = grid > 0
        ax.hist(np.log10(samples), bins=bins, density=True, alpha=0.55, label="measured")
        ax.plot(np.log10(grid[keep]), dens[keep] * grid[keep] * np.log(10), "k-", lw=1.2,
                label=panel.get("curve_label", "Eq. 5"))
        ax.set_title(panel["label"], fontsize=9)
        ax.set_xlabel(f"log10 {panel.get('xlabel', 'x')}")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return _to_svg(fig)


def overlaid_histograms(
    groups: Mapping[str, Sequence[float]], *, xlabel: str, title: str, bins: int = 80, logx: bool = False
) -> str:
    """Histograms of several samples on one axis (as Fig. 8); ``logx`` bins log10 of the values."""
    fig, ax = plt.subplots()
    data = {k: np.asarray(v, dtype=float) for k, v in groups.items()}
    if logx:
        data = {k: np.log10(v[v > 0]) for k, v in data.items()}
        xlabel = f"log10 {xlabel}"
    pooled = np.concatenate(list(data.values()))
    edges = np.linspace(np.quantile(pooled, 0.001), pooled.max(), bins)
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


def scatter_against_bound(
    points: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, xlabel: str, ylabel: str, title: str,
    symlog: bool = False,
) -> str:
    """One point per draw (bound, measured) per named series, with the line measured = bound.

    Points on or under the diagonal satisfy the bound. ``symlog`` for values of either sign.
    """
    fig, ax = plt.subplots()
    pooled = []
    for name, (bound, measured) in points.items():
        bound, measured = np.asarray(bound, dtype=float), np.asarray(measured, dtype=float)
        ax.scatter(bound, measured, s=8, alpha=0.6, label=name)
        pooled += [bound, measured]
    values = np.concatenate(pooled)
    if symlog:
        ax.set_xscale("symlog", linthresh=1e-3)
        ax.set_yscale("symlog", linthresh=1e-3)
        lo, hi = values.min(), values.max()
    else:
        ax.set_xscale("log")
        ax.set_yscale("log")
        positive = values[values > 0]
        lo, hi = positive.min(), positive.max()
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="measured = bound")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    return _to_svg(fig)


def bands(
    x: Sequence[float],
    series: Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    logy: bool = False,
) -> str:
    """A shaded band (low–high) with a middle line per named series (as Figs. 4, 8, 9)."""
    fig, ax = plt.subplots()
    for name, (low, mid, high) in series.items():
        (line,) = ax.plot(x, mid, lw=1.4, label=name)
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2)
    if logy:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    return _to_svg(fig)


def curves(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    logx: bool = False,
    logy: bool = False,
    styles: Mapping[str, str] | None = None,
) -> str:
    """Named (x, y) curves with their own x values (learning curves, loss along a path)."""
    fig, ax = plt.subplots()
    for name, (x, y) in series.items():
        ax.plot(x, y, (styles or {}).get(name, "-"), marker="o", ms=3, lw=1.3, label=name)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=7)
    return _to_svg(fig)


def histogram_panels(panels: Mapping[str, Sequence[float]], *, xlabel: str, title: str, bins: int = 60,
                     columns: int | None = None) -> str:
    """One histogram per panel, each on its own x scale (as Fig. 2, and Figs. 13/14 as a grid)."""
    columns = columns or len(panels)
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.3 * rows), squeeze=False)
    for ax, (label, values) in zip(axes.ravel(), panels.items()):
        ax.hist(np.asarray(values, dtype=float).ravel(), bins=bins, color="C0", alpha=0.8)
        ax.set_title(label, fontsize=8)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    return _to_svg(fig)


def heatmaps(panels: Mapping[str, np.ndarray], *, xlabel: str, ylabel: str, title: str, symmetric: bool = False) -> str:
    """One heat map per named matrix, each with its own colour scale (as Figs. 4 and 7).
    ``symmetric`` centres a diverging map on zero (signed values)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.0), squeeze=False)
    for ax, (label, m) in zip(axes[0], panels.items()):
        m = np.asarray(m, dtype=float)
        if symmetric:
            lim = float(np.abs(m).max()) or 1.0
            im = ax.imshow(m, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        else:
            im = ax.imshow(m, aspect="auto", cmap="viridis", interpolation="nearest")
        fig.colorbar(im, ax=ax, fraction=0.046)
        ax.set_title(label, fontsize=9)
        ax.set(xlabel=xlabel, ylabel=ylabel)
        ax.grid(False)
    fig.suptitle(title, fontsize=10)
    return _to_svg(fig)


def scatter(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, xlabel: str, ylabel: str, title: str,
            logy: bool = False) -> str:
    """One panel per named (x, y) point cloud, each with its own scales (as Fig. 18)."""
    fig, axes = plt.subplots(1, len(series), figsize=(3.2 * len(series), 3.0), squeeze=False)
    for ax, (label, (x, y)) in zip(axes[0], series.items()):
        ax.scatter(np.asarray(x, dtype=float), np.asarray(y, dtype=float), s=3, alpha=0.4)
        if logy:
            ax.set_yscale("log")
        ax.set_title(label, fontsize=9)
        ax.set(xlabel=xlabel, ylabel=ylabel)
    fig.suptitle(title, fontsize=10)
    return _to_svg(fig)


def bars(groups: Mapping[str, Sequence[float]], labels: Sequence[str], *, ylabel: str, title: str,
         logy: bool = False) -> str:
    """One panel of bars per named group over common labels (as Fig. 21)."""
    fig, axes = plt.subplots(1, len(groups), figsize=(3.2 * len(groups), 3.0), squeeze=False)
    for ax, (name, values) in zip(axes[0], groups.items()):
        ax.bar([str(v) for v in labels], np.asarray(values, dtype=float), color="C0")
        if logy:
            ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.set(ylabel=ylabel)
    fig.suptitle(title, fontsize=10)
    return _to_svg(fig)
