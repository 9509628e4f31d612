"""A Markdown + HTML report, with figures, built from result files alone (``plm-nas report RESULTS --out DIR``)."""
from __future__ import annotations

import argparse
import json
import os
import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from benchmarks.results import SIZE_OBJECTIVES, best_epoch_rows, best_so_far_rows, read_results
from plotting.document import (
    DASH,
    Block,
    Cell,
    Heading,
    Image,
    Paragraph,
    Section,
    Table,
    format_mean_se,
    to_html,
    to_markdown,
)
from plotting.figures import (
    plot_average_ranks,
    plot_boxplot,
    plot_over_x,
    plot_pareto_fronts,
    plot_relative_performance,
)
from plotting.hypervolume import (
    EVALUATION,
    METHOD_KEYS,
    TIME,
    HypervolumeSettings,
    add_regret,
    final_hypervolume,
    hypervolume_over_time,
    make_grid,
    on_grid,
    resolve_size_column,
    summarize_over_seeds,
)
from plotting.learning_curves import (
    is_supernet_run,
    learning_curve_table,
    plot_learning_curves,
    probe_curves,
    probe_label,
    read_supernet_metrics,
)
from plotting.normalize import NORMALIZERS
from plotting.paper_tables import (
    DEFAULT_SECONDARY_METRICS,
    SEARCHER_KINDS,
    TABLES_DIR,
    parse_secondary_metrics,
    ranks_table,
    relative_file_name,
    relative_table,
    write_latex,
)
from plotting.ranks import bootstrap_average_ranks
from plotting.relative import relative_performance
from plotting.study import is_study_root, study_section, supernet_folders
from plotting.style import axis_label, method_colors, new_figure, save_figure

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
FIGURES_DIR = "figures"
RANKS_TEX = "ranks.tex"


@dataclass(frozen=True)
class ReportSettings:
    """What the report computes: hypervolume settings, rank bootstrap, grids and table columns."""

    size_objective: str | None = None  # None: the rows' own size_objective per task
    normalization: str = "quantile"
    reference_point: tuple[float, float] = (2.0, 2.0)
    bootstrap_samples: int = 1000
    seed: int = 0
    grid_points: int = 100
    table_fractions_pruned: tuple[float, ...] = (0.25, 0.5, 0.75)
    figure_fractions_pruned: tuple[float, ...] = tuple(np.round(np.arange(0.0, 0.91, 0.05), 2))
    rank_time_fractions: tuple[float, ...] = (0.1, 0.5, 1.0)
    cross_task_fraction_pruned: float = 0.5  # the pruning level of the paper's cross-task table
    # (task, metric): a cross-task column of the task's rows measured in that metric beside its main one
    secondary_metrics: tuple[tuple[str, str], ...] = DEFAULT_SECONDARY_METRICS

    def hypervolume(self) -> HypervolumeSettings:
        return HypervolumeSettings(
            normalization=self.normalization, reference_point=tuple(self.reference_point),
            size_column=self.size_objective,
        )


# ---------------------------------------------------------------------------------------------------------------
# Formatting


def format_seconds(seconds: float) -> str:
    """Short human-readable duration."""
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "task"


def _best_flags(values: Sequence[float], higher_is_better: bool) -> list[bool]:
    arr = np.asarray(values, dtype=float)
    if not np.isfinite(arr).any():
        return [False] * len(arr)
    best = np.nanmax(arr) if higher_is_better else np.nanmin(arr)
    return [bool(np.isfinite(v) and np.isclose(v, best, rtol=0, atol=1e-12)) for v in arr]


Formatter = Callable[[Any], str]  # a row of the summary (with mean, se, n, ...) -> cell text


def _method_table(
    summary: pd.DataFrame,
    columns: Sequence,
    column_names: Sequence[str],
    column_key: str | None,
    higher_is_better: bool,
    formatter: Formatter,
    extra: dict[tuple[str, str], list[str]] | None = None,
    extra_names: Sequence[str] = (),
) -> Table:
    """A kind | method | [extra] | one column per value of ``column_key`` table, the best of each column in bold.

    ``summary`` has columns kind, method and mean (and ``column_key``); ``formatter`` turns one of its rows
    (a named tuple) into a cell, and a method without a row gets a dash.
    """
    methods = sorted({(str(k), str(m)) for k, m in zip(summary["kind"], summary["method"])})
    cells: dict[tuple[str, str], list[Cell]] = {m: [] for m in methods}
    for col in columns:
        part = summary if column_key is None else summary[np.isclose(summary[column_key].astype(float), col)]
        lookup = {(str(r.kind), str(r.method)): r for r in part.itertuples(index=False)}
        found = [lookup.get(m) for m in methods]
        flags = _best_flags([np.nan if r is None else float(r.mean) for r in found], higher_is_better)
        for m, row, flag in zip(methods, found, flags):
            cells[m].append(Cell(DASH if row is None else formatter(row), flag))
    rows = [[Cell(k), Cell(m)] + [Cell(t) for t in (extra or {}).get((k, m), [])] + cells[(k, m)] for k, m in methods]
    return Table(["kind", "method", *extra_names, *column_names], rows)


# ---------------------------------------------------------------------------------------------------------------
# Report


@dataclass
class _Context:
    out_dir: Path
    settings: ReportSettings
    colors: dict[str, str]
    blocks: list[Block] = field(default_factory=list)

    def note(self, text: str) -> None:
        """Add a note once (the same warning can come from several computations)."""
        if not any(isinstance(b, Paragraph) and b.note and b.text == text for b in self.blocks):
            self.blocks.append(Paragraph(text, note=True))

    def figure(self, fig: Figure, name: str, caption: str) -> None:
        """Save ``fig`` as figures/NAME.png and .pdf and show it in the report."""
        save_figure(fig, self.out_dir / FIGURES_DIR / name)
        self.blocks.append(Image(f"{FIGURES_DIR}/{name}.png", f"{FIGURES_DIR}/{name}.pdf", caption))


def _catching(ctx: _Context, func: Callable, *args, **kwargs):
    """Call ``func``; every warning it raises becomes a note in the report."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = func(*args, **kwargs)
    for w in caught:
        ctx.note(str(w.message))
    return result


def _rank_table(trajectories: pd.DataFrame, ctx: _Context) -> Table:
    """Bootstrapped average rank at fixed fractions of the longest run's time."""
    t_max = float(trajectories[TIME].max())
    fractions = ctx.settings.rank_time_fractions
    grid = np.array([f * t_max for f in fractions])
    ranks = bootstrap_average_ranks(
        on_grid(trajectories, grid, TIME), TIME, num_samples=ctx.settings.bootstrap_samples, seed=ctx.settings.seed
    )
    summary = ranks.rename(columns={"rank": "mean"})
    names = [f"t = {format_seconds(t)} ({100 * f:.0f}%)" for t, f in zip(grid, fractions)]
    return _method_table(summary, grid, names, TIME, False, lambda r: f"{r.mean:.2f}" if np.isfinite(r.mean) else DASH)


def _ranks_section(trajectories: pd.DataFrame, ctx: _Context) -> None:
    num_tasks = trajectories["task"].nunique()
    ctx.blocks.append(Heading("Average rank across tasks"))
    ctx.blocks.append(Paragraph(
        f"Methods ranked by hypervolume (1 = best) per task at each time, averaged over {num_tasks} task(s); "
        f"bootstrapped over seeds ({ctx.settings.bootstrap_samples} samples, seed {ctx.settings.seed}): each "
        "sample picks one run per method and task. Times are absolute; a finished run keeps its last value."
    ))
    ctx.blocks.append(_rank_table(trajectories, ctx))
    fig, axes = new_figure(11, 4, ncols=2)
    for ax, x in zip(axes, (TIME, EVALUATION)):
        grid = make_grid(trajectories, x, ctx.settings.grid_points)
        ranks = bootstrap_average_ranks(
            on_grid(trajectories, grid, x), x, num_samples=ctx.settings.bootstrap_samples, seed=ctx.settings.seed
        )
        plot_average_ranks(ranks, x, ax=ax, colors=ctx.colors)
    axes[0].set_title("average rank over wall-clock time")
    axes[1].set_title("average rank over evaluations")
    ctx.figure(fig, "ranks", "Average rank of methods across tasks (bootstrapped over seeds).")


def _hypervolume_section(task: str, trajectories: pd.DataFrame, ctx: _Context) -> None:
    per_run = final_hypervolume(trajectories)
    final = summarize_over_seeds(per_run)
    extra = {
        (str(k), str(m)): [str(len(g)), format_seconds(float(g[TIME].mean())), f"{g[EVALUATION].mean():.0f}"]
        for (k, m), g in per_run.groupby(["kind", "method"])
    }
    ctx.blocks.append(Heading("Final hypervolume", 3))
    ctx.blocks.append(_method_table(
        final, [0], ["final hypervolume (mean ± s.e.)"], None, True, lambda r: format_mean_se(r.mean, r.se), extra,
        ["runs", "mean runtime", "mean evaluations"],
    ))
    if final["n"].max() < 2:
        ctx.note("a single run per method: standard errors are shown as –.")
    fig, axes = new_figure(16, 4.3, ncols=3)
    for ax, x in zip(axes, (TIME, EVALUATION)):
        grid = make_grid(trajectories, x, ctx.settings.grid_points)
        summary = summarize_over_seeds(on_grid(trajectories, grid, x), by=("task", *METHOD_KEYS, x))
        plot_over_x(summary, x, ax=ax, colors=ctx.colors)
        ax.set_title(f"{task}: hypervolume over {'wall-clock time' if x == TIME else 'evaluations'}")
    grid = make_grid(trajectories, TIME, ctx.settings.grid_points)
    regret = add_regret(on_grid(trajectories, grid, TIME))
    summary = summarize_over_seeds(regret, value="regret", by=("task", *METHOD_KEYS, TIME))
    plot_over_x(summary, TIME, ax=axes[2], colors=ctx.colors, ylabel="hypervolume regret", log_y=True)
    axes[2].set_title(f"{task}: regret (best hypervolume seen - hypervolume)")
    ctx.figure(fig, f"hypervolume_{_slug(task)}",
               f"{task}: hypervolume over time and evaluations, and regret over time (mean ± s.e. over seeds).")


def _pareto_section(task: str, rows: pd.DataFrame, size_column: str, ctx: _Context) -> None:
    points = best_epoch_rows(rows)
    first_runs = points.sort_values("seed", kind="stable").drop_duplicates(["kind", "method"])["run_id"]
    shown = points[points["run_id"].isin(first_runs)]
    errors = ["valid_error"] + (["test_error"] if shown["test_error"].notna().any() else [])
    fig, axes = new_figure(5.5 * len(errors), 4, ncols=len(errors))
    for ax, error in zip(axes, errors):
        plot_pareto_fronts(shown, size_column, error, ax=ax, colors=ctx.colors)
        ax.set_title(f"{task}: {axis_label(error)} vs size")
    ctx.figure(fig, f"pareto_{_slug(task)}",
               f"{task}: evaluated sub-networks (faint) and Pareto fronts (steps), one run per method (lowest seed).")
    if len(errors) == 1:
        ctx.note(f"task {task}: no test errors in the results; only validation fronts are shown.")


def _relative_section(task: str, rows: pd.DataFrame, size_column: str, ctx: _Context) -> None:
    ctx.blocks.append(Heading("Relative performance", 3))
    if rows["test_error"].notna().sum() == 0:
        ctx.note(f"task {task}: no test errors in the results; relative performance skipped.")
        return
    fractions = sorted(set(ctx.settings.figure_fractions_pruned) | set(ctx.settings.table_fractions_pruned))
    num_blocks = len(ctx.blocks)
    rel = _catching(ctx, relative_performance, rows, fractions, size_column)
    if rel.empty or not np.isfinite(rel["relative_performance"].to_numpy(dtype=float)).any():
        if len(ctx.blocks) == num_blocks:  # no warning explained it already
            ctx.note(f"task {task}: relative performance is undefined (no chosen sub-network has a test error).")
        return
    summary = summarize_over_seeds(rel, "relative_performance", by=("task", *METHOD_KEYS, "fraction_pruned"))
    ctx.blocks.append(Paragraph(
        f"Test performance (1 - test error) of the best-validation sub-network with {axis_label(size_column)} "
        "at most 1 - fraction pruned, relative to the unpruned model, in % (mean ± s.e. over the runs that have "
        "such a sub-network; (n=k/m) when only k of a method's m runs do)."
    ))
    runs = rel.groupby(["kind", "method"])["run_id"].nunique()
    table_fractions = list(ctx.settings.table_fractions_pruned)
    table = summary.assign(total=[runs[(k, m)] for k, m in zip(summary["kind"], summary["method"])])

    def cell(row) -> str:
        text = format_mean_se(row.mean, row.se, digits=1, scale=100.0)
        return text if row.n in (0, row.total) else f"{text} (n={row.n}/{row.total})"

    ctx.blocks.append(_method_table(
        table, table_fractions, [f"{100 * f:.0f}% pruned" for f in table_fractions], "fraction_pruned", True, cell,
    ))
    fig, axes = new_figure(6.5, 4.2)
    plot_relative_performance(summary, size_column, ax=axes[0], colors=ctx.colors)
    axes[0].set_title(f"{task}: relative performance")
    ctx.figure(fig, f"relative_{_slug(task)}", f"{task}: relative test performance vs fraction pruned.")


def _boxplot_section(final: pd.DataFrame, by: str, title: str, ctx: _Context) -> None:
    ctx.blocks.append(Heading(f"Final hypervolume across {title}"))
    rows = final[final[by].astype(str) != ""]
    tasks = [t for t, part in rows.groupby("task", sort=True) if part[by].nunique() >= 2]
    if not tasks:
        ctx.note(f"fewer than two distinct {title} per task in the results; boxplot skipped.")
        return
    fig, axes = new_figure(4.5 * len(tasks), 4, ncols=len(tasks))
    for ax, task in zip(axes, tasks):
        plot_boxplot(rows[rows["task"] == task], by, ax=ax)
        ax.set_title(str(task))
    ctx.figure(fig, f"boxplot_{by}", f"Final hypervolume per run across {title} (one dot per run).")


def _paper_tables_section(frame: pd.DataFrame, final: pd.DataFrame, ctx: _Context) -> None:
    """The paper's cross-task tables (methods x tasks) in the report, and as LaTeX (booktabs) in tables/."""
    fraction = ctx.settings.cross_task_fraction_pruned
    ctx.blocks.append(Heading("Cross-task tables (the paper's layout)"))
    ctx.blocks.append(Paragraph(
        f"Methods x tasks, mean ± s.e. over seeds (– for a single seed), the best of each task in bold; each table is "
        f"also written as a LaTeX booktabs tabular in {TABLES_DIR}/ to paste into a paper. Relative performance: test "
        "performance of the best-validation sub-network within the size, relative to the unpruned model. Ranks: "
        "searchers (weight-sharing and standard NAS) ranked by final hypervolume per task and seed."))
    if frame["test_error"].notna().any():
        relative = _catching(ctx, relative_table, frame, fraction, ctx.settings.size_objective,
                             ctx.settings.secondary_metrics)
        name = relative_file_name(fraction)
        write_latex(relative, ctx.out_dir, name)
        ctx.blocks += [Paragraph(f"{relative.caption} ({TABLES_DIR}/{name})."), relative.table]
    else:
        ctx.note("no test errors in the results: the cross-task relative-performance table is skipped.")
    if final["kind"].isin(SEARCHER_KINDS).any():
        ranks = ranks_table(final)
        write_latex(ranks, ctx.out_dir, RANKS_TEX)
        ctx.blocks += [Paragraph(f"{ranks.caption} ({TABLES_DIR}/{RANKS_TEX})."), ranks.table]
    else:
        ctx.note("no weight-sharing or standard-NAS runs in the results: the cross-task rank table is skipped.")


VARIANT_COLUMNS = ("strategy", "search_space")


def supernet_of(source: str | os.PathLike) -> Path | None:
    """The super-network run a weight-sharing search folder was run on (from its run.json), if it has curves."""
    run_file = Path(source) / "run.json"
    if not run_file.is_file():
        return None
    try:
        supernet = json.loads(run_file.read_text(encoding="utf-8")).get("arguments", {}).get("supernet")
    except ValueError:
        return None
    if not supernet:
        return None
    for folder in (Path(supernet), Path(supernet).parent):
        if is_supernet_run(folder):
            return folder
    return None


def _supernet_section(folder: Path, ctx: _Context) -> None:
    """Learning curves of a super-network's probe sub-networks, as a table and a figure."""
    metrics = read_supernet_metrics(folder)
    curves = probe_curves(metrics)
    constant = metrics.get("constant", {}).get("valid", {}).get("main")
    metric = metrics.get("main_metric", "metric")
    constant_text = "" if constant is None else f"; the constant predictor scores {constant:.4f}"
    ctx.blocks.append(Heading(f"Super-network training: {folder}"))
    ctx.blocks.append(Paragraph(
        f"Task {metrics.get('task')}, strategy {metrics.get('strategy')} {metrics.get('strategy_options', {})}, "
        f"search space {metrics.get('search_space')}. Validation {metric} of fixed probe sub-networks after every "
        f"epoch{constant_text}. A trained super-network lifts every probe above the constant predictor, and its "
        "full network matches plain fine-tuning."))
    table = learning_curve_table(curves)
    fractions = dict(zip(curves["probe"], curves["encoder_mac_fraction"]))
    header = ["epoch", *(probe_label(name, fractions[name]) for name in table.columns)]
    ctx.blocks.append(Table(header, [[Cell(str(epoch)), *(Cell(f"{value:.4f}") for value in row)]
                                     for epoch, row in table.iterrows()]))
    fig, axes = new_figure()
    plot_learning_curves(curves, metric_label=f"validation {metric}", constant=constant, ax=axes[0])
    axes[0].set_title(f"{metrics.get('task')}: probe sub-networks per epoch")
    ctx.figure(fig, f"learning_curves_{_slug(str(folder))}", "Validation metric of the probe sub-networks per epoch.")


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
    supernets = [Path(source) for source in sources if is_supernet_run(source)]
    sources = [source for source in sources if Path(source) not in supernets]
    supernets += [found for found in map(supernet_of, sources) if found is not None and found not in supernets]
    for root in filter(is_study_root, sources):  # a grid's super-networks, also where run.json's paths are gone
        known = {folder.resolve() for folder in supernets}
        supernets += [folder for folder in supernet_folders(Path(root))
                      if is_supernet_run(folder) and folder.resolve() not in known]
    out_dir = Path(out_dir)
    if not sources:
        return _write_supernet_report(supernets, out_dir, settings)
    frame = label_variants(pd.concat([read_results(source) for source in sources], ignore_index=True))
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = _Context(out_dir, settings, method_colors(frame["method"].astype(str).unique()))
    title = "plm-nas results report"
    ctx.blocks += [
        Heading(title, 1),
        Paragraph(f"Source: {', '.join(str(source) for source in sources)}. {len(frame)} rows, "
                  f"{frame['run_id'].nunique()} runs, "
                  f"{frame['task'].nunique()} task(s), {len(frame[['kind', 'method']].drop_duplicates())} method(s) "
                  "(a method is a kind and method name)."),
        Paragraph(f"Hypervolume: {hv_settings.describe()}. The compared rows are all rows of the task except "
                  "standard-NAS epochs that do not improve their trial's best validation error so far, so a trial "
                  "counts with its best epoch as of each time. Points beyond the reference point contribute nothing."),
    ]
    trajectories = _catching(ctx, hypervolume_over_time, best_so_far_rows(frame), hv_settings)
    sizes = {task: _catching(ctx, resolve_size_column, part, settings.size_objective)
             for task, part in frame.groupby("task", sort=True)}
    overview = [
        [Cell(str(task)), Cell(str(len(part))), Cell(str(part["run_id"].nunique())),
         Cell(", ".join(sorted(part["method"].astype(str).unique()))), Cell(sizes[task])]
        for task, part in frame.groupby("task", sort=True)
    ]
    ctx.blocks += [Heading("Overview"), Table(["task", "rows", "runs", "methods", "size objective"], overview)]
    final = final_hypervolume(trajectories)
    _paper_tables_section(frame, final, ctx)
    _ranks_section(trajectories, ctx)
    for task, rows in frame.groupby("task", sort=True):
        ctx.blocks.append(Heading(f"Task {task}"))
        task_traj = trajectories[trajectories["task"] == task]
        _hypervolume_section(str(task), task_traj, ctx)
        ctx.blocks.append(Heading("Ranks", 3))
        ctx.blocks.append(_rank_table(task_traj, ctx))
        _relative_section(str(task), rows, sizes[task], ctx)
        ctx.blocks.append(Heading("Pareto fronts", 3))
        _pareto_section(str(task), rows, sizes[task], ctx)
    _boxplot_section(final[final["kind"] == "weight-sharing"], "strategy", "super-network training strategies", ctx)
    _boxplot_section(final, "search_space", "search spaces", ctx)
    for folder in supernets:
        _supernet_section(folder, ctx)
    for source in filter(is_study_root, sources):
        ctx.blocks += _catching(ctx, study_section, Path(source), frame, trajectories, settings.table_fractions_pruned,
                                settings.size_objective, settings.secondary_metrics).to_blocks()
    for section in sections:
        ctx.blocks += section.to_blocks()
    return _write_documents(ctx, title)


def _write_documents(ctx: _Context, title: str) -> Path:
    md_path = ctx.out_dir / REPORT_MD
    md_path.write_text(to_markdown(ctx.blocks), encoding="utf-8")
    (ctx.out_dir / REPORT_HTML).write_text(to_html(ctx.blocks, title), encoding="utf-8")
    return md_path


def _write_supernet_report(folders: list[Path], out_dir: Path, settings: ReportSettings) -> Path:
    """A report of super-network runs alone: their probe learning curves."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = _Context(out_dir, settings, {})
    title = "plm-nas super-network report"
    ctx.blocks.append(Heading(title, 1))
    for folder in folders:
        _supernet_section(folder, ctx)
    return _write_documents(ctx, title)


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


def run_report(args: argparse.Namespace) -> Path:
    """Write the report described by parsed ``plm-nas report`` arguments; return the path of report.md."""
    check_report_arguments(args)
    settings = ReportSettings(
        size_objective=args.size_objective, normalization=args.normalization,
        reference_point=tuple(args.reference_point), bootstrap_samples=args.bootstrap_samples, seed=args.seed,
        grid_points=args.grid_points, cross_task_fraction_pruned=args.cross_task_pruned,
        secondary_metrics=parse_secondary_metrics(args.secondary_metrics),
    )
    return write_report(args.results, args.out, settings=settings)


# The ``plm-nas`` CLI calls every subcommand module's ``add_arguments(parser)`` and ``run(args) -> exit code``.
add_arguments = add_report_arguments


def run(args: argparse.Namespace) -> int:
    """``plm-nas report``: write the report and print where it is."""
    path = run_report(args)
    print(f"report written to {path} and {path.with_name(REPORT_HTML)}", flush=True)
    return 0
