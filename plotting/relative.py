"""Relative performance: how much of the unpruned model's test performance survives a given amount of pruning.

For a run and a fraction pruned ``f``, the sub-network chosen is the one with the lowest validation error among
those whose size fraction is at most ``1 - f`` give or take :data:`SIZE_TOLERANCE` (ties: the smaller one, then
the earlier row); its relative performance is ``(1 - test_error) / reference`` with ``reference`` the unpruned
model's ``1 - test_error``:

1. an explicit value passed by the caller (one float, or one per task), else
2. the run's own row whose size fraction is 1.0 (the best-validation one if several), else
3. the full network's score the caller found beside the run (``run_references``, per run id: a weight-sharing
   search's super-network, a pruning baseline's fine-tuned model; see :mod:`plotting.unpruned`), else
4. the mean over the task's runs that have one of the last two.

Standard-NAS rows are first reduced to each trial's best-validation epoch (:func:`best_epoch_rows`).
"""
from __future__ import annotations

import warnings
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from benchmarks.results import best_epoch_rows
from plotting.hypervolume import RUN_COLUMNS, resolve_size_column, summarize_over_seeds

DEFAULT_FRACTIONS_PRUNED: tuple[float, ...] = tuple(np.round(np.arange(0.0, 0.91, 0.1), 2))
FULL_SIZE_TOLERANCE = 1e-6
# A sub-network counts as within 1 - f when it exceeds it by at most this (in size-fraction units): half the
# layers of MiniLM are 50.005% of its MACs once the task head's share counts, and should count at 50% pruned.
SIZE_TOLERANCE = 1e-3


def _best_valid(rows: pd.DataFrame, size_column: str) -> pd.Series | None:
    """The row with the lowest validation error (ties: smaller size, then earlier row), or None."""
    rows = rows[rows["valid_error"].notna()]
    if rows.empty:
        return None
    order = np.lexsort((np.arange(len(rows)), rows[size_column].to_numpy(float), rows["valid_error"].to_numpy(float)))
    return rows.iloc[order[0]]


def _performance(row: pd.Series | None) -> float:
    return float("nan") if row is None else 1.0 - float(row["test_error"])


def _full_model_performance(run: pd.DataFrame, size_column: str) -> float:
    full = run[np.isclose(run[size_column].astype(float), 1.0, atol=FULL_SIZE_TOLERANCE)]
    return _performance(_best_valid(full, size_column))


def unpruned_performance(run: pd.DataFrame, size_column: str, run_references: Mapping[str, float] | None = None,
                         ) -> tuple[float, str]:
    """One run's unpruned test performance (1 - test error) and where it comes from: ``"row"`` (its own row of size
    fraction 1.0, best validation error first), ``"found"`` (``run_references`` of its run id), or ``""`` (NaN:
    neither)."""
    own = _full_model_performance(run, size_column)
    if np.isfinite(own):
        return own, "row"
    found = (run_references or {}).get(str(run["run_id"].iloc[0])) if len(run) else None
    return (float(found), "found") if found is not None and np.isfinite(found) else (float("nan"), "")


def _reference_for(task: str, reference: float | Mapping[str, float] | None) -> float | None:
    if reference is None:
        return None
    if isinstance(reference, Mapping):
        return float(reference[task]) if task in reference else None
    return float(reference)


def relative_performance(
    frame: pd.DataFrame,
    fractions_pruned: Sequence[float] = DEFAULT_FRACTIONS_PRUNED,
    size_column: str | None = None,
    reference: float | Mapping[str, float] | pd.DataFrame | None = None,
    run_references: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """One row per run and fraction pruned: the chosen sub-network's performance relative to the unpruned model.

    Columns: the run columns, ``fraction_pruned``, ``size`` (of the chosen sub-network), ``performance``,
    ``reference_performance`` and ``relative_performance`` (NaN when nothing fits or a test error is missing).
    A ``reference`` table (per task, model and seed, e.g. plain fine-tuning) is
    :func:`relative_to_references`, runs without one measured against their own unpruned row; ``run_references``
    (run id -> the full network's test performance) stands in for a run's missing unpruned row.
    """
    if isinstance(reference, pd.DataFrame):
        return relative_to_references(frame, reference, fractions_pruned, size_column, fallback=True,
                                      run_references=run_references)
    fractions = np.asarray(fractions_pruned, dtype=float)
    if np.any((fractions < 0) | (fractions >= 1)):
        raise ValueError(f"fractions pruned must lie in [0, 1), got {fractions.tolist()}")
    points = best_epoch_rows(frame)
    records = []
    for task, task_rows in points.groupby("task", sort=True):
        column = resolve_size_column(task_rows, size_column)
        runs = dict(tuple(task_rows.groupby("run_id", sort=True)))
        own = {run_id: unpruned_performance(run, column, run_references)[0] for run_id, run in runs.items()}
        known = [p for p in own.values() if np.isfinite(p)]
        task_mean = float(np.mean(known)) if known else float("nan")
        explicit = _reference_for(str(task), reference)
        if explicit is None and not known:
            warnings.warn(f"task {task!r}: no unpruned model (size fraction 1.0) with a test error, no full network's "
                          "test score beside the runs and no reference value given; relative performance is NaN",
                          stacklevel=2)
        for run_id, run in runs.items():
            ref = explicit if explicit is not None else (own[run_id] if np.isfinite(own[run_id]) else task_mean)
            meta = {c: run[c].iloc[0] for c in RUN_COLUMNS if c in run.columns}
            sizes = run[column].astype(float).to_numpy()
            for fraction in fractions:
                chosen = _best_valid(run[sizes <= 1.0 - fraction + SIZE_TOLERANCE], column)
                perf = _performance(chosen)
                records.append(
                    {
                        **meta,
                        "size_column": column,
                        "fraction_pruned": float(fraction),
                        "size": float("nan") if chosen is None else float(chosen[column]),
                        "performance": perf,
                        "reference_performance": ref,
                        "relative_performance": perf / ref if ref else float("nan"),
                    }
                )
    return pd.DataFrame.from_records(records)


def _reference_keys(frame: pd.DataFrame, references: pd.DataFrame) -> list[str]:
    """What identifies a run's reference: task, seed and, where both tables name it, the model."""
    return ["task", "model", "seed"] if "model" in frame.columns and "model" in references.columns else ["task", "seed"]


def relative_to_references(
    frame: pd.DataFrame, references: pd.DataFrame, fractions_pruned: Sequence[float], size_column: str | None = None,
    fallback: bool = False, run_references: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """:func:`relative_performance` with each run measured against the reference of its task, model and seed
    (``references``: columns task, seed, reference and optionally model, e.g. plain fine-tuning of each seed).

    A run without a reference is left out, or with ``fallback`` measured against its own unpruned row (or its entry
    of ``run_references``), with a warning that names the runs either way."""
    keys = _reference_keys(frame, references)
    values = references.groupby(keys)["reference"].mean()
    parts, missing = [], []
    for key, rows in frame.groupby(keys, sort=True, dropna=False):
        if key in values.index:
            parts.append(relative_performance(rows, fractions_pruned, size_column, reference=float(values[key])))
        else:
            missing.append(rows)
    if missing:
        runs = sorted(pd.concat(missing)["run_id"].astype(str).unique())
        if fallback:
            parts.append(relative_performance(pd.concat(missing), fractions_pruned, size_column,
                                              run_references=run_references))
        what = "relative to their own unpruned sub-network" if fallback else "left out"
        warnings.warn(f"{len(runs)} run(s) without a reference (plain fine-tuning) for their task and seed are "
                      f"{what}: {', '.join(runs)}", stacklevel=2)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def relative_to_finetuned(
    frame: pd.DataFrame, references: pd.DataFrame, fractions_pruned: Sequence[float], size_column: str | None = None,
    by: Sequence[str] = ("task", "kind", "method"),
) -> pd.DataFrame:
    """Per group ``by`` (default: task and method) and fraction pruned: mean, s.e. and n over seeds of the relative
    test performance, each seed's runs relative to the plain fine-tuning of that task and seed (runs without one
    are left out, with a warning)."""
    rel = relative_to_references(frame, references, fractions_pruned, size_column)
    if rel.empty:
        return pd.DataFrame(columns=[*by, "fraction_pruned", "mean", "n", "se"])
    return summarize_over_seeds(rel, "relative_performance", by=(*by, "fraction_pruned"))
