"""The results table of a weight-sharing search: one row per evaluated sub-network, test errors on the front.

Every row carries the task's metrics on the validation split (``valid_metrics``), and every front row those on
the test split (``test_metrics``) beside its test error.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from baselines.searchers.ask_tell import config_key
from baselines.searchers.loop import Config, Evaluation
from benchmarks.objectives import CostFields
from benchmarks.results import COLUMNS, ResultRow, mark_pareto, metrics_json, parse_metrics, write_atomic

KIND = "weight-sharing"
# Columns that must agree between a resumed run and its earlier rows.
RESUME_COLUMNS = ("run_id", "kind", "searcher", "search_space", "strategy", "task", "seed", "size_objective",
                  "objectives")


@dataclass(frozen=True)
class RunIdentity:
    """The descriptive columns of every row of one search run."""

    run_id: str
    searcher: str
    search_space: str
    strategy: str
    task: str
    model: str
    seed: int
    size_objective: str
    precision: str = ""
    objectives: str = ""  # more than two objectives: all of them, comma-separated

    def row(self, evaluation: Evaluation, cost: CostFields, test_error: float = math.nan) -> ResultRow:
        return ResultRow(
            run_id=self.run_id, kind=KIND, method=self.searcher, searcher=self.searcher,
            search_space=self.search_space, strategy=self.strategy, task=self.task, model=self.model,
            seed=self.seed, config=evaluation.config, valid_error=evaluation.valid_error, test_error=test_error,
            runtime_s=evaluation.runtime_s, size_objective=self.size_objective, precision=self.precision,
            objectives=self.objectives, **cost.as_row_fields(),
        )


@dataclass
class Measured:
    """What a run measured of its sub-networks beyond each one's validation error, by config key: test errors
    (of front rows), and every task metric on the validation and the test split."""

    test_errors: dict[Any, float] = field(default_factory=dict)
    valid_metrics: dict[Any, dict[str, float]] = field(default_factory=dict)
    test_metrics: dict[Any, dict[str, float]] = field(default_factory=dict)


@dataclass
class ResultsTable:
    """The run's results table, one record per evaluation (each config serialised once), written atomically.

    Only rows on the current front carry a test error, so a resumed run's table equals an uninterrupted one's.
    :meth:`write` skips a write while the time since the last one is under ``1 / max_overhead`` times what it
    took, so rewriting the table costs at most about that share of the run: every evaluation is written for
    small spaces, less often when rows are large (the ``large`` space has thousands of keys per config).
    """

    identity: RunIdentity
    cost: Callable[[Config], CostFields]
    path: Path
    max_overhead: float = 0.1
    _records: list[dict[str, Any]] = field(default_factory=list, repr=False)
    _keys: list[tuple] = field(default_factory=list, repr=False)
    _last_end: float = -math.inf
    _last_duration: float = 0.0

    def frame(self, evaluations: Sequence[Evaluation], measured: Measured) -> pd.DataFrame:
        """The table of ``evaluations`` (which only ever grows): Pareto rows marked, with known test errors
        and metrics (validation metrics are taken when a row is first seen: evaluations do not change)."""
        for evaluation in evaluations[len(self._records):]:
            key = config_key(evaluation.config)
            record = self.identity.row(evaluation, self.cost(evaluation.config)).to_record()
            record["valid_metrics"] = metrics_json(measured.valid_metrics.get(key))
            self._records.append(record)
            self._keys.append(key)
        frame = mark_pareto(pd.DataFrame.from_records(self._records, columns=list(COLUMNS)))
        frame["test_error"] = [measured.test_errors.get(key, math.nan) for key in self._keys]
        frame["test_metrics"] = [metrics_json(measured.test_metrics.get(key)) for key in self._keys]
        off_front = ~frame["pareto"].astype(bool)
        frame.loc[off_front, "test_error"] = math.nan
        frame.loc[off_front, "test_metrics"] = ""
        return frame

    def write(self, evaluations: Sequence[Evaluation], measured: Measured,
              force: bool = False) -> pd.DataFrame | None:
        """Write the table (always with ``force``); returns it, or None when the write was skipped."""
        started = time.perf_counter()
        if not force and started - self._last_end < self._last_duration / self.max_overhead:
            return None
        frame = self.frame(evaluations, measured)
        write_atomic(frame, self.path)
        self._last_end = time.perf_counter()
        self._last_duration = self._last_end - started
        return frame


def previous_evaluations(
    frame: pd.DataFrame, identity: RunIdentity, force: bool
) -> tuple[list[Evaluation], Measured]:
    """Earlier rows of this run (in order) and what else they measured (test errors, metrics of both splits);
    checks they belong to this run. Rows of a file from before the metrics columns have no metrics."""
    expected = {"run_id": identity.run_id, "kind": KIND, "searcher": identity.searcher,
                "search_space": identity.search_space, "strategy": identity.strategy, "task": identity.task,
                "seed": identity.seed, "size_objective": identity.size_objective, "objectives": identity.objectives}
    mismatches = []
    for column in RESUME_COLUMNS:
        found = sorted({str(value) for value in frame[column]})
        if found != [str(expected[column])]:
            mismatches.append(f"{column}: file has {', '.join(found)}, this run {expected[column]}")
    if mismatches and not force:
        raise ValueError("cannot resume: the results file belongs to another run (" + "; ".join(mismatches)
                         + "); use another --output-dir, or --force")
    evaluations = [
        Evaluation(config=json.loads(row.config), valid_error=float(row.valid_error), runtime_s=float(row.runtime_s))
        for row in frame.itertuples()
    ]
    measured = Measured()
    for row, evaluation in zip(frame.itertuples(), evaluations):
        key = config_key(evaluation.config)
        if parse_metrics(row.valid_metrics):
            measured.valid_metrics[key] = parse_metrics(row.valid_metrics)
        if not pd.isna(row.test_error):
            measured.test_errors[key] = float(row.test_error)
            if parse_metrics(row.test_metrics):
                measured.test_metrics[key] = parse_metrics(row.test_metrics)
    return evaluations, measured
