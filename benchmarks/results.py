"""The tidy results table, the one contract between producers and plotting: schema, Pareto flag, epoch rules.

Every producer (standard NAS, weight-sharing search, pruning baselines) writes these columns, and every
consumer (hypervolume, plots, report, export) reads only these files through this module, so neither side
knows who made a row. The module imports nothing else of the project.

Standard NAS reports one row per epoch of a trial (same ``run_id`` and ``config``). As of any time, a trial
counts with the best validation error of its epochs seen so far: :func:`best_so_far_rows` keeps exactly the
epoch rows that improve their trial's best, and :func:`best_epoch_rows` keeps one row per trial (its best
epoch, ties to the earliest, with the runtime at which it was reached).
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

RESULTS_FILE = "results.csv"

COLUMNS: tuple[str, ...] = (
    "run_id",  # one search / pruning run
    "kind",  # "standard", "weight-sharing" or "baseline"
    "method",  # what is compared in plots: searcher name or baseline name
    "searcher",
    "search_space",
    "strategy",  # super-network training strategy ("" for standard NAS)
    "task",
    "model",
    "seed",
    "config",  # JSON of the Syne Tune config, or of the masks for baselines
    "valid_error",
    "test_error",
    "params",
    "param_fraction",
    "encoder_param_fraction",
    "macs",
    "mac_fraction",
    "size_objective",  # name of the size column minimised by the search
    "runtime_s",  # wall-clock seconds since the run started
    "epoch",  # epoch of the reported row (standard NAS), else empty
    "pareto",  # on the (valid_error, size objective) front of its run
    "valid_metrics",  # JSON object of every task metric on the validation split ("" where not scored)
    "test_metrics",  # the same on the test split ("" where not scored)
    "precision",  # dtype of the forward passes that scored (and trained) the row: fp32, bf16, fp16 ("": unknown)
    "latency_ms",  # predicted latency of the extracted sub-network from a latency table (empty without one)
    "latency_fraction",  # that over the full model's predicted latency (same table)
    "objectives",  # a search with more than two objectives: all of them, comma-separated ("": valid_error and size)
)
# Columns added after the first results files were written: a file without them loads with them empty.
METRICS_COLUMNS: tuple[str, ...] = ("valid_metrics", "test_metrics")
TEXT_OPTIONAL_COLUMNS: tuple[str, ...] = (*METRICS_COLUMNS, "precision", "objectives")
NUMBER_OPTIONAL_COLUMNS: tuple[str, ...] = ("latency_ms", "latency_fraction")
OPTIONAL_COLUMNS: tuple[str, ...] = (*TEXT_OPTIONAL_COLUMNS, *NUMBER_OPTIONAL_COLUMNS)
# Entries of a task's scores derived from its metrics (``benchmarks.tasks.metrics.compute_metrics``), not metrics.
DERIVED_SCORES: tuple[str, ...] = ("main", "error")

KINDS = ("standard", "weight-sharing", "baseline")
SIZE_OBJECTIVES = ("param_fraction", "encoder_param_fraction", "mac_fraction", "latency_fraction")
# Size objectives every row has; latency_fraction needs a latency table (search_spaces.latency).
COUNTED_SIZE_OBJECTIVES = ("param_fraction", "encoder_param_fraction", "mac_fraction")


@dataclass
class ResultRow:
    """One evaluated sub-network."""

    run_id: str
    kind: str
    method: str
    task: str
    model: str
    seed: int
    config: dict[str, Any]
    valid_error: float
    params: int
    param_fraction: float
    encoder_param_fraction: float
    macs: float
    mac_fraction: float
    runtime_s: float
    size_objective: str = "param_fraction"
    searcher: str = ""
    search_space: str = ""
    strategy: str = ""
    test_error: float = float("nan")
    epoch: float = float("nan")
    pareto: bool = False
    valid_metrics: dict[str, float] = field(default_factory=dict)
    test_metrics: dict[str, float] = field(default_factory=dict)
    precision: str = ""
    latency_ms: float = float("nan")
    latency_fraction: float = float("nan")
    objectives: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.size_objective not in SIZE_OBJECTIVES:
            raise ValueError(f"size_objective must be one of {SIZE_OBJECTIVES}, got {self.size_objective!r}")

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle, also a row pickled before the metrics or precision fields (e.g. in a Ray experiment's state)."""
        self.__dict__.update({"valid_metrics": {}, "test_metrics": {}, "precision": "", "latency_ms": float("nan"),
                              "latency_fraction": float("nan"), "objectives": "", **state})

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["config"] = json.dumps(self.config, sort_keys=True)
        record["valid_metrics"] = metrics_json(self.valid_metrics)
        record["test_metrics"] = metrics_json(self.test_metrics)
        return {name: record[name] for name in COLUMNS}


# ------------------------------------------------------------------------------------------- task metrics


def task_metrics(scores: Mapping[str, float]) -> dict[str, float]:
    """Every metric of a task's scores, in their order, without the derived ``main`` and ``error``."""
    return {str(name): float(value) for name, value in scores.items() if name not in DERIVED_SCORES}


def metrics_json(metrics: Mapping[str, float] | None) -> str:
    """The cell of a metrics column: a JSON object, or "" when nothing was measured."""
    return json.dumps({str(k): float(v) for k, v in metrics.items()}) if metrics else ""


def parse_metrics(cell: Any) -> dict[str, float]:
    """A metrics cell as a dict: {} for "", NaN or None (not measured, or a file from before the column)."""
    if isinstance(cell, Mapping):
        return {str(k): float(v) for k, v in cell.items()}
    if cell is None or (isinstance(cell, float) and np.isnan(cell)) or not str(cell).strip():
        return {}
    return {str(k): float(v) for k, v in json.loads(str(cell)).items()}


def pareto_mask(errors: Iterable[float], sizes: Iterable[float]) -> list[bool]:
    """True for points not dominated by any other (both minimised; of equal points the first is kept).

    Points with a NaN objective are neither dominated nor dominate. Sorted by (error, size, position), a point is
    on the front exactly when its size is below the smallest size of every point before it: O(n log n).
    """
    errors, sizes = np.asarray(list(errors), dtype=float), np.asarray(list(sizes), dtype=float)
    flags = np.ones(len(errors), dtype=bool)
    comparable = np.flatnonzero(~(np.isnan(errors) | np.isnan(sizes)))
    order = comparable[np.lexsort((comparable, sizes[comparable], errors[comparable]))]
    smallest_before = np.concatenate(([np.inf], np.minimum.accumulate(sizes[order])[:-1]))
    flags[order] = sizes[order] < smallest_before
    return flags.tolist()


def pareto_mask_nd(points: np.ndarray) -> list[bool]:
    """True for rows of ``points`` (n objectives, all minimised) that no other row dominates; of equal rows the
    first is kept; rows with a NaN are neither dominated nor dominate."""
    points = np.asarray(points, dtype=float)
    flags = np.ones(len(points), dtype=bool)
    rows = np.flatnonzero(~np.isnan(points).any(axis=1))
    others = points[rows]
    for i in rows:
        better_or_equal = (others <= points[i]).all(axis=1)
        strictly = (others < points[i]).any(axis=1)
        if (better_or_equal & strictly).any():
            flags[i] = False
            continue
        same = rows[(others == points[i]).all(axis=1)]
        flags[i] = bool(same[0] == i)
    return flags.tolist()


def objective_columns(part: pd.DataFrame) -> list[str]:
    """The objectives a run minimised: its ``objectives`` cell (more than two), else validation error and size."""
    cell = str(part["objectives"].iloc[0]) if "objectives" in part.columns else ""
    if cell and cell != "nan":
        return [name.strip() for name in cell.split(",") if name.strip()]
    return ["valid_error", str(part["size_objective"].iloc[0])]


def rows_to_frame(rows: Iterable[ResultRow | dict[str, Any]]) -> pd.DataFrame:
    records = [r.to_record() if isinstance(r, ResultRow) else r for r in rows]
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    for column in TEXT_OPTIONAL_COLUMNS:
        frame[column] = frame[column].fillna("")
    return frame


def mark_pareto(frame: pd.DataFrame) -> pd.DataFrame:
    """Recompute the ``pareto`` flag per run on (valid_error, size objective)."""
    frame = frame.copy()
    frame["pareto"] = False
    for _, idx in frame.groupby("run_id").groups.items():
        part = frame.loc[idx]
        columns = objective_columns(part)
        if len(columns) > 2:
            flags = pareto_mask_nd(part[columns].to_numpy(dtype=float))
        else:
            flags = pareto_mask(part["valid_error"].tolist(), part[columns[1]].tolist())
        frame.loc[idx, "pareto"] = flags
    return frame


def write_atomic(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write CSV (or Parquet by suffix) to a temporary file in the same folder, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if path.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_results(path: str | os.PathLike) -> pd.DataFrame:
    """Read one results file, or every ``results.csv`` (also gzipped, ``results.csv.gz``) and ``results.parquet``
    below a folder, into one frame."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.rglob(RESULTS_FILE)) + sorted(path.rglob(RESULTS_FILE + ".gz")) + sorted(
            path.rglob("results.parquet"))
        if not files:
            raise FileNotFoundError(f"no {RESULTS_FILE} found below {path}")
        return pd.concat([read_results(f) for f in files], ignore_index=True)
    if not path.is_file():
        raise FileNotFoundError(f"no such results file or folder: {path}")
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, keep_default_na=True,
                                dtype={"strategy": str, "searcher": str, "search_space": str,
                                       **{column: str for column in TEXT_OPTIONAL_COLUMNS}})
    except Exception as err:  # noqa: BLE001 - pandas' parser and Unicode errors name no file
        message = " ".join(str(err).split()) or type(err).__name__
        raise ValueError(f"cannot read the results table {path}: {message}") from err
    missing = [c for c in COLUMNS if c not in frame.columns and c not in OPTIONAL_COLUMNS]
    if missing:
        raise ValueError(f"{path} is not a results table: missing columns {missing}")
    for col in TEXT_OPTIONAL_COLUMNS:
        if col not in frame.columns:
            frame[col] = ""
    for col in NUMBER_OPTIONAL_COLUMNS:
        if col not in frame.columns:
            frame[col] = np.nan
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    for col in ("strategy", "searcher", "search_space", *TEXT_OPTIONAL_COLUMNS):
        frame[col] = frame[col].fillna("")
    return frame[[*COLUMNS, *(c for c in frame.columns if c not in COLUMNS)]]


# ------------------------------------------------------------------------------------------ per-epoch rows


def _is_epoch_row(frame: pd.DataFrame) -> pd.Series:
    return frame["epoch"].notna()


def trial_ids(frame: pd.DataFrame) -> pd.Series:
    """One id per trial: (run, config) for per-epoch standard-NAS rows, the row itself otherwise."""
    by_config = frame["run_id"].astype(str) + "\x1f" + frame["config"].astype(str)
    by_row = "row\x1f" + pd.Series(frame.index.astype(str), index=frame.index)
    return by_config.where(_is_epoch_row(frame), by_row)


def time_ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in the order they were reported: by runtime, then epoch (stable)."""
    return frame.sort_values(["runtime_s", "epoch"], kind="stable", na_position="first")


def best_epoch_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Reduce per-epoch rows of each trial (same run_id and config) to its best-validation epoch row.

    The kept row carries the runtime at which that best epoch was reported; ties keep the earliest epoch.
    Rows without an epoch pass through unchanged; the original row order is kept.
    """
    is_epoch = _is_epoch_row(frame)
    if not is_epoch.any():
        return frame.copy()
    epochs = time_ordered(frame[is_epoch])
    score = epochs["valid_error"].astype(float).fillna(np.inf)
    best = score.groupby([epochs["run_id"], epochs["config"]], sort=False).idxmin()
    return frame[~is_epoch | frame.index.isin(best.to_numpy())].copy()


def best_so_far_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep the per-epoch rows that improve their trial's best validation error so far (all other rows too).

    The front of these rows up to any time equals the front of every trial's best epoch as of that time.
    """
    is_epoch = _is_epoch_row(frame)
    if not is_epoch.any():
        return frame.copy()
    epochs = time_ordered(frame[is_epoch])
    score = epochs["valid_error"].astype(float).fillna(np.inf)
    keys = [epochs["run_id"], epochs["config"]]
    previous_best = score.groupby(keys, sort=False).cummin().groupby(keys, sort=False).shift(1)
    first = previous_best.isna()
    improves = first | (score < previous_best)
    return frame[~is_epoch | frame.index.isin(epochs.index[improves.to_numpy()])].copy()


def mark_pareto_best_epochs(frame: pd.DataFrame) -> pd.DataFrame:
    """``pareto`` True for each trial's best-validation epoch row that is on the front of those rows."""
    frame = frame.copy()
    frame["pareto"] = False
    if frame.empty:
        return frame
    best = mark_pareto(best_epoch_rows(frame))
    frame.loc[best.index, "pareto"] = best["pareto"].astype(bool)
    return frame


# -------------------------------------------------------------------------------------------- another metric


def metric_values(frame: pd.DataFrame, column: str, metric: str) -> pd.Series:
    """``metric`` from each row's metrics column (``valid_metrics`` or ``test_metrics``), NaN where it is absent."""
    cells = frame[column] if column in frame.columns else pd.Series("", index=frame.index)
    return pd.Series([parse_metrics(cell).get(metric, np.nan) for cell in cells], index=frame.index, dtype=float)


def metric_task(task: str, metric: str) -> str:
    """The task name of rows re-expressed in ``metric``, e.g. ``"mrpc (accuracy)"``."""
    return f"{task} ({metric})"


def with_metric(frame: pd.DataFrame, metric: str, select_by_metric: bool = False) -> pd.DataFrame:
    """The rows re-expressed in ``metric``, one of the task metrics their ``valid_metrics`` hold.

    ``test_error`` becomes ``1 - test_metrics[metric]`` (NaN where the test split was not scored) and ``task``
    becomes :func:`metric_task` (e.g. ``"mrpc (accuracy)"``), so the rows form a task of their own in cross-task
    tables (and ``run_id`` likewise, so they are runs of their own). Rows whose ``valid_metrics`` lack ``metric``
    (not scored, or a file from before the column) are dropped.

    By default ``valid_error`` stays the main metric's: what each run chose (its front, the best epoch of each
    standard-NAS trial, the best-validation sub-network within a size) is unchanged, and only how the chosen
    sub-networks are measured changes; so the test scores a weight-sharing search took on its front stay usable.
    With ``select_by_metric`` ``valid_error`` becomes ``1 - valid_metrics[metric]`` as well, as if the runs had
    minimised it, and ``pareto`` is recomputed (a weight-sharing run then may choose a sub-network off the
    front it was searched for, which has no test score).
    """
    valid = metric_values(frame, "valid_metrics", metric)
    test = metric_values(frame, "test_metrics", metric)
    rows = frame.loc[valid.notna()].copy()
    rows["test_error"] = 1.0 - test[rows.index]
    if select_by_metric:
        rows["valid_error"] = 1.0 - valid[rows.index]
        rows = mark_pareto_best_epochs(rows)
    rows["task"] = [metric_task(str(task), metric) for task in rows["task"]]
    # runs of their own too: rules that group a run's rows (best epoch per trial) must not pool them with the
    # same run's rows in the main metric
    rows["run_id"] = [metric_task(str(run_id), metric) for run_id in rows["run_id"]]
    return rows
