"""Average rank of methods across tasks at every step of a common grid (time or evaluations).

At each grid point the methods of a task are ranked by hypervolume (higher is better, rank 1; ties share the
average rank), and ranks are averaged over the tasks where a method ran (a method absent from a task is left
out of that task's ranking). :func:`average_ranks` ranks the mean over seeds; :func:`bootstrap_average_ranks`
follows the paper: each bootstrap sample picks one run (seed) per method and task, ranks, averages over tasks,
and the result is the mean (and spread) over samples.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from plotting.hypervolume import METHOD_KEYS, TIME

Method = tuple[str, ...]


def rank_higher_better(values: np.ndarray, axis: int) -> np.ndarray:
    """Ranks along ``axis`` with the highest value ranked 1, ties averaged and NaN left out (rank NaN)."""
    values = np.asarray(values, dtype=float)
    from scipy.stats import rankdata  # here: scipy.stats takes half a second, and `plm-nas report --help` none

    return rankdata(-values, axis=axis, nan_policy="omit")


def _methods(frame: pd.DataFrame, keys: Sequence[str]) -> list[Method]:
    return sorted({tuple(map(str, k)) for k in frame[list(keys)].drop_duplicates().itertuples(index=False)})


def _grid(frame: pd.DataFrame, x: str) -> np.ndarray:
    return np.sort(frame[x].unique().astype(float))


def _runs_matrix(part: pd.DataFrame, grid: np.ndarray, x: str, value: str) -> np.ndarray:
    """Runs x grid matrix of ``value`` for the runs in ``part`` (every run must cover every grid point)."""
    table = part.pivot_table(index="run_id", columns=x, values=value, aggfunc="first")
    table = table.reindex(columns=grid)
    if table.isna().to_numpy().any():
        raise ValueError("every run must have a value at every grid point; evaluate runs with on_grid() first")
    return table.to_numpy(dtype=float)


def _to_frame(
    methods: list[Method], keys: Sequence[str], grid: np.ndarray, x: str, **arrays: np.ndarray
) -> pd.DataFrame:
    """Long frame: one row per method and grid point, with the method's key columns first."""
    blocks = []
    for m, method in enumerate(methods):
        block = {k: [v] * len(grid) for k, v in zip(keys, method)}
        block[x] = grid
        block.update({name: arr[m] for name, arr in arrays.items()})
        blocks.append(pd.DataFrame(block))
    return pd.concat(blocks, ignore_index=True)


def _select(frame: pd.DataFrame, keys: Sequence[str], method: Method) -> pd.DataFrame:
    mask = np.logical_and.reduce([frame[k].astype(str).to_numpy() == v for k, v in zip(keys, method)])
    return frame[mask]


def average_ranks(
    frame: pd.DataFrame, x: str = TIME, value: str = "hypervolume", keys: Sequence[str] = METHOD_KEYS
) -> pd.DataFrame:
    """Rank methods by their mean ``value`` over seeds per task and grid point, then average over tasks."""
    methods = _methods(frame, keys)
    grid = _grid(frame, x)
    total = np.zeros((len(methods), len(grid)))
    count = np.zeros((len(methods), len(grid)))
    for _, task in frame.groupby("task", sort=True):
        means = np.full((len(methods), len(grid)), np.nan)
        for m, method in enumerate(methods):
            part = _select(task, keys, method)
            if len(part):
                means[m] = _runs_matrix(part, grid, x, value).mean(axis=0)
        ranks = rank_higher_better(means, axis=0)
        ok = np.isfinite(ranks)
        total[ok] += ranks[ok]
        count[ok] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        rank = total / count
    return _to_frame(methods, keys, grid, x, rank=rank)


def bootstrap_average_ranks(
    frame: pd.DataFrame,
    x: str = TIME,
    value: str = "hypervolume",
    num_samples: int = 1000,
    seed: int = 0,
    keys: Sequence[str] = METHOD_KEYS,
) -> pd.DataFrame:
    """Average rank over tasks, bootstrapped over seeds: columns ``rank`` (mean) and ``rank_std`` over samples.

    Reproducible for a given ``seed``; tasks and methods are visited in sorted order.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be at least 1, got {num_samples}")
    rng = np.random.default_rng(seed)
    methods = _methods(frame, keys)
    grid = _grid(frame, x)
    shape = (num_samples, len(methods), len(grid))
    total = np.zeros(shape)
    count = np.zeros(shape)
    for _, task in frame.groupby("task", sort=True):
        sample = np.full(shape, np.nan)
        for m, method in enumerate(methods):
            part = _select(task, keys, method)
            if len(part):
                runs = _runs_matrix(part, grid, x, value)
                sample[:, m, :] = runs[rng.integers(0, len(runs), size=num_samples)]
        ranks = rank_higher_better(sample, axis=1)
        ok = np.isfinite(ranks)
        total[ok] += ranks[ok]
        count[ok] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        per_sample = total / count
    return _to_frame(
        methods, keys, grid, x, rank=per_sample.mean(axis=0), rank_std=per_sample.std(axis=0)
    )
