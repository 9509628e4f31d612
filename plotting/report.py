"""A Markdown + HTML report, with figures, built from result files alone (``plm-nas report RESULTS --out DIR``).

This module holds the report's entry points: :func:`write_report` (Python) and the ``plm-nas report`` command.
The sections are built in :mod:`plotting.report_sections`, the super-network learning curves in
:mod:`plotting.supernet_report`; their public names are importable from here too.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from benchmarks.results import SIZE_OBJECTIVES, best_so_far_rows, read_results
from plotting.comparisons import read_manifest
from plotting.document import Cell, Heading, Paragraph, Section, Table
from plotting.hypervolume import final_hypervolume, hypervolume_over_time, resolve_size_column
from plotting.normalize import NORMALIZERS
from plotting.paper_tables import DEFAULT_SECONDARY_METRICS, parse_baseline_errors, parse_secondary_metrics
from plotting.report_sections import (
    FIGURES_DIR,
    RANKS_TEX,
    REPORT_HTML,
    REPORT_MD,
    ReportContext,
    ReportSettings,
    boxplot_section,
    catching,
    format_seconds,
    hypervolume_section,
    paper_tables_section,
    pareto_section,
    rank_table,
    ranks_section,
    relative_section,
    write_documents,
)
from plotting.study import constant_valid_errors, finetuned_references, is_study_root, study_section
from plotting.style import method_colors
from plotting.supernet_report import split_supernet_runs, supernet_of, supernet_section, write_supernet_report

__all__ = [
    "FIGURES_DIR", "RANKS_TEX", "REPORT_HTML", "REPORT_MD", "VARIANT_COLUMNS", "ReportSettings", "add_arguments",
    "add_report_arguments", "check_report_arguments", "format_seconds", "label_variants", "run", "run_report",
    "supernet_of", "write_report",
]

VARIANT_COLUMNS = ("strategy", "search_space")


def label_variants(frame: pd.DataFrame) -> pd.DataFrame:
    """Tell a method's variants apart: where one (kind, method) ran with several strategies or search spaces,
    its rows are renamed e.g. ``random_search (standard, layer)``, so tables, ranks and curves do not pool them."""
    frame = frame.copy()
    for (_, method), rows in frame.groupby(["kind", "method"], sort=False):
        values = rows[list(VARIANT_COLUMNS)].fillna("").astype(str)
        varying = [column for column in VARIANT_COLUMNS if values[column].nunique() > 1]
        if varying:
            frame.loc[rows.index, "method"] = f"{method} (" + values[varying].agg(", ".join, axis=1) + ")"
    return frame


def precision_note(frame: pd.DataFrame) -> str:
    """Which precision the rows were computed in (their ``precision`` column), e.g. ``bf16 (300 rows)``; rows from
    before the column existed were computed in fp32, as every command did then."""
    values = frame["precision"].fillna("").astype(str) if "precision" in frame.columns else pd.Series("", frame.index)
    counts = values[values != ""].value_counts()
    parts = [f"{name} ({count} rows)" for name, count in counts.items()]
    unrecorded = int((values == "").sum())
    if unrecorded:
        parts.append(f"fp32 ({unrecorded} rows from before the precision was recorded)")
    return "Forward passes (training and scoring) ran in " + ", ".join(parts) + "."


def grid_references(per_root: Iterable[pd.DataFrame]) -> pd.DataFrame | None:
    """The plain fine-tuning of the grids' tasks and seeds (each grid's :func:`finetuned_references`), the paper's
    unpruned reference (None if there is none: runs are then measured against their own unpruned sub-network)."""
    found = [references for references in per_root if not references.empty]
    return pd.concat(found, ignore_index=True) if found else None


def write_report(
    results_dir_or_file: str | os.PathLike | Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    size_objective: str | None = None,
    settings: ReportSettings | None = None,
    sections: Sequence[Section] = (),
) -> Path:
    """Write report.md, report.html and figures/ for the results (one or several files or folders, e.g. NAS
    runs and pruning baselines), with the caller's ``sections`` at the end; return the path of report.md."""
    sources = ([results_dir_or_file] if isinstance(results_dir_or_file, (str, os.PathLike))
               else list(results_dir_or_file))
    if not sources:
        raise ValueError("no results given")
    settings = settings or ReportSettings()
    if size_objective is not None:
        settings = replace(settings, size_objective=size_objective)
    hv_settings = settings.hypervolume()
    sources, supernets = split_supernet_runs(sources)
    out_dir = Path(out_dir)
    if not sources:
        return write_supernet_report(supernets, out_dir, settings)
    main_parts, comparison_parts = [], []
    manifests = {source: read_manifest(source) for source in sources if is_study_root(source)}
    references = {source: finetuned_references(Path(source), settings.secondary_metrics) for source in manifests}
    for source in sources:
        rows = read_results(source)
        manifest = manifests.get(source)
        main = manifest.is_main(rows) if manifest else pd.Series(True, index=rows.index)
        main_parts.append(rows[main])
        comparison_parts.append(rows[~main])
    # the searchers are compared on a grid's main runs; its factor comparisons' runs count in their own tables
    frame = label_variants(pd.concat(main_parts, ignore_index=True))
    comparisons = pd.concat(comparison_parts, ignore_index=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    baselines = {task: error for source in manifests for task, error in constant_valid_errors(Path(source)).items()}
    baselines.update(dict(settings.baseline_errors))
    ctx = ReportContext(out_dir, settings, method_colors(frame["method"].astype(str).unique()),
                        references=grid_references(references.values()), baselines=baselines)
    title = "plm-nas results report"
    ctx.blocks += [
        Heading(title, 1),
        Paragraph(f"Source: {', '.join(str(source) for source in sources)}. {len(frame)} rows, "
                  f"{frame['run_id'].nunique()} runs, "
                  f"{frame['task'].nunique()} task(s), {len(frame[['kind', 'method']].drop_duplicates())} method(s) "
                  "(a method is a kind and method name)."),
        Paragraph(precision_note(frame)),
        Paragraph(f"Hypervolume: {hv_settings.describe()}. The compared rows are all rows of the task except "
                  "standard-NAS epochs that do not improve their trial's best validation error so far, so a trial "
                  "counts with its best epoch as of each time. Points beyond the reference point contribute nothing."),
    ]
    compared = best_so_far_rows(frame)  # the rows the hypervolumes (and the tied-error notes) are computed on
    trajectories = catching(ctx, hypervolume_over_time, compared, hv_settings)
    sizes = {task: catching(ctx, resolve_size_column, part, settings.size_objective)
             for task, part in frame.groupby("task", sort=True)}
    overview = [
        [Cell(str(task)), Cell(str(len(part))), Cell(str(part["run_id"].nunique())),
         Cell(", ".join(sorted(part["method"].astype(str).unique()))), Cell(sizes[task])]
        for task, part in frame.groupby("task", sort=True)
    ]
    ctx.blocks += [Heading("Overview"), Table(["task", "rows", "runs", "methods", "size objective"], overview)]
    final = final_hypervolume(trajectories)
    everything, everything_final = frame, final
    if not comparisons.empty:
        everything = label_variants(pd.concat([frame, comparisons], ignore_index=True))
        everything_final = final_hypervolume(catching(ctx, hypervolume_over_time, best_so_far_rows(everything),
                                                      hv_settings))
        count = comparisons["run_id"].nunique()
        ctx.blocks.append(Paragraph(
            f"{count} {'run' if count == 1 else 'runs'} of the grid's factor comparisons (grid.json) left out of the "
            "searcher tables and ranks; they appear in the comparison tables of the study section."))
    paper_tables_section(frame, compared, final, ctx)
    ranks_section(trajectories, ctx)
    for task, rows in frame.groupby("task", sort=True):
        ctx.blocks.append(Heading(f"Task {task}"))
        task_traj = trajectories[trajectories["task"] == task]
        hypervolume_section(str(task), task_traj, ctx)
        ctx.blocks.append(Heading("Ranks", 3))
        ctx.blocks.append(rank_table(task_traj, ctx))
        relative_section(str(task), rows, sizes[task], ctx)
        ctx.blocks.append(Heading("Pareto fronts", 3))
        pareto_section(str(task), rows, sizes[task], ctx)
    boxplot_section(everything_final[everything_final["kind"] == "weight-sharing"], "strategy",
                    "super-network training strategies", ctx)
    boxplot_section(everything_final, "search_space", "search spaces", ctx)
    for folder, metrics in supernets.items():
        supernet_section(folder, metrics, ctx)
    for source, manifest in manifests.items():
        ctx.blocks += catching(ctx, study_section, Path(source), frame, trajectories, final,
                               settings.table_fractions_pruned, settings.size_objective, settings.secondary_metrics,
                               everything, everything_final, manifest, references[source]).to_blocks()
    for section in sections:
        ctx.blocks += section.to_blocks()
    return write_documents(ctx, title)


# ---------------------------------------------------------------------------------------------------------------
# The command


def add_report_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``plm-nas report``."""
    parser.add_argument("results", type=Path, nargs="+",
                        help="results.csv files or folders searched for results files (several are combined), "
                             "or train-supernet output folders (their probe learning curves)")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for report.md, report.html, figures/ and tables/ (LaTeX)")
    parser.add_argument("--size-objective", choices=SIZE_OBJECTIVES, default=None,
                        help="size column for fronts (default: the size objective the rows were searched with)")
    parser.add_argument("--normalization", choices=sorted(NORMALIZERS), default="quantile",
                        help="objective normalisation before the hypervolume (default: quantile, as in the paper)")
    parser.add_argument("--reference-point", type=float, nargs=2, default=(2.0, 2.0), metavar=("ERROR", "SIZE"),
                        help="hypervolume reference point in normalised units (default: 2 2)")
    parser.add_argument("--bootstrap-samples", type=int, default=1000, help="bootstrap samples for average ranks")
    parser.add_argument("--seed", type=int, default=0, help="seed of the rank bootstrap")
    parser.add_argument("--grid-points", type=int, default=100, help="points of the common time grid")
    parser.add_argument("--cross-task-pruned", type=float, default=0.5, metavar="FRACTION",
                        help="fraction pruned of the cross-task relative-performance table (default: 0.5)")
    parser.add_argument("--secondary-metrics", nargs="*", metavar="TASK:METRIC",
                        default=[f"{task}:{metric}" for task, metric in DEFAULT_SECONDARY_METRICS],
                        help="also report TASK's rows in METRIC (one of its metrics besides the main one) as a "
                             "cross-task column 'TASK (METRIC)' (default: mrpc:accuracy; none: no extra columns)")
    parser.add_argument("--baseline-errors", nargs="*", metavar="TASK:ERROR", default=[],
                        help="the constant predictor's validation error of TASK (a grid's super-networks give theirs): "
                             "the cross-task tables are repeated with a hypervolume crediting only errors below it")
    return parser


def check_report_arguments(args: argparse.Namespace) -> None:
    """Refuse, before reading anything, results given twice and a reference point that zeroes every hypervolume."""
    covered: dict[Path, Path] = {}
    for source in map(Path, args.results):
        if not source.exists():
            raise FileNotFoundError(f"no such results file or folder: {source}")
        files = sorted(source.rglob("results.*")) if source.is_dir() else [source]
        for file in (file.resolve() for file in files):
            if file in covered:
                raise ValueError(f"{file} is given twice ({covered[file]} and {source}); its rows would count "
                                 "twice in every ranking: give each results file or folder once")
            covered[file] = source
    if min(args.reference_point) <= 0:
        raise ValueError(f"--reference-point {' '.join(map(str, args.reference_point))} makes every hypervolume zero "
                         "(normalised objectives lie in [0, 1]); use positive values, e.g. the default 2 2")
    if args.bootstrap_samples < 1:
        raise ValueError(f"--bootstrap-samples must be at least 1, got {args.bootstrap_samples}")
    parse_secondary_metrics(args.secondary_metrics)
    parse_baseline_errors(args.baseline_errors)


def run_report(args: argparse.Namespace) -> Path:
    """Write the report described by parsed ``plm-nas report`` arguments; return the path of report.md."""
    check_report_arguments(args)
    settings = ReportSettings(
        size_objective=args.size_objective, normalization=args.normalization,
        reference_point=tuple(args.reference_point), bootstrap_samples=args.bootstrap_samples, seed=args.seed,
        grid_points=args.grid_points, cross_task_fraction_pruned=args.cross_task_pruned,
        secondary_metrics=parse_secondary_metrics(args.secondary_metrics),
        baseline_errors=parse_baseline_errors(args.baseline_errors),
    )
    return write_report(args.results, args.out, settings=settings)


# The ``plm-nas`` CLI calls every subcommand module's ``add_arguments(parser)`` and ``run(args) -> exit code``.
add_arguments = add_report_arguments


def run(args: argparse.Namespace) -> int:
    """``plm-nas report``: write the report and print where it is."""
    path = run_report(args)
    print(f"report written to {path} and {path.with_name(REPORT_HTML)}", flush=True)
    return 0
