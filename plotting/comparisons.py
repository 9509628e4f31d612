"""A grid's factor comparisons (e.g. the super-network strategies and the search spaces on one task), read from
the ``grid.json`` manifest that ``plm-nas experiments`` writes at the grid's root.

The manifest (:class:`StudyManifest`) names the grid's *main* runs (its main strategies and search spaces), on
which the searchers are compared, and each comparison (:class:`Comparison`): runs that differ in one factor only,
each searched by the same searcher. A comparison's table ranks its values within each seed by final hypervolume
and gives their relative performance against the same seed's plain fine-tuning.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from plotting.document import DASH, Cell, Paragraph, Table, format_mean_se
from plotting.hypervolume import standard_error
from plotting.relative import relative_to_finetuned

MANIFEST_FILE = "grid.json"  # as benchmarks.grids writes it
STANDARD = "standard"
WEIGHT_SHARING = "weight-sharing"


@dataclass(frozen=True)
class Comparison:
    """Runs of one grid part that differ only in ``factor`` (its ``values``), the other factors as in ``fixed``."""

    factor: str
    values: tuple[str, ...]
    fixed: Mapping[str, tuple[str, ...]]
    tasks: tuple[str, ...]
    searchers: tuple[str, ...]


@dataclass(frozen=True)
class StudyManifest:
    """What ``grid.json`` says: the main runs' strategies and search spaces, and the grid's factor comparisons."""

    grid: str
    main: Mapping[str, tuple[str, ...]]
    comparisons: tuple[Comparison, ...] = field(default_factory=tuple)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StudyManifest:
        try:
            comparisons = tuple(
                Comparison(str(c["factor"]), tuple(map(str, c["values"])),
                           {k: tuple(map(str, v)) for k, v in c["fixed"].items()},
                           tuple(map(str, c["tasks"])), tuple(map(str, c["searchers"])))
                for c in data.get("comparisons", ()))
            main = {factor: tuple(map(str, values)) for factor, values in data["main"].items()}
            return cls(str(data["grid"]), main, comparisons)
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{MANIFEST_FILE} lacks or misshapes {error}; expected keys grid, main, comparisons "
                             "as plm-nas experiments writes them") from error

    def is_main(self, frame: pd.DataFrame) -> pd.Series:
        """Rows of main runs: pruning baselines, and searches whose strategy (weight-sharing) and search space
        are among the main ones."""
        kinds = {"strategy": [WEIGHT_SHARING], "search_space": [WEIGHT_SHARING, STANDARD]}
        main = pd.Series(True, index=frame.index)
        for factor, values in self.main.items():
            applies = frame["kind"].isin(kinds.get(factor, [WEIGHT_SHARING, STANDARD]))
            main &= ~applies | frame[factor].astype(str).isin(values)
        return main


def read_manifest(root: str | Path) -> StudyManifest | None:
    """The grid's manifest in ``root`` (None where there is none: every run counts as a main run)."""
    path = Path(root) / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error})") from error
    try:
        return StudyManifest.from_dict(data)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error


def compared_seeds(rows: pd.DataFrame, factor: str) -> pd.DataFrame:
    """The rows of the tasks and seeds in which at least two values of ``factor`` ran: a value alone in its seed
    (e.g. a main run whose seed's comparison runs have not run yet) has no one to be ranked against."""
    if rows.empty:
        return rows
    values = rows.groupby(["task", "seed"])[factor].transform("nunique")
    return rows[values >= 2]


def select_runs(frame: pd.DataFrame, factor: str, selection: Mapping[str, str | Sequence[str]]) -> pd.DataFrame:
    """Weight-sharing rows (of runs, or one per run) whose columns take the values in ``selection``, in the tasks
    and seeds in which at least two values of ``factor`` ran (:func:`compared_seeds`)."""
    runs = frame[frame["kind"] == WEIGHT_SHARING]
    for column, values in selection.items():
        runs = runs[runs[column].astype(str).isin([values] if isinstance(values, str) else list(values))]
    return compared_seeds(runs, factor)


def compare_factor(final: pd.DataFrame, factor: str, fixed: Mapping[str, str | Sequence[str]]) -> pd.DataFrame:
    """Weight-sharing runs that differ only in ``factor`` (the others among the values in ``fixed``): per task and
    value, mean ± s.e. of the final hypervolume and of the rank among the values run with the same seed, over
    the seeds in which at least two values ran (:func:`select_runs`); sorted by mean rank, ties by mean hypervolume."""
    runs = select_runs(final, factor, fixed)
    if runs.empty:
        return pd.DataFrame(columns=["task", factor, "hypervolume", "hypervolume_se", "rank", "rank_se", "n"])
    runs = runs.assign(rank=runs.groupby(["task", "seed"])["hypervolume"].rank(ascending=False, method="average"))
    grouped = runs.groupby(["task", factor], sort=True)
    out = grouped.agg(hypervolume=("hypervolume", "mean"), rank=("rank", "mean"), n=("seed", "count")).reset_index()
    out["hypervolume_se"] = grouped["hypervolume"].agg(standard_error).to_numpy()
    out["rank_se"] = grouped["rank"].agg(standard_error).to_numpy()
    return out.sort_values(["task", "rank", "hypervolume"], ascending=[True, True, False]).reset_index(drop=True)


def _factor_table(table: pd.DataFrame, factor: str, relative: pd.DataFrame, fractions: Sequence[float]) -> Table:
    rows = []
    for r in table.itertuples():
        value = getattr(r, factor)
        cells = [Cell(str(r.task)), Cell(str(value)), Cell(format_mean_se(r.hypervolume, r.hypervolume_se)),
                 Cell(format_mean_se(r.rank, r.rank_se, digits=2)), Cell(str(r.n))]
        for fraction in fractions:
            hit = relative[(relative["task"] == r.task) & (relative[factor].astype(str) == str(value))
                           & np.isclose(relative["fraction_pruned"], fraction)] if not relative.empty else relative
            cells.append(Cell(DASH if hit.empty else format_mean_se(hit["mean"].iloc[0], hit["se"].iloc[0], digits=1,
                                                                    scale=100.0)))
        rows.append(cells)
    return Table(["task", factor.replace("_", " "), "final hypervolume", "rank", "seeds",
                  *(f"relative {100 * f:.0f}%" for f in fractions)], rows)


def comparison_section(comparison: Comparison, everything: pd.DataFrame, final: pd.DataFrame,
                       references: pd.DataFrame, fractions_pruned: Sequence[float],
                       size_column: str | None = None) -> list[Paragraph | Table]:
    """One comparison's tables (one per searcher), from every run's rows and final hypervolumes; empty while fewer
    than two of its values have run."""
    blocks: list[Paragraph | Table] = []
    factor, name = comparison.factor, comparison.factor.replace("_", " ")
    for searcher in comparison.searchers:
        selection = {"task": comparison.tasks, "searcher": [searcher], factor: comparison.values, **comparison.fixed}
        table = compare_factor(final, factor, selection)
        if table[factor].nunique() < 2:
            continue
        runs = select_runs(everything, factor, selection)
        relative = (relative_to_finetuned(runs, references, fractions_pruned, size_column, by=("task", factor))
                    if not references.empty and not runs.empty else pd.DataFrame())
        fixed = ", ".join(f"{column.replace('_', ' ')} {'/'.join(values)}" for column, values in comparison.fixed.items())
        missing = sorted(set(comparison.values) - set(table[factor].astype(str)))
        blocks += [Paragraph(
            f"{', '.join(comparison.tasks)}: super-networks that differ only in their {name} ({fixed}), each searched "
            f"by {searcher}; rank 1 = largest final hypervolume among them with the same seed (hypervolumes "
            "normalised over every run of the task, comparison runs included); relative: test performance at that "
            "fraction pruned over the same seed's plain fine-tuning, in %."
            + (f" Not run yet: {', '.join(missing)}." if missing else "")),
            _factor_table(table, factor, relative, fractions_pruned)]
    return blocks
