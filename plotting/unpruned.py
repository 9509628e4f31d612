"""The unpruned (full) network's test scores of each run, from wherever the run has them.

Relative performance divides a sub-network's test score by the full network's. A run's own row of size fraction
1.0 is the first choice (:mod:`plotting.relative`); a weight-sharing search rarely has one, since it scores the
test split on its front only and the full network is seldom on it. The score is then found beside the run's
results, through the ``run.json`` of the folder that holds them:

1. a weight-sharing search names its super-network (``arguments.supernet``): the ``train-supernet`` folder's
   ``metrics.json`` holds the full network's test metrics (``test.test_full_error``, ``test.test_full_f1``, ...);
2. a pruning baseline names its fine-tuned model (``arguments.finetuned``): the ``finetune`` folder's
   ``metrics.json`` holds its test metrics (``test.main``, ``test.f1``, ...).

Only files are read, so the report needs no model.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from benchmarks.results import RESULTS_FILE, metric_task

RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
DERIVED = ("main", "error")


@dataclass(frozen=True)
class FullNetworkScore:
    """The full network's test scores of a run: ``main`` (1 - test error) and every task metric by name."""

    scores: dict[str, float]
    source: Path  # the metrics.json they were read from
    what: str  # e.g. "the super-network's full network"

    @property
    def main(self) -> float:
        return self.scores["main"]


@dataclass
class RunReferences:
    """Per run id, the full network's test scores found beside the run (runs without one are absent)."""

    by_run: dict[str, FullNetworkScore] = field(default_factory=dict)

    def values(self) -> dict[str, float]:
        """Run id -> the full network's main test score, and ``"RUN (METRIC)"`` -> its score in each metric, as
        :func:`benchmarks.results.with_metric` names a run re-expressed in that metric."""
        values: dict[str, float] = {}
        for run_id, found in self.by_run.items():
            values[run_id] = found.main
            values.update({metric_task(run_id, name): value for name, value in found.scores.items()
                           if name not in DERIVED})
        return values

    def sources(self) -> dict[str, str]:
        """Run id -> where its scores come from, e.g. ``the super-network's full network (runs/demo/train/metrics.json)``."""
        return {run_id: f"{found.what} ({found.source})" for run_id, found in self.by_run.items()}

    def update(self, other: "RunReferences") -> None:
        self.by_run.update(other.by_run)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def supernet_full_scores(folder: Path) -> FullNetworkScore | None:
    """The full network's test scores in a ``train-supernet`` folder's metrics.json (``folder`` or its parent)."""
    for candidate in (folder, folder.parent):
        metrics = _read_json(candidate / METRICS_FILE)
        test = metrics.get("test") if isinstance(metrics, dict) else None
        if not isinstance(test, dict) or "test_full_error" not in test:
            continue
        prefix = "test_full_"
        scores = {name[len(prefix):]: float(value) for name, value in test.items() if name.startswith(prefix)}
        scores["main"] = 1.0 - float(test["test_full_error"])
        return FullNetworkScore(scores, candidate / METRICS_FILE, "the super-network's full network")
    return None


def finetuned_scores(folder: Path) -> FullNetworkScore | None:
    """The test scores of a fine-tuned model from its ``finetune`` folder's metrics.json (``folder`` is that folder
    or its ``best_model/``)."""
    for candidate in (folder, folder.parent):
        metrics = _read_json(candidate / METRICS_FILE)
        test = metrics.get("test") if isinstance(metrics, dict) else None
        if not isinstance(test, dict) or "main" not in test or "history" not in metrics:
            continue
        scores = {name: float(value) for name, value in test.items()}
        return FullNetworkScore(scores, candidate / METRICS_FILE, "the fine-tuned model")
    return None


def run_full_scores(folder: Path) -> FullNetworkScore | None:
    """The full network's test scores of the run whose results lie in ``folder``, from its run.json."""
    record = _read_json(folder / RUN_FILE)
    arguments = record.get("arguments") if isinstance(record, dict) else None
    if not isinstance(arguments, dict):
        return None
    if arguments.get("supernet"):
        return supernet_full_scores(Path(arguments["supernet"]))
    if arguments.get("finetuned"):
        return finetuned_scores(Path(arguments["finetuned"]))
    return None


def _results_files(source: Path) -> Iterator[Path]:
    """The results files :func:`benchmarks.results.read_results` reads from ``source``."""
    if source.is_file():
        yield source
        return
    for pattern in (RESULTS_FILE, RESULTS_FILE + ".gz", "results.parquet"):
        yield from sorted(source.rglob(pattern))


def _run_ids(path: Path) -> list[str]:
    frame = pd.read_parquet(path, columns=["run_id"]) if path.suffix == ".parquet" else pd.read_csv(
        path, usecols=["run_id"], dtype={"run_id": str})
    return sorted(frame["run_id"].astype(str).unique())


def run_references(source: str | os.PathLike) -> RunReferences:
    """The full network's test scores of every run below ``source`` (a results file or folder) that has them."""
    found = RunReferences()
    for path in _results_files(Path(source)):
        scores = run_full_scores(path.parent)
        if scores is not None:
            found.by_run.update({run_id: scores for run_id in _run_ids(path)})
    return found
