"""The paper's cross-task tables, methods x tasks: relative performance at one pruning level and the searchers'
average ranks by final hypervolume, each cell the mean ± s.e. over seeds, rendered as Markdown and LaTeX.

* Relative performance (:func:`relative_at`): per run, the test performance of the best-validation sub-network
  whose size fraction is at most ``1 - fraction_pruned``, over the unpruned model's (see :mod:`plotting.relative`),
  in %. Higher is better; each task's best method is bold.
  A task can also get a column per secondary metric, e.g. ``mrpc (accuracy)`` beside ``mrpc`` (its main metric,
  F1): the same chosen sub-networks and unpruned model measured in that metric (see
  :func:`benchmarks.results.with_metric`); :data:`DEFAULT_SECONDARY_METRICS` says which.
* Final hypervolumes (:func:`hypervolume_table`): each searcher's mean over seeds, the values ranked next.
* Ranks (:func:`final_ranks`): per task and seed, the searchers (weight-sharing and standard NAS, not the pruning
  baselines) that ran with that seed are ranked by their final hypervolume (1 = best, ties share the average
  rank); a cell is a method's mean rank over seeds, and ``average`` its mean over the tasks it ran on.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from benchmarks.results import metric_values, with_metric
from plotting.document import DASH, Cell, Table, format_mean_se
from plotting.hypervolume import (
    above_baseline_settings,
    final_hypervolume,
    hypervolume_over_time,
    summarize_over_seeds,
)
from plotting.relative import relative_performance

SEARCHER_KINDS: tuple[str, ...] = ("weight-sharing", "standard")
TABLES_DIR = "tables"
AVERAGE = "average"

Method = tuple[str, str]  # (kind, method)
# (task, metric) pairs reported beside the task's main metric: MRPC's constant predictor already scores an F1 of
# 0.81, so its accuracy is reported too.
DEFAULT_SECONDARY_METRICS: tuple[tuple[str, str], ...] = (("mrpc", "accuracy"),)


def parse_secondary_metrics(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``TASK:METRIC`` strings (as ``plm-nas report --secondary-metrics`` takes them) as (task, metric) pairs."""
    pairs = []
    for value in values:
        task, _, metric = str(value).rpartition(":")
        if not task or not metric:
            raise ValueError(f"--secondary-metrics takes TASK:METRIC, e.g. mrpc:accuracy; got {value!r}")
        pairs.append((task, metric))
    return tuple(pairs)


def parse_baseline_errors(values: Sequence[str]) -> tuple[tuple[str, float], ...]:
    """``TASK:ERROR`` strings (``plm-nas report --baseline-errors``) as (task, error) pairs; the error must be a
    number in (0, 1] (a validation error, e.g. the constant predictor's)."""
    pairs = []
    for value in values:
        task, _, number = str(value).rpartition(":")
        try:
            error = float(number)
        except ValueError:
            error = float("nan")
        if not task or not (0 < error <= 1):
            raise ValueError(f"--baseline-errors takes TASK:ERROR with ERROR in (0, 1], e.g. mrpc:0.178; got {value!r}")
        pairs.append((task, error))
    return tuple(pairs)


def with_secondary_metrics(frame: pd.DataFrame, secondary: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """``frame`` plus, for each (task, metric) of ``secondary``, the task's rows re-expressed in ``metric`` as the
    task ``"TASK (METRIC)"`` (:func:`benchmarks.results.with_metric`). A pair is skipped where no row of the task
    carries the metric (older files) or where it is the task's main metric (it equals every row's validation
    error)."""
    parts = [frame]
    for task, metric in secondary:
        rows = frame[frame["task"].astype(str) == task]
        values = metric_values(rows, "valid_metrics", metric)
        measured = values.notna()
        if not measured.any():
            continue
        main = np.isclose(1.0 - values[measured], rows.loc[measured, "valid_error"].astype(float), rtol=0, atol=1e-12)
        if main.all():
            continue
        parts.append(with_metric(rows, metric))
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else frame


def relative_at(frame: pd.DataFrame, fraction_pruned: float, size_column: str | None = None,
                references: pd.DataFrame | None = None,
                run_references: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Per task and method: ``mean``, ``se`` and ``n`` over seeds of the relative performance at ``fraction_pruned``,
    against ``references`` (per task and seed, e.g. plain fine-tuning) where given, else each run's unpruned row
    (or the full network's score found beside it, ``run_references``)."""
    rel = relative_performance(frame, [fraction_pruned], size_column, reference=references,
                               run_references=run_references)
    return summarize_over_seeds(rel, "relative_performance")


def final_ranks(final: pd.DataFrame, kinds: Sequence[str] = SEARCHER_KINDS) -> pd.DataFrame:
    """Per task and method: ``mean``, ``se`` and ``n`` over seeds of its rank by final hypervolume among the
    searchers run with the same seed on the task (``final``: one row per run, as ``final_hypervolume`` gives)."""
    runs = final[final["kind"].isin(kinds)]
    ranks = runs.groupby(["task", "seed"])["hypervolume"].rank(ascending=False, method="average")
    return summarize_over_seeds(runs.assign(rank=ranks), "rank")


def uneven_competitors(final: pd.DataFrame, kinds: Sequence[str] = SEARCHER_KINDS) -> list[str]:
    """One sentence per task whose seeds did not all run the same searchers: there a rank of one seed is among
    fewer competitors than another's, which :func:`final_ranks`' means hide (e.g. a seed still missing a run)."""
    runs = final[final["kind"].isin(kinds)]
    sentences = []
    for task, rows in runs.groupby("task", sort=True):
        per_seed = {seed: {f"{k} {m}" for k, m in zip(part["kind"], part["method"])}
                    for seed, part in rows.groupby("seed", sort=True)}
        everyone = set().union(*per_seed.values())
        lacking = [f"seed {seed} without {', '.join(sorted(everyone - ran))}"
                   for seed, ran in per_seed.items() if ran != everyone]
        if lacking:
            sentences.append(f"{task}: the seeds ranked different searchers ({'; '.join(lacking)}), so a rank there "
                             f"is among fewer competitors in some seeds than in others.")
    return sentences


def _finite_mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


@dataclass(frozen=True)
class CrossTaskTable:
    """A methods x tasks table of mean ± s.e. cells, the best cell of each task in bold."""

    table: Table
    caption: str

    def latex(self) -> str:
        return f"% {self.caption}\n% needs \\usepackage{{booktabs}}\n{self.table.to_latex(label_columns=2)}"


def cross_task_table(summary: pd.DataFrame, higher_is_better: bool, text: Callable[[float, float], str],
                     average: bool = False) -> Table:
    """Rows (kind, method), one column per task (and the mean over tasks with ``average``); ``summary`` has
    columns task, kind, method, mean and se. A method without a value for a task gets a dash."""
    tasks = sorted(summary["task"].astype(str).unique())
    methods: list[Method] = sorted({(str(k), str(m)) for k, m in zip(summary["kind"], summary["method"])})
    cells = {(str(r.task), str(r.kind), str(r.method)): (float(r.mean), float(r.se)) for r in summary.itertuples()}
    columns = [[cells.get((task, *method), (np.nan, np.nan)) for method in methods] for task in tasks]
    header = ["kind", "method", *tasks]
    if average:
        means = np.array([[mean for mean, _ in column] for column in columns], dtype=float).reshape(len(tasks), -1)
        over_tasks = [_finite_mean(means[:, m]) for m in range(len(methods))]
        columns.append([(value, np.nan) for value in over_tasks])
        header.append(AVERAGE)
    rows: list[list[Cell]] = [[Cell(kind), Cell(method)] for kind, method in methods]
    for c, column in enumerate(columns):
        values = np.array([mean for mean, _ in column], dtype=float)
        best = (np.nanmax(values) if higher_is_better else np.nanmin(values)) if np.isfinite(values).any() else None
        for row, (mean, se) in zip(rows, column):
            is_average = average and c == len(columns) - 1
            cell_text = DASH if not np.isfinite(mean) else (f"{mean:.2f}" if is_average else text(mean, se))
            row.append(Cell(cell_text, best is not None and np.isfinite(mean) and bool(np.isclose(mean, best))))
    return Table(header, rows)


def relative_table(frame: pd.DataFrame, fraction_pruned: float, size_column: str | None = None,
                   secondary_metrics: Sequence[tuple[str, str]] = (),
                   references: pd.DataFrame | None = None,
                   run_references: Mapping[str, float] | None = None) -> CrossTaskTable:
    """The cross-task relative-performance table at ``fraction_pruned``, in % of the unpruned model (``references``:
    plain fine-tuning per task and seed, where given), with a column per (task, metric) of ``secondary_metrics``
    whose rows carry that metric (:func:`with_secondary_metrics`)."""
    extended = with_secondary_metrics(frame, secondary_metrics)
    summary = relative_at(extended, fraction_pruned, size_column, references, run_references)
    table = cross_task_table(summary, True, lambda mean, se: format_mean_se(mean, se, digits=1, scale=100.0))
    unpruned = ("plain fine-tuning's test performance, same task and seed" if references is not None
                else "the unpruned model's test performance")
    caption = f"Relative performance (% of {unpruned}) at {100 * fraction_pruned:g}% pruned, mean ± s.e. over seeds"
    added = sorted(set(extended["task"].astype(str)) - set(frame["task"].astype(str)))
    if added:
        caption += (f"; {', '.join(added)}: the same sub-networks (chosen by the task's main metric on validation) "
                    "and unpruned model, measured in that metric")
    return CrossTaskTable(table, caption)


def ranks_table(final: pd.DataFrame, kinds: Sequence[str] = SEARCHER_KINDS) -> CrossTaskTable:
    """The cross-task table of searchers' ranks by final hypervolume, with their average over tasks."""
    table = cross_task_table(final_ranks(final, kinds), False, lambda mean, se: format_mean_se(mean, se, digits=2),
                             average=True)
    caption = ("Rank of each searcher by final hypervolume per task (1 = best; mean ± s.e. over seeds) and its "
               "average over tasks")
    return CrossTaskTable(table, caption)


def hypervolume_table(final: pd.DataFrame, kinds: Sequence[str] = SEARCHER_KINDS) -> CrossTaskTable:
    """The cross-task table of searchers' final hypervolumes (the values :func:`ranks_table` ranks)."""
    runs = final[final["kind"].isin(kinds)]
    table = cross_task_table(summarize_over_seeds(runs, "hypervolume"), True,
                             lambda mean, se: format_mean_se(mean, se, digits=3))
    caption = "Final hypervolume of each searcher per task (larger is better; mean ± s.e. over seeds)"
    return CrossTaskTable(table, caption)


def above_baseline_tables(compared: pd.DataFrame, baseline_errors: Mapping[str, float],
                          size_column: str | None = None, baseline: str = "the constant predictor",
                          kinds: Sequence[str] = SEARCHER_KINDS) -> tuple[CrossTaskTable, CrossTaskTable] | None:
    """The hypervolume and rank tables again, with the hypervolume that credits only validation errors below each
    task's ``baseline_errors`` (:func:`plotting.hypervolume.above_baseline_settings`), on the tasks that have one;
    ``compared``: the rows hypervolumes are computed on. None if no searcher ran on such a task."""
    rows = compared[compared["task"].astype(str).isin(set(map(str, baseline_errors)))
                    & compared["kind"].isin(kinds)]
    if rows.empty:
        return None
    settings = above_baseline_settings(baseline_errors, size_column=size_column)
    final = final_hypervolume(hypervolume_over_time(rows, settings))
    what = f"hypervolume above {baseline} (validation error over {baseline}'s, reference point (1, 1))"
    hypervolumes, ranks = hypervolume_table(final, kinds), ranks_table(final, kinds)
    return (replace(hypervolumes, caption=f"Final {what} of each searcher per task (mean ± s.e. over seeds)"),
            replace(ranks, caption=f"Rank of each searcher by final {what} per task (1 = best; mean ± s.e. over "
                                   "seeds) and its average over tasks"))


def relative_file_name(fraction_pruned: float) -> str:
    return f"relative_{100 * fraction_pruned:g}.tex"


def write_latex(table: CrossTaskTable, out_dir: Path, name: str) -> Path:
    """Write the table's LaTeX as ``out_dir/tables/NAME``; return the path."""
    path = out_dir / TABLES_DIR / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(table.latex(), encoding="utf-8")
    return path
