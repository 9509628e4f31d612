"""Searches with more than two objectives (``search --objectives valid_error latency_fraction param_fraction``):
their n-dimensional hypervolume and 2-D projections of their n-dimensional fronts.

Each objective is min-max normalised over the task's rows of these runs (so objectives of different scales count
alike), and the hypervolume is measured against a reference point of 1.1 in every normalised objective with
pymoo's exact algorithm. A front member of an n-objective run is non-dominated in all n objectives, so in a 2-D
projection it may lie behind other points: the projection shows where the trade-offs are, not a 2-D front.
"""
from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from benchmarks.results import objective_columns

REFERENCE = 1.1


def many_objective_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of runs that minimised more than two objectives."""
    if "objectives" not in frame.columns:
        return frame.iloc[0:0]
    cells = frame["objectives"].fillna("").astype(str)
    return frame[cells.str.count(",") >= 2]


def nd_hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """Exact hypervolume of minimised ``points`` (rows) dominated up to ``reference`` (pymoo)."""
    from pymoo.indicators.hv import HV

    points = np.asarray(points, dtype=float)
    inside = points[(points < reference).all(axis=1)]
    return float(HV(ref_point=np.asarray(reference, dtype=float))(inside)) if len(inside) else 0.0


def final_nd_hypervolumes(frame: pd.DataFrame) -> pd.DataFrame:
    """Per task and run: its objectives and the n-D hypervolume of all its points (normalised per task)."""
    records = []
    for task, rows in frame.groupby("task", sort=True):
        for objectives, part in rows.groupby("objectives", sort=True):
            columns = objective_columns(part)
            values = part[columns].to_numpy(dtype=float)
            low, high = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
            scale = np.where(high > low, high - low, 1.0)
            for run_id, run in part.groupby("run_id", sort=True):
                normalised = (run[columns].to_numpy(dtype=float) - low) / scale
                records.append({"task": task, "method": str(run["method"].iloc[0]), "run_id": run_id,
                                "seed": run["seed"].iloc[0], "objectives": objectives, "points": len(run),
                                "front": int(run["pareto"].astype(bool).sum()),
                                "hypervolume": nd_hypervolume(normalised, np.full(len(columns), REFERENCE))})
    return pd.DataFrame.from_records(records)


def plot_projections(rows: pd.DataFrame, colors: dict[str, str] | None = None):
    """One panel per pair of objectives: every evaluated point (faint) and the n-D front members."""
    from plotting.style import axis_label, color_for, new_figure

    columns = objective_columns(rows)
    pairs = list(combinations(columns, 2))
    figure, axes = new_figure(4.6 * len(pairs), 4.2, ncols=len(pairs))
    for ax, (y, x) in zip(axes, pairs):
        for method, part in rows.groupby("method", sort=True):
            color = color_for(str(method), colors)
            ax.scatter(part[x], part[y], s=8, alpha=0.2, color=color, linewidths=0)
            front = part[part["pareto"].astype(bool)]
            ax.scatter(front[x], front[y], s=22, color=color, edgecolors="black", linewidths=0.4,
                       label=f"{method} (front in all {len(columns)})")
        ax.set_xlabel(axis_label(x))
        ax.set_ylabel(axis_label(y))
    axes[0].legend(loc="best", fontsize=8)
    return figure
