"""The results table of a weight-sharing search: one row per evaluated sub-network, test errors on the front."""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from baselines.searchers.ask_tell import config_key
from baselines.searchers.loop import Config, Evaluation
from benchmarks.objectives import CostFields
from benchmarks.results import COLUMNS, ResultRow, mark_pareto, write_atomic

KIND = "weight-sharing"
# Columns that must agree between a resumed run and its earlier rows.
RESUME_COLUMNS = ("run_id", "kind", "searcher", "search_space", "strategy", "task", "seed", "size_objective")


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

    def row(self, evaluation: Evaluation, cost: CostFields, test_error: float = math.nan) -> ResultRow:
        return ResultRow(
            run_id=self.run_id, kind=KIND, method=self.searcher, searcher=self.searcher,
            search_space=self.search_space, strategy=self.strategy, task=self.task, model=self.model,
            seed=self.seed, config=evaluation.config, valid_error=evaluation.valid_error, test_error=test_error,
            runtime_s=evaluation.runtime_s, size_objective=self.size_objective, **cost.as_row_fields(),
        )


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

    def frame(self, evaluations: Sequence[Evaluation], test_errors: Mapping[Any, float]) -> pd.DataFrame:
        """The table of ``evaluations`` (which only ever grows): Pareto rows marked, with known test errors."""
        for evaluation in evaluations[len(self._records):]:
            self._records.append(self.identity.row(evaluation, self.cost(evaluation.config)).to_record())
            self._keys.append(config_key(evaluation.config))
        frame = mark_pareto(pd.DataFrame.from_records(self._records, columns=list(COLUMNS)))
        frame["test_error"] = [test_errors.get(key, math.nan) for key in self._keys]
        frame.loc[~frame["pareto"].astype(bool), "test_error"] = math.nan
        return frame

    def write(self, evaluations: Sequence[Evaluation], test_errors: Mapping[Any, float],
              force: bool = False) -> pd.DataFrame | None:
        """Write the table (always with ``force``); returns it, or None when the write was skipped."""
        started = time.perf_counter()
        if not force and started - self._last_end < self._last_duration / self.max_overhead:
            return None
        frame = self.frame(evaluations, test_errors)
        write_atomic(frame, self.path)
        self._last_end = time.perf_counter()
        self._last_duration = self._last_end - started
        return frame


def previous_evaluations(
    frame: pd.DataFrame, identity: RunIdentity, force: bool
) -> tuple[list[Evaluation], dict[str, float]]:
    """Earlier rows of this run (in order) and their known test errors; checks they belong to this run."""
    expected = {"run_id": identity.run_id, "kind": KIND, "searcher": identity.searcher,
                "search_space": identity.search_space, "strategy": identity.strategy, "task": identity.task,
                "seed": identity.seed, "size_objective": identity.size_objective}
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
    test_errors = {config_key(json.loads(row.config)): float(row.test_error)
                   for row in frame.itertuples() if not pd.isna(row.test_error)}
    return evaluations, test_errors
