"""Exact 2-D hypervolume of (error, size) fronts, per run and over wall-clock time or number of evaluations.

Both objectives are minimised. Points are first normalised per task over all rows being compared (see
:mod:`plotting.normalize`), then the hypervolume of a set of points is the area dominated by them and bounded by
the reference point; a point that does not strictly dominate the reference point contributes nothing.

Standard NAS reports one row per epoch of a trial; :func:`benchmarks.results.best_so_far_rows` keeps the epoch
rows that improve their trial's best so far, which gives the hypervolume over time, and
:func:`benchmarks.results.best_epoch_rows` one row per trial, which is what tables of test errors need.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from benchmarks.results import SIZE_OBJECTIVES, pareto_mask, time_ordered, trial_ids
from plotting.normalize import Bounds, get_normalizer, normalize_objectives

RUN_COLUMNS: tuple[str, ...] = ("task", "kind", "method", "run_id", "seed", "searcher", "strategy", "search_space")
METHOD_KEYS: tuple[str, ...] = ("kind", "method")
HV_ERROR = "hv_error"
HV_SIZE = "hv_size"
TIME = "runtime_s"
EVALUATION = "evaluation"
X_AXES: dict[str, str] = {"time": TIME, "evaluations": EVALUATION}
DEFAULT_SIZE_COLUMN = "param_fraction"


@dataclass(frozen=True)
class HypervolumeSettings:
    """How (error, size) points are normalised and which reference point bounds the hypervolume."""

    normalization: str = "quantile"
    reference_point: tuple[float, float] = (2.0, 2.0)
    error_column: str = "valid_error"
    size_column: str | None = None  # None: each task's rows' ``size_objective``
    bounds: Mapping[str, Bounds] | None = None  # min-max only: column -> (low, high)
    # min-max only: task -> column -> (low, high), over ``bounds`` for that task (e.g. a per-task baseline error)
    task_bounds: Mapping[str, Mapping[str, Bounds]] | None = None

    def __post_init__(self) -> None:
        get_normalizer(self.normalization)
        if len(self.reference_point) != 2:
            raise ValueError(f"reference_point must have two coordinates, got {self.reference_point!r}")
        if self.size_column is not None and self.size_column not in SIZE_OBJECTIVES:
            raise ValueError(f"size_column must be one of {SIZE_OBJECTIVES} or None, got {self.size_column!r}")
        if (self.bounds or self.task_bounds) and self.normalization != "minmax":
            raise ValueError("bounds are only used by the 'minmax' normalization")

    def describe(self) -> str:
        """One sentence for reports."""
        how = {
            "quantile": "quantile-normalised per task (empirical CDF over all compared rows of that task)",
            "minmax": "min-max normalised per task over all compared rows of that task"
            + (f" with bounds {dict(self.bounds)}" if self.bounds else "")
            + (f" and per-task bounds {({t: dict(b) for t, b in self.task_bounds.items()})}"
               if self.task_bounds else ""),
        }[self.normalization]
        return f"objectives ({self.error_column}, size) {how}; reference point {tuple(self.reference_point)}"


# ---------------------------------------------------------------------------------------------------------------
# Points and fronts


def _as_points(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=float)
    if pts.size == 0:
        return np.empty((0, 2))
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (n, 2), got {pts.shape}")
    return pts


def pareto_front_2d(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """The non-dominated points (both minimised), sorted by the first objective; duplicates kept once."""
    pts = _as_points(points)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) == 0:
        return pts
    front = pts[np.asarray(pareto_mask(pts[:, 0], pts[:, 1]))]
    return front[np.lexsort((front[:, 1], front[:, 0]))]


def hypervolume_2d(points: Sequence[Sequence[float]] | np.ndarray, reference_point: Sequence[float]) -> float:
    """Exact area dominated by the points and bounded by the reference point (both objectives minimised)."""
    ref = np.asarray(reference_point, dtype=float)
    pts = _as_points(points)
    pts = pts[np.all(np.isfinite(pts), axis=1) & np.all(pts < ref, axis=1)]
    front = pareto_front_2d(pts)
    if len(front) == 0:
        return 0.0
    upper = np.concatenate(([ref[1]], front[:-1, 1]))
    return float(np.sum((ref[0] - front[:, 0]) * (upper - front[:, 1])))


def hypervolume_trajectory(
    points: Sequence[Sequence[float]] | np.ndarray, reference_point: Sequence[float]
) -> np.ndarray:
    """Hypervolume of every prefix of the (time-ordered) points: entry i covers points 0..i."""
    ref = np.asarray(reference_point, dtype=float)
    pts = _as_points(points)
    out = np.zeros(len(pts))
    front = np.empty((0, 2))
    current = 0.0
    for i, p in enumerate(pts):
        useful = bool(np.all(np.isfinite(p)) and np.all(p < ref))
        if useful and not np.any((front[:, 0] <= p[0]) & (front[:, 1] <= p[1])):
            front = pareto_front_2d(np.vstack([front, p]))
            current = hypervolume_2d(front, ref)
        out[i] = current
    return out


# ---------------------------------------------------------------------------------------------------------------
# Rows of the results table


def resolve_size_column(frame: pd.DataFrame, override: str | None = None) -> str:
    """The size column to use for these rows: the override, else their common ``size_objective``.

    Rows that disagree fall back to ``param_fraction`` with a warning.
    """
    if override is not None:
        if override not in SIZE_OBJECTIVES:
            raise ValueError(f"size objective must be one of {SIZE_OBJECTIVES}, got {override!r}")
        return override
    names = [n for n in frame["size_objective"].dropna().unique() if n != ""]
    if len(names) == 1 and names[0] in SIZE_OBJECTIVES:
        return str(names[0])
    if names:
        tasks = sorted(map(str, frame["task"].unique()))
        warnings.warn(
            f"rows of task(s) {tasks} minimise different size objectives {sorted(map(str, names))}; "
            f"using {DEFAULT_SIZE_COLUMN}",
            stacklevel=2,
        )
    return DEFAULT_SIZE_COLUMN


def normalized_points(frame: pd.DataFrame, settings: HypervolumeSettings = HypervolumeSettings()) -> pd.DataFrame:
    """Copy of ``frame`` with normalised objectives in ``hv_error`` and ``hv_size`` (and the size column used)."""
    if settings.error_column not in frame.columns:
        raise ValueError(f"error column {settings.error_column!r} is not in the results table")
    out = frame.copy()
    out[HV_ERROR] = np.nan
    out[HV_SIZE] = np.nan
    out["size_column"] = ""
    for task, part in frame.groupby("task", sort=False):
        size_column = resolve_size_column(part, settings.size_column)
        objectives = pd.DataFrame(
            {HV_ERROR: part[settings.error_column].astype(float), HV_SIZE: part[size_column].astype(float)}
        )
        bounds = None
        given = {**(settings.bounds or {}), **((settings.task_bounds or {}).get(str(task)) or {})}
        if given:
            names = {HV_ERROR: settings.error_column, HV_SIZE: size_column}
            bounds = {k: given[v] for k, v in names.items() if v in given}
        normed = normalize_objectives(objectives, [HV_ERROR, HV_SIZE], settings.normalization, None, bounds)
        out.loc[part.index, [HV_ERROR, HV_SIZE]] = normed.to_numpy()
        out.loc[part.index, "size_column"] = size_column
    return out


def above_baseline_settings(baseline_errors: Mapping[str, float], error_column: str = "valid_error",
                            size_column: str | None = None) -> HypervolumeSettings:
    """Hypervolume that credits only what beats a baseline error per task (e.g. the constant predictor's).

    Each task's error is divided by its baseline error and the size fraction is kept as it is (min-max with bounds
    (0, baseline) and (0, 1)), reference point (1, 1). A run's hypervolume is then the area between its front and
    the baseline's error over size fractions 0..1, as a share of what a perfect predictor of size 0 would have: 0
    for a run that never beats the baseline, and independent of the other runs (no empirical CDF), so a sub-network
    one validation example better than the baseline adds almost nothing instead of deciding the ranks.
    """
    for task, error in baseline_errors.items():
        if not (np.isfinite(error) and error > 0):
            raise ValueError(f"baseline error of task {task!r} must be a positive number, got {error!r}")
    return HypervolumeSettings(
        "minmax", (1.0, 1.0), error_column, size_column,
        bounds={column: (0.0, 1.0) for column in SIZE_OBJECTIVES},
        task_bounds={str(task): {error_column: (0.0, float(error))} for task, error in baseline_errors.items()},
    )


# a task where more than this share of the compared rows has one validation error gets a warning (see below)
TIED_ERROR_SHARE = 0.5


def tied_errors(frame: pd.DataFrame, settings: HypervolumeSettings = HypervolumeSettings(),
                share: float = TIED_ERROR_SHARE) -> list[str]:
    """One sentence per task where more than ``share`` of the rows have the same error (typically the constant
    predictor's) and some rows do better, under quantile normalisation: there the empirical CDF jumps at that value,
    so a row one validation example better lands far down the normalised scale and hypervolume ranks can turn on
    it."""
    if settings.normalization != "quantile" or settings.error_column not in frame.columns:
        return []
    sentences = []
    for task, part in frame.groupby("task", sort=True):
        errors = part[settings.error_column].astype(float)
        errors = errors[np.isfinite(errors)]
        if errors.empty:
            continue
        counts = errors.value_counts()
        value, tied = float(counts.index[0]), int(counts.iloc[0])
        at_most, below = int((errors <= value).sum()), int((errors < value).sum())
        if tied <= share * len(errors) or below == 0:  # nothing better than the tied value: no jump to cross
            continue
        sentences.append(
            f"{task}: {tied} of the {len(errors)} compared rows ({100 * tied / len(errors):.0f}%) have the same "
            f"{settings.error_column} ({value:.4g}), so quantile normalisation maps it to "
            f"{100 * at_most / len(errors):.0f}% and any row below it to at most {100 * below / len(errors):.0f}%: "
            "a sub-network one validation example better than that value can decide the hypervolume ranks there; "
            "read them beside the relative performance.")
    return sentences


def _run_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in RUN_COLUMNS if c in frame.columns]


def hypervolume_over_time(
    frame: pd.DataFrame, settings: HypervolumeSettings = HypervolumeSettings()
) -> pd.DataFrame:
    """One row per evaluated point: the hypervolume of its run's points observed up to its runtime.

    Rows of a run are ordered by ``runtime_s``; ``evaluation`` counts the trials seen so far (a standard-NAS
    trial counts once, however many epochs it reports). Pass :func:`best_so_far_rows` of the raw table.
    """
    points = normalized_points(frame, settings)
    parts = []
    for _, part in points.groupby(["task", "run_id"], sort=True):
        part = time_ordered(part)
        hv = hypervolume_trajectory(part[[HV_ERROR, HV_SIZE]].to_numpy(), settings.reference_point)
        first_seen = ~trial_ids(part).duplicated()
        traj = part[_run_columns(part)].copy()
        traj[TIME] = part[TIME].astype(float).to_numpy()
        traj[EVALUATION] = np.cumsum(first_seen.to_numpy())
        traj["hypervolume"] = hv
        parts.append(traj)
    if not parts:
        return pd.DataFrame(columns=list(RUN_COLUMNS) + [TIME, EVALUATION, "hypervolume"])
    return pd.concat(parts, ignore_index=True)


def final_hypervolume(trajectories: pd.DataFrame) -> pd.DataFrame:
    """The last hypervolume of every run (its whole front), with its last runtime and number of trials."""
    return trajectories.groupby(["task", "run_id"], sort=True).tail(1).reset_index(drop=True)


# ---------------------------------------------------------------------------------------------------------------
# Common grids and aggregation over seeds


def make_grid(trajectories: pd.DataFrame, x: str = TIME, num: int = 100, log: bool = True) -> np.ndarray:
    """A grid shared by all runs: geometric (or linear) over time, or integers for evaluations."""
    if x not in X_AXES.values():
        raise ValueError(f"x must be one of {sorted(X_AXES.values())}, got {x!r}")
    if num < 2:
        raise ValueError(f"a grid needs at least 2 points, got num={num}")
    values = trajectories[x].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.zeros(1)
    high = float(values.max())
    if x == EVALUATION:
        return np.unique(np.round(np.linspace(1.0, max(high, 1.0), min(num, int(max(high, 1.0))))))
    positive = values[values > 0]
    low = float(positive.min()) if positive.size else 0.0
    if log and 0 < low < high:
        return np.geomspace(low, high, num)
    low = float(values.min())
    return np.linspace(low, high, num) if high > low else np.array([high])


def step_interpolate(xs: np.ndarray, values: np.ndarray, grid: np.ndarray, before: float = 0.0) -> np.ndarray:
    """Value at each grid point of a step function: the last value observed at or before it (``before`` if none)."""
    xs = np.asarray(xs, dtype=float)
    values = np.asarray(values, dtype=float)
    idx = np.searchsorted(xs, np.asarray(grid, dtype=float), side="right") - 1
    return np.where(idx >= 0, values[np.clip(idx, 0, None)], before)


def on_grid(trajectories: pd.DataFrame, grid: np.ndarray, x: str = TIME, value: str = "hypervolume") -> pd.DataFrame:
    """Every run's step function evaluated on the common grid (0 before its first point, last value after)."""
    parts = []
    for _, run in trajectories.groupby(["task", "run_id"], sort=True):
        run = run.sort_values(x, kind="stable")
        meta = run.iloc[[0] * len(grid)][_run_columns(run)].reset_index(drop=True)
        meta[x] = grid
        meta[value] = step_interpolate(run[x].to_numpy(), run[value].to_numpy(), grid)
        parts.append(meta)
    if not parts:
        return pd.DataFrame(columns=list(RUN_COLUMNS) + [x, value])
    return pd.concat(parts, ignore_index=True)


def standard_error(values: pd.Series) -> float:
    """Standard error of the mean (sample std / sqrt(n)); NaN for fewer than two values."""
    values = values.dropna()
    if len(values) < 2:
        return float("nan")
    return float(values.std(ddof=1) / np.sqrt(len(values)))


def summarize_over_seeds(
    frame: pd.DataFrame, value: str = "hypervolume", by: Sequence[str] = ("task", *METHOD_KEYS)
) -> pd.DataFrame:
    """Mean, standard error and number of runs of ``value`` per group (e.g. per task, method and time)."""
    grouped = frame.groupby(list(by), sort=True, dropna=False)[value]
    out = grouped.agg(mean="mean", n="count").reset_index()
    out["se"] = grouped.agg(standard_error).to_numpy()
    return out


def add_regret(frame: pd.DataFrame, value: str = "hypervolume") -> pd.DataFrame:
    """Add ``regret`` = best value seen on the task by any run - value."""
    out = frame.copy()
    out["regret"] = out.groupby("task")[value].transform("max") - out[value]
    return out
