"""A Markdown + HTML report, with figures, built from result files alone (``plm-nas report RESULTS --out DIR``).

This module holds the report's entry points: :func:`write_report` (Python) and the ``plm-nas report`` command.
The sections are built in :mod:`plotting.report_sections`, the super-network learning curves in
:mod:`plotting.supernet_report`; their public names are importable from here too.
"""
from __future__ import annotations

import argparse
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import pandas as pd

from benchmarks.results import KINDS, SIZE_OBJECTIVES, best_so_far_rows, parse_metrics, read_results
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
    front_members_section,
    hypervolume_section,
    many_objectives_section,
    paper_tables_section,
    pareto_section,
    rank_table,
    ranks_section,
    relative_section,
    significance_section,
    write_documents,
)
from plotting.study import constant_valid_errors, finetuned_references, is_study_root, study_section
from plotting.style import axis_label, method_colors
from plotting.supernet_report import split_supernet_runs, supernet_of, supernet_section, write_supernet_report
from plotting.unpruned import RunReferences, run_references

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


NUMBER_COLUMNS = ("seed", "valid_error", "test_error", "params", "param_fraction", "encoder_param_fraction", "macs",
                  "mac_fraction", "runtime_s", "epoch")


def check_results_rows(rows: pd.DataFrame, source: str | os.PathLike) -> None:
    """Refuse, before the report writes anything, rows no section could read right: none at all, a kind or size
    objective this version does not know (the size column would fall back silently), or a number column holding
    text."""
    if rows.empty:
        raise ValueError(f"the results in {source} hold no rows (a run that evaluated nothing yet?); report runs "
                         "that have results")
    problems = []
    kinds = sorted(set(rows["kind"].astype(str)) - set(KINDS))
    if kinds:
        problems.append(f"unknown kind(s) {', '.join(map(repr, kinds))} (known: {', '.join(KINDS)})")
    objectives = sorted(set(rows["size_objective"].fillna("").astype(str)) - {"", *SIZE_OBJECTIVES})
    if objectives:
        problems.append(f"unknown size objective(s) {', '.join(map(repr, objectives))} (known: "
                        f"{', '.join(SIZE_OBJECTIVES)})")
    for column in NUMBER_COLUMNS:
        given = rows[column].notna() & (rows[column].astype(str).str.strip() != "")
        text = given & pd.to_numeric(rows[column], errors="coerce").isna()
        if text.any():
            problems.append(f"column {column} holds text ({rows.loc[text, column].astype(str).iloc[0]!r})")
    if problems:
        raise ValueError(f"the results in {source} cannot be reported: {'; '.join(problems)}; fix the file, or "
                         "write it again with the command that made it")


def check_secondary_metrics(frame: pd.DataFrame, pairs: Sequence[tuple[str, str]]) -> None:
    """Refuse a secondary metric (``--secondary-metrics TASK:METRIC``) that the task's rows record others than:
    its column would be silently absent. A task without rows, or whose rows record no metrics (older files), passes."""
    for task, metric in pairs:
        cells = frame.loc[frame["task"].astype(str) == task, "valid_metrics"]
        recorded = sorted({name for cell in cells for name in parse_metrics(cell)})
        if recorded and metric not in recorded:
            raise ValueError(f"--secondary-metrics {task}:{metric}: the {task} rows record the metrics "
                             f"{', '.join(recorded)}; pick one of them, or give the option without values for none")


def methods_per_task(frame: pd.DataFrame) -> int:
    """The largest number of methods (kind and method name) that ran on one task."""
    return int(frame.groupby("task")[["kind", "method"]].apply(lambda rows: len(rows.drop_duplicates())).max())


def write_report(
    results_dir_or_file: str | os.PathLike | Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    size_objective: str | None = None,
    settings: ReportSettings | None = None,
    sections: Sequence[Section] = (),
) -> Path:
    """Write report.md, report.html and figures/ for the results (one or several files or folders, e.g. NAS
    runs and pruning baselines), with the caller's ``sections`` at the end; return the path of report.md.

    The report adapts to what it is given: for one method per task (one run, e.g. ``plm-nas demo``) it shows the
    front, its sub-networks and how much of the full network they keep; with methods to compare (and for a grid's
    folder) the hypervolume tables, ranks and cross-task tables. Everything that can be refused is refused before
    the first file is written, and a report that fails leaves no folder it made behind.
    """
    sources = ([results_dir_or_file] if isinstance(results_dir_or_file, (str, os.PathLike))
               else list(results_dir_or_file))
    if not sources:
        raise ValueError("no results given")
    settings = settings or ReportSettings()
    if size_objective is not None:
        settings = replace(settings, size_objective=size_objective)
    sources, supernets = split_supernet_runs(sources)
    out_dir = Path(out_dir)
    if not sources:
        return write_supernet_report(supernets, out_dir, settings)
    main_parts, comparison_parts = [], []
    manifests = {source: read_manifest(source) for source in sources if is_study_root(source)}
    references = {source: finetuned_references(Path(source), settings.secondary_metrics) for source in manifests}
    for source in sources:
        rows = read_results(source)
        check_results_rows(rows, source)
        manifest = manifests.get(source)
        main = manifest.is_main(rows) if manifest else pd.Series(True, index=rows.index)
        main_parts.append(rows[main])
        comparison_parts.append(rows[~main])
    # the searchers are compared on a grid's main runs; its factor comparisons' runs count in their own tables
    frame = label_variants(pd.concat(main_parts, ignore_index=True))
    comparisons = pd.concat(comparison_parts, ignore_index=True)
    check_secondary_metrics(frame, settings.secondary_metrics)
    found = RunReferences()
    for source in sources:
        if source not in manifests:  # a grid's runs are measured against its plain fine-tuning
            found.update(run_references(source))
    made = first_missing(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        ctx = ReportContext(out_dir, settings, method_colors(frame["method"].astype(str).unique()),
                            references=grid_references(references.values()), run_references=found.values(),
                            reference_sources=found.sources())
        if manifests or not comparisons.empty or methods_per_task(frame) > 1:
            computed = comparison_report(frame, comparisons, sources, manifests, ctx)
        else:
            single_method_report(frame, sources, ctx)
        for folder, metrics in supernets.items():
            supernet_section(folder, metrics, ctx)
        for source, manifest in manifests.items():  # a grid's folder: always the comparison layout
            ctx.blocks += catching(ctx, study_section, Path(source), frame, computed.trajectories, computed.final,
                                   settings.table_fractions_pruned, settings.size_objective,
                                   settings.secondary_metrics, computed.everything, computed.everything_final,
                                   manifest, references[source]).to_blocks()
        for section in sections:
            ctx.blocks += section.to_blocks()
        return write_documents(ctx, TITLE)
    except BaseException:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
        raise


def first_missing(folder: Path) -> Path | None:
    """The outermost of ``folder`` and its parents that does not exist yet (what making ``folder`` creates), or None."""
    missing = None
    for path in (folder, *folder.parents):
        if path.exists():
            break
        missing = path
    return missing


TITLE = "plm-nas results report"


class Hypervolumes(NamedTuple):
    """What the comparison sections computed and a grid's study section reads again."""

    trajectories: pd.DataFrame  # hypervolume over time of the main runs
    final: pd.DataFrame  # their final hypervolume, one row per run
    everything: pd.DataFrame  # the main runs and the grid's factor comparisons' runs
    everything_final: pd.DataFrame


def _source_paragraph(frame: pd.DataFrame, sources: Sequence[str | os.PathLike]) -> Paragraph:
    runs = frame["run_id"].nunique()
    return Paragraph(f"Source: {', '.join(str(source) for source in sources)}. {len(frame)} rows, "
                     f"{runs} {'run' if runs == 1 else 'runs'}, {frame['task'].nunique()} task(s), "
                     f"{len(frame[['kind', 'method']].drop_duplicates())} method(s) (a method is a kind and method "
                     "name).")


def _hypervolume_paragraph(ctx: ReportContext) -> Paragraph:
    return Paragraph(f"Hypervolume: {ctx.settings.hypervolume().describe()}. The compared rows are all rows of the "
                     "task except standard-NAS epochs that do not improve their trial's best validation error so far, "
                     "so a trial counts with its best epoch as of each time. Points beyond the reference point "
                     "contribute nothing.")


def single_method_report(frame: pd.DataFrame, sources: Sequence[str | os.PathLike], ctx: ReportContext) -> None:
    """One method per task: per task its front first, the sub-networks on it with their size, latency where known
    and metric, relative to the full network, the relative performance at fixed fractions pruned, and the search's
    hypervolume over time; nothing that compares methods (ranks, cross-task tables, their notes)."""
    ctx.blocks += [Heading(TITLE, 1), _source_paragraph(frame, sources), Paragraph(precision_note(frame))]
    trajectories = catching(ctx, hypervolume_over_time, best_so_far_rows(frame), ctx.settings.hypervolume())
    for task, rows in frame.groupby("task", sort=True):
        size = catching(ctx, resolve_size_column, rows, ctx.settings.size_objective)
        methods = ", ".join(f"{m} ({k})" for k, m in rows[["kind", "method"]].drop_duplicates().itertuples(index=False))
        count = rows["run_id"].nunique()
        ctx.blocks += [Heading(f"Task {task}"), Paragraph(
            f"{methods}: {count} {'run' if count == 1 else 'runs'}, {len(rows)} evaluated sub-networks, validation "
            f"error against {axis_label(size)}.")]
        pareto_section(str(task), rows, size, ctx)
        front_members_section(str(task), rows, size, ctx)
        relative_section(str(task), rows, size, ctx)
        ctx.blocks += [Heading("Search progress", 3), _hypervolume_paragraph(ctx)]
        hypervolume_section(str(task), trajectories[trajectories["task"] == task], ctx, heading=None)
    many_objectives_section(frame, ctx)


def comparison_report(frame: pd.DataFrame, comparisons: pd.DataFrame, sources: Sequence[str | os.PathLike],
                      manifests: dict, ctx: ReportContext) -> Hypervolumes:
    """Methods to compare: the paper's cross-task tables, average ranks, and per task the hypervolumes, ranks
    (where the task has two methods or more), relative performance and fronts; boxplots across strategies and
    search spaces."""
    settings = ctx.settings
    hv_settings = settings.hypervolume()
    ctx.baselines = {task: error for source in manifests for task, error in constant_valid_errors(Path(source)).items()}
    ctx.baselines.update(dict(settings.baseline_errors))
    ctx.blocks += [Heading(TITLE, 1), _source_paragraph(frame, sources), Paragraph(precision_note(frame)),
                   _hypervolume_paragraph(ctx)]
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
    significance_section(trajectories, ctx)
    for task, rows in frame.groupby("task", sort=True):
        ctx.blocks.append(Heading(f"Task {task}"))
        task_traj = trajectories[trajectories["task"] == task]
        hypervolume_section(str(task), task_traj, ctx)
        if len(rows[["kind", "method"]].drop_duplicates()) > 1:
            ctx.blocks.append(Heading("Ranks", 3))
            ctx.blocks.append(rank_table(task_traj, ctx))
        relative_section(str(task), rows, sizes[task], ctx)
        ctx.blocks.append(Heading("Pareto fronts", 3))
        pareto_section(str(task), rows, sizes[task], ctx)
    many_objectives_section(frame, ctx)
    boxplot_section(everything_final[everything_final["kind"] == "weight-sharing"], "strategy",
                    "super-network training strategies", ctx)
    boxplot_section(everything_final, "search_space", "search spaces", ctx)
    return Hypervolumes(trajectories, final, everything, everything_final)


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
    """Refuse, before reading anything, results given twice, options out of range (a reference point that zeroes
    every hypervolume, a fraction pruned outside [0, 1), a time grid of fewer than two points) and an output folder
    that is a file."""
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
    if args.grid_points < 2:
        raise ValueError(f"--grid-points must be at least 2 (a time grid has a start and an end), got {args.grid_points}")
    if not 0 <= args.cross_task_pruned < 1:
        raise ValueError(f"--cross-task-pruned is a fraction pruned in [0, 1), e.g. 0.5; got {args.cross_task_pruned}")
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file; pass a folder")
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
