"""Figures drawn from the tidy results table and its summaries; each function draws on one matplotlib Axes."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from plotting.hypervolume import TIME, pareto_front_2d
from plotting.style import (
    KIND_LINESTYLES,
    KIND_MARKERS,
    ambiguous_methods,
    axis_label,
    color_for,
    method_label,
    new_figure,
    tidy_log_axis,
)

RELATIVE_LEVELS: tuple[float, ...] = (100.0, 95.0, 90.0)


def _axes(ax: Axes | None) -> Axes:
    return new_figure()[1][0] if ax is None else ax


def _pairs(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return sorted({(str(k), str(m)) for k, m in zip(frame["kind"], frame["method"])}, key=lambda p: (p[1], p[0]))


def _by_method(frame: pd.DataFrame):
    """Groups of (kind, method), ordered by method then kind so a method's kinds sit together in legends."""
    groups = dict(tuple(frame.groupby(["kind", "method"], sort=False)))
    for kind, method in sorted(groups, key=lambda p: (str(p[1]), str(p[0]))):
        yield (str(kind), str(method)), groups[(kind, method)]


def _legend(ax: Axes, **kwargs) -> None:
    """A legend where it hides the least data (matplotlib's ``best``); a report moves it below the figure
    (:func:`plotting.style.shared_legend`)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(fontsize="small", framealpha=0.85, **{"loc": "best", **kwargs})


def plot_pareto_fronts(
    frame: pd.DataFrame,
    size_column: str,
    error_column: str = "valid_error",
    ax: Axes | None = None,
    colors: Mapping[str, str] | None = None,
) -> Axes:
    """Every run's evaluated points (faint) and its Pareto front (step line) of error against size."""
    ax = _axes(ax)
    ambiguous = ambiguous_methods(_pairs(frame))
    shown_per_method = frame.drop_duplicates("run_id").groupby(["kind", "method"]).size()
    runs = dict(tuple(frame.groupby("run_id", sort=True)))
    order = sorted(runs, key=lambda r: (str(runs[r]["method"].iloc[0]), str(runs[r]["kind"].iloc[0]), str(r)))
    for run in (runs[r] for r in order):
        kind, method = str(run["kind"].iloc[0]), str(run["method"].iloc[0])
        color = color_for(method, colors)
        pts = run[[size_column, error_column]].to_numpy(dtype=float)
        pts = pts[np.all(np.isfinite(pts), axis=1)]
        if len(pts) == 0:
            continue
        label = method_label(kind, method, method in ambiguous)
        if shown_per_method.get((kind, method), 1) > 1:
            label += f", seed {run['seed'].iloc[0]}"
        ax.scatter(pts[:, 0], pts[:, 1], s=12, color=color, alpha=0.3, linewidths=0)
        front = pareto_front_2d(pts)
        ax.plot(
            front[:, 0], front[:, 1], drawstyle="steps-post", color=color, linestyle=KIND_LINESTYLES.get(kind, "-"),
            marker=KIND_MARKERS.get(kind, "o"), markersize=3.5, linewidth=1.5, label=label,
        )
    ax.set_xlabel(axis_label(size_column))
    ax.set_ylabel(axis_label(error_column))
    _legend(ax)
    return ax


def plot_over_x(
    summary: pd.DataFrame,
    x: str = TIME,
    ax: Axes | None = None,
    colors: Mapping[str, str] | None = None,
    ylabel: str = "hypervolume (normalised objectives)",
    log_x: bool = True,
    log_y: bool = False,
) -> Axes:
    """Mean (line) and mean ± standard error (band) per method against time or evaluations.

    ``summary`` has columns kind, method, ``x``, mean and se (see ``summarize_over_seeds``).
    """
    ax = _axes(ax)
    ambiguous = ambiguous_methods(_pairs(summary))
    for (kind, method), part in _by_method(summary):
        part = part.sort_values(x)
        xs, mean, se = (part[c].to_numpy(dtype=float) for c in (x, "mean", "se"))
        color = color_for(str(method), colors)
        ax.plot(
            xs, mean, drawstyle="steps-post", color=color, linestyle=KIND_LINESTYLES.get(str(kind), "-"),
            linewidth=1.6, label=method_label(str(kind), str(method), str(method) in ambiguous),
        )
        band = np.isfinite(se)
        if band.any():
            ax.fill_between(xs, mean - np.where(band, se, 0), mean + np.where(band, se, 0), step="post",
                            color=color, alpha=0.18, linewidth=0)
    if log_x and (summary[x] > 0).all() and summary[x].nunique() > 1:
        ax.set_xscale("log")
        tidy_log_axis(ax.xaxis)
    if log_y and (summary["mean"] > 0).any():
        ax.set_yscale("log")
        tidy_log_axis(ax.yaxis)
    ax.set_xlabel(axis_label(x))
    ax.set_ylabel(ylabel)
    _legend(ax)
    return ax


def plot_average_ranks(
    ranks: pd.DataFrame,
    x: str = TIME,
    ax: Axes | None = None,
    colors: Mapping[str, str] | None = None,
    log_x: bool = True,
) -> Axes:
    """Average rank (1 = best) of every method against time or evaluations."""
    ax = _axes(ax)
    ambiguous = ambiguous_methods(_pairs(ranks))
    for (kind, method), part in _by_method(ranks):
        part = part.sort_values(x)
        ax.plot(
            part[x].to_numpy(dtype=float), part["rank"].to_numpy(dtype=float), drawstyle="steps-post",
            color=color_for(str(method), colors), linestyle=KIND_LINESTYLES.get(str(kind), "-"), linewidth=1.6,
            label=method_label(str(kind), str(method), str(method) in ambiguous),
        )
    num_methods = len(_pairs(ranks))
    ax.set_ylim(0.8, max(num_methods, 1) + 0.2)
    ax.set_yticks(np.arange(1, max(num_methods, 1) + 1))
    if log_x and (ranks[x] > 0).all() and ranks[x].nunique() > 1:
        ax.set_xscale("log")
        tidy_log_axis(ax.xaxis)
    ax.set_xlabel(axis_label(x))
    ax.set_ylabel("average rank (1 = best)")
    _legend(ax)
    return ax


def plot_relative_performance(
    summary: pd.DataFrame,
    size_column: str = "param_fraction",
    ax: Axes | None = None,
    colors: Mapping[str, str] | None = None,
    levels: Sequence[float] = RELATIVE_LEVELS,
) -> Axes:
    """Relative test performance (%) against fraction pruned (%), per method, with reference lines at ``levels``.

    ``summary`` has columns kind, method, fraction_pruned, mean and se of ``relative_performance``.
    """
    ax = _axes(ax)
    ambiguous = ambiguous_methods(_pairs(summary))
    for level in levels:
        ax.axhline(level, color="0.35", linewidth=0.9, linestyle=(0, (4, 3)), zorder=0)
        ax.annotate(f"{level:g}%", xy=(1.0, level), xycoords=("axes fraction", "data"), xytext=(3, 0),
                    textcoords="offset points", va="center", fontsize="x-small", color="0.35")
    for (kind, method), part in _by_method(summary):
        part = part.sort_values("fraction_pruned")
        ok = np.isfinite(part["mean"].to_numpy(dtype=float))
        if not ok.any():
            continue
        part = part[ok]
        xs = 100 * part["fraction_pruned"].to_numpy(dtype=float)
        mean = 100 * part["mean"].to_numpy(dtype=float)
        se = 100 * part["se"].to_numpy(dtype=float)
        color = color_for(str(method), colors)
        ax.plot(
            xs, mean, color=color, linestyle=KIND_LINESTYLES.get(str(kind), "-"),
            marker=KIND_MARKERS.get(str(kind), "o"), markersize=4, linewidth=1.6,
            label=method_label(str(kind), str(method), str(method) in ambiguous),
        )
        band = np.isfinite(se)
        if band.any():
            ax.fill_between(xs[band], (mean - se)[band], (mean + se)[band], color=color, alpha=0.15, linewidth=0)
    ax.set_xlabel(f"{axis_label(size_column)} pruned (%)")
    ax.set_ylabel("relative test performance (%)")
    _legend(ax)
    return ax


def plot_boxplot(
    final: pd.DataFrame, by: str, value: str = "hypervolume", ax: Axes | None = None,
    ylabel: str = "final hypervolume",
) -> Axes:
    """Boxes of ``value`` per category of column ``by`` (e.g. strategy or search space), runs shown as dots."""
    ax = _axes(ax)
    categories = sorted(c for c in final[by].astype(str).unique() if c != "")
    data = [final.loc[final[by].astype(str) == c, value].dropna().to_numpy(dtype=float) for c in categories]
    positions = np.arange(1, len(categories) + 1)
    ax.boxplot(data, positions=positions, widths=0.55, showfliers=False,
               medianprops={"color": "black"}, boxprops={"color": "0.3"})
    rng = np.random.default_rng(0)  # fixed jitter so figures are reproducible
    for pos, values in zip(positions, data):
        ax.scatter(pos + rng.uniform(-0.12, 0.12, len(values)), values, s=12, color="#1f77b4", alpha=0.7, zorder=3)
    ax.set_xticks(positions)
    crowded = len(categories) > 3
    ax.set_xticklabels(categories, rotation=30 if crowded else 0, ha="right" if crowded else "center")
    ax.set_xlabel(by.replace("_", " "))
    ax.set_ylabel(ylabel)
    return ax
