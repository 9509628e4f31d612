"""The report's sections: its settings, the context they add blocks to, and one builder per section.

:func:`plotting.report.write_report` calls these in order; each appends headings, tables, notes and figures
to a :class:`ReportContext`, and :func:`write_documents` turns its blocks into report.md and report.html.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from benchmarks.results import best_epoch_rows, pareto_mask, parse_metrics
from plotting.document import (
    DASH,
    Block,
    Cell,
    Heading,
    Image,
    Paragraph,
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
    make_grid,
    on_grid,
    summarize_over_seeds,
    tied_errors,
)
from plotting.paper_tables import (
    DEFAULT_SECONDARY_METRICS,
    SEARCHER_KINDS,
    TABLES_DIR,
    CrossTaskTable,
    above_baseline_tables,
    hypervolume_table,
    ranks_table,
    relative_file_name,
    relative_table,
    uneven_competitors,
    write_latex,
)
from plotting.ranks import bootstrap_average_ranks
from plotting.relative import relative_performance, unpruned_performance
from plotting.style import axis_label, new_figure, save_figure, shared_legend

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
FIGURES_DIR = "figures"
RANKS_TEX = "ranks.tex"
HYPERVOLUME_TEX = "hypervolume.tex"
ABOVE_CONSTANT_TEX = ("hypervolume_above_constant.tex", "ranks_above_constant.tex")


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
    # (task, validation error) of a baseline, e.g. the constant predictor, beside (and over) a grid's own: the
    # cross-task tables are repeated with a hypervolume that credits only errors below it
    baseline_errors: tuple[tuple[str, float], ...] = ()

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


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "task"


def best_flags(values: Sequence[float], higher_is_better: bool) -> list[bool]:
    arr = np.asarray(values, dtype=float)
    if not np.isfinite(arr).any():
        return [False] * len(arr)
    best = np.nanmax(arr) if higher_is_better else np.nanmin(arr)
    return [bool(np.isfinite(v) and np.isclose(v, best, rtol=0, atol=1e-12)) for v in arr]


Formatter = Callable[[Any], str]  # a row of the summary (with mean, se, n, ...) -> cell text


def method_table(
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
        flags = best_flags([np.nan if r is None else float(r.mean) for r in found], higher_is_better)
        flags = flags if len(methods) > 1 else [False] * len(flags)  # no best where nothing is compared
        for m, row, flag in zip(methods, found, flags):
            cells[m].append(Cell(DASH if row is None else formatter(row), flag))
    rows = [[Cell(k), Cell(m)] + [Cell(t) for t in (extra or {}).get((k, m), [])] + cells[(k, m)] for k, m in methods]
    return Table(["kind", "method", *extra_names, *column_names], rows)


# ---------------------------------------------------------------------------------------------------------------
# Sections


@dataclass
class ReportContext:
    """What the sections share: the output folder, the settings, method colours, and the blocks so far."""

    out_dir: Path
    settings: ReportSettings
    colors: dict[str, str]
    blocks: list[Block] = field(default_factory=list)
    # the unpruned reference per task and seed (a grid's plain fine-tuning: columns task, model, seed, reference);
    # None: each run is measured against its own unpruned sub-network
    references: pd.DataFrame | None = None
    # per task, the constant predictor's validation error (a grid's super-networks' metrics, or given)
    baselines: dict[str, float] = field(default_factory=dict)
    # run id -> the full network's test performance found beside the run (its super-network's, its fine-tuned
    # model's: plotting.unpruned), for runs without an unpruned row of their own
    run_references: dict[str, float] = field(default_factory=dict)
    reference_sources: dict[str, str] = field(default_factory=dict)  # run id -> where its reference was found

    def note(self, text: str) -> None:
        """Add a note once (the same warning can come from several computations)."""
        if not any(isinstance(b, Paragraph) and b.note and b.text == text for b in self.blocks):
            self.blocks.append(Paragraph(text, note=True))

    def figure(self, fig: Figure, name: str, caption: str) -> None:
        """Save ``fig`` as figures/NAME.png and .pdf and show it in the report."""
        save_figure(fig, self.out_dir / FIGURES_DIR / name)
        self.blocks.append(Image(f"{FIGURES_DIR}/{name}.png", f"{FIGURES_DIR}/{name}.pdf", caption))


def reference_name(ctx: ReportContext) -> str:
    """What relative performance is relative to, in words."""
    if ctx.references is not None:
        return "the unpruned model (plain fine-tuning with the same task and seed)"
    if ctx.run_references:
        return ("the unpruned model (the run's own unpruned row, else the full network of the super-network or the "
                "fine-tuned model the run started from)")
    return "the unpruned model"


def catching(ctx: ReportContext, func: Callable, *args, **kwargs):
    """Call ``func``; every warning it raises becomes a note in the report."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = func(*args, **kwargs)
    for w in caught:
        ctx.note(str(w.message))
    return result


def rank_table(trajectories: pd.DataFrame, ctx: ReportContext) -> Table:
    """Bootstrapped average rank at fixed fractions of the longest run's time."""
    t_max = float(trajectories[TIME].max())
    fractions = ctx.settings.rank_time_fractions
    grid = np.array([f * t_max for f in fractions])
    ranks = bootstrap_average_ranks(
        on_grid(trajectories, grid, TIME), TIME, num_samples=ctx.settings.bootstrap_samples, seed=ctx.settings.seed
    )
    summary = ranks.rename(columns={"rank": "mean"})
    names = [f"t = {format_seconds(t)} ({100 * f:.0f}%)" for t, f in zip(grid, fractions)]
    return method_table(summary, grid, names, TIME, False, lambda r: f"{r.mean:.2f}" if np.isfinite(r.mean) else DASH)


def ranks_section(trajectories: pd.DataFrame, ctx: ReportContext) -> None:
    num_tasks = trajectories["task"].nunique()
    ctx.blocks.append(Heading("Average rank across tasks"))
    ctx.blocks.append(Paragraph(
        f"Methods ranked by hypervolume (1 = best) per task at each time, averaged over {num_tasks} task(s); "
        f"bootstrapped over seeds ({ctx.settings.bootstrap_samples} samples, seed {ctx.settings.seed}): each "
        "sample picks one run per method and task. Times are absolute; a finished run keeps its last value."
    ))
    ctx.blocks.append(rank_table(trajectories, ctx))
    fig, axes = new_figure(11, 4.8, ncols=2)
    for ax, x in zip(axes, (TIME, EVALUATION)):
        grid = make_grid(trajectories, x, ctx.settings.grid_points)
        ranks = bootstrap_average_ranks(
            on_grid(trajectories, grid, x), x, num_samples=ctx.settings.bootstrap_samples, seed=ctx.settings.seed
        )
        plot_average_ranks(ranks, x, ax=ax, colors=ctx.colors)
    axes[0].set_title("average rank over wall-clock time")
    axes[1].set_title("average rank over evaluations")
    shared_legend(fig, axes)
    ctx.figure(fig, "ranks", "Average rank of methods across tasks (bootstrapped over seeds).")


def hypervolume_section(task: str, trajectories: pd.DataFrame, ctx: ReportContext,
                        heading: str | None = "Final hypervolume") -> None:
    """Each method's final hypervolume (a table under ``heading``, if any) and a figure of it over time and
    evaluations, and of the regret over time."""
    per_run = final_hypervolume(trajectories)
    final = summarize_over_seeds(per_run)
    extra = {
        (str(k), str(m)): [str(len(g)), format_seconds(float(g[TIME].mean())), f"{g[EVALUATION].mean():.0f}"]
        for (k, m), g in per_run.groupby(["kind", "method"])
    }
    if heading:
        ctx.blocks.append(Heading(heading, 3))
    ctx.blocks.append(method_table(
        final, [0], ["final hypervolume (mean ± s.e.)"], None, True, lambda r: format_mean_se(r.mean, r.se), extra,
        ["runs", "mean runtime", "mean evaluations"],
    ))
    if final["n"].max() < 2:
        ctx.note("a single run per method: standard errors are shown as –.")
    fig, axes = new_figure(16, 5, ncols=3)
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
    shared_legend(fig, axes)
    ctx.figure(fig, f"hypervolume_{slug(task)}",
               f"{task}: hypervolume over time and evaluations, and regret over time (mean ± s.e. over seeds).")


def pareto_section(task: str, rows: pd.DataFrame, size_column: str, ctx: ReportContext) -> None:
    points = best_epoch_rows(rows)
    first_runs = points.sort_values("seed", kind="stable").drop_duplicates(["kind", "method"])["run_id"]
    shown = points[points["run_id"].isin(first_runs)]
    errors = ["valid_error"] + (["test_error"] if shown["test_error"].notna().any() else [])
    fig, axes = new_figure(5.5 * len(errors), 4.8, ncols=len(errors))
    for ax, error in zip(axes, errors):
        plot_pareto_fronts(shown, size_column, error, ax=ax, colors=ctx.colors)
        ax.set_title(f"{task}: {axis_label(error)} vs size")
    for ax in axes[1:]:  # the same sizes side by side (the validation panel has every point, test only some)
        ax.set_xlim(axes[0].get_xlim())
    shared_legend(fig, axes)
    ctx.figure(fig, f"pareto_{slug(task)}",
               f"{task}: evaluated sub-networks (faint) and Pareto fronts (steps), one run per method (lowest seed).")
    if len(errors) == 1:
        ctx.note(f"task {task}: no test errors in the results; only validation fronts are shown.")


def relative_section(task: str, rows: pd.DataFrame, size_column: str, ctx: ReportContext) -> None:
    ctx.blocks.append(Heading("Relative performance", 3))
    if rows["test_error"].notna().sum() == 0:
        ctx.note(f"task {task}: no test errors in the results; relative performance skipped.")
        return
    fractions = sorted(set(ctx.settings.figure_fractions_pruned) | set(ctx.settings.table_fractions_pruned))
    num_blocks = len(ctx.blocks)
    rel = catching(ctx, relative_performance, rows, fractions, size_column, reference=ctx.references,
                   run_references=ctx.run_references)
    if rel.empty or not np.isfinite(rel["relative_performance"].to_numpy(dtype=float)).any():
        if len(ctx.blocks) == num_blocks:  # no warning explained it already
            ctx.note(f"task {task}: relative performance is undefined (no chosen sub-network has a test error).")
        return
    summary = summarize_over_seeds(rel, "relative_performance", by=("task", *METHOD_KEYS, "fraction_pruned"))
    ctx.blocks.append(Paragraph(
        f"Test performance (1 - test error) of the best-validation sub-network with {axis_label(size_column)} "
        f"at most 1 - fraction pruned, relative to {reference_name(ctx)}, in % (mean ± s.e. over the runs that have "
        "such a sub-network; (n=k/m) when only k of a method's m runs do)."
    ))
    runs = rel.groupby(["kind", "method"])["run_id"].nunique()
    table_fractions = list(ctx.settings.table_fractions_pruned)
    table = summary.assign(total=[runs[(k, m)] for k, m in zip(summary["kind"], summary["method"])])

    def cell(row) -> str:
        text = format_mean_se(row.mean, row.se, digits=1, scale=100.0)
        return text if row.n in (0, row.total) else f"{text} (n={row.n}/{row.total})"

    ctx.blocks.append(method_table(
        table, table_fractions, [f"{100 * f:.0f}% pruned" for f in table_fractions], "fraction_pruned", True, cell,
    ))
    fig, axes = new_figure(6.5, 5)
    plot_relative_performance(summary, size_column, ax=axes[0], colors=ctx.colors)
    axes[0].set_title(f"{task}: relative performance")
    shared_legend(fig, axes)
    ctx.figure(fig, f"relative_{slug(task)}", f"{task}: relative test performance vs fraction pruned.")


def main_metric_name(rows: pd.DataFrame) -> str | None:
    """The task metric whose complement the rows' validation error is (read from their ``valid_metrics``: the one
    metric every scored row has at 1 - valid_error), or None where no row tells."""
    candidates: set[str] | None = None
    cells = rows["valid_metrics"] if "valid_metrics" in rows.columns else pd.Series("", index=rows.index)
    for error, cell in zip(rows["valid_error"].astype(float), cells):
        metrics = parse_metrics(cell)
        if not metrics or not np.isfinite(error):
            continue
        matching = {name for name, value in metrics.items() if np.isclose(value, 1.0 - error, rtol=0, atol=1e-9)}
        candidates = matching if candidates is None else candidates & matching
        if len(candidates) <= 1:
            break
    return next(iter(candidates)) if candidates and len(candidates) == 1 else None


def front_members(run: pd.DataFrame, size_column: str) -> pd.DataFrame:
    """A run's sub-networks on its Pareto front of validation error and size (each trial at its best epoch),
    largest first."""
    points = best_epoch_rows(run)
    points = points[np.isfinite(points["valid_error"].astype(float)) & np.isfinite(points[size_column].astype(float))]
    front = points[pareto_mask(points["valid_error"].astype(float), points[size_column].astype(float))]
    return front.sort_values([size_column, "valid_error"], ascending=[False, True], kind="stable")


LATENCY_COLUMN = "latency_ms"  # predicted from a latency table, where the rows have it


def _score(value: float) -> str:
    return DASH if not np.isfinite(value) else f"{value:.4f}"


def front_members_section(task: str, rows: pd.DataFrame, size_column: str, ctx: ReportContext) -> None:
    """The sub-networks on each run's front: their size fractions, latency where the rows have it, validation and
    test metric, and the test metric relative to the full network's (the run's own unpruned row, else the full
    network found beside the run)."""
    metric = main_metric_name(rows) or "score (1 - error)"
    runs = dict(tuple(best_epoch_rows(rows).groupby("run_id", sort=True)))
    latency = bool(LATENCY_COLUMN in rows.columns
                   and np.isfinite(pd.to_numeric(rows[LATENCY_COLUMN], errors="coerce")).any())
    several = len(runs) > 1
    header = (["run"] if several else []) + ["parameters", "fraction of params", "fraction of MACs"]
    header += (["latency (ms, predicted)"] if latency else []) + [f"validation {metric}", f"test {metric}",
                                                                   "% of the full network"]
    table_rows, sources = [], []
    for run_id, run in runs.items():
        full, origin = unpruned_performance(run, size_column, ctx.run_references)
        named = f"{run_id}: " if several else ""
        if origin == "row":
            sources.append(f"{named}its own unpruned row, test {metric} {full:.4f}")
        elif origin == "found":
            sources.append(f"{named}{ctx.reference_sources.get(str(run_id), 'found beside the run')}, "
                           f"test {metric} {full:.4f}")
        for row in front_members(run, size_column).itertuples(index=False):
            test = 1.0 - float(row.test_error)
            cells = ([str(run_id)] if several else []) + [f"{int(row.params):,}", f"{row.param_fraction:.3f}",
                                                           f"{row.mac_fraction:.3f}"]
            if latency:
                value = float(getattr(row, LATENCY_COLUMN))
                cells.append(f"{value:.2f}" if np.isfinite(value) else DASH)
            relative = 100.0 * test / full if np.isfinite(full) and full else float("nan")
            cells += [_score(1.0 - float(row.valid_error)), _score(test),
                      DASH if not np.isfinite(relative) else f"{relative:.1f}"]
            table_rows.append([Cell(text) for text in cells])
    ctx.blocks.append(Heading("Sub-networks on the front", 3))
    full_text = ("; the full network: " + "; ".join(sources)) if sources else (
        "; no full network's test score was found (no unpruned row, no super-network or fine-tuned model's metrics "
        "beside the run), so the last column is empty")
    ctx.blocks.append(Paragraph(
        f"Each run's Pareto-optimal sub-networks (validation error vs {axis_label(size_column)}), largest first, "
        f"with their {metric} (1 - error; a weight-sharing search scores the test split on its front only) and "
        f"their test {metric} in % of the full network's{full_text}."))
    ctx.blocks.append(Table(header, table_rows))


def boxplot_section(final: pd.DataFrame, by: str, title: str, ctx: ReportContext) -> None:
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


def paper_tables_section(frame: pd.DataFrame, compared: pd.DataFrame, final: pd.DataFrame, ctx: ReportContext) -> None:
    """The paper's cross-task tables (methods x tasks) in the report, and as LaTeX (booktabs) in tables/;
    ``compared`` holds the rows the hypervolumes were computed on (``best_so_far_rows(frame)``)."""
    fraction = ctx.settings.cross_task_fraction_pruned
    ctx.blocks.append(Heading("Cross-task tables (the paper's layout)"))
    ctx.blocks.append(Paragraph(
        f"Methods x tasks, mean ± s.e. over seeds (– for a single seed), the best of each task in bold; each table is "
        f"also written as a LaTeX booktabs tabular in {TABLES_DIR}/ to paste into a paper. Relative performance: test "
        f"performance of the best-validation sub-network within the size, relative to {reference_name(ctx)}. Ranks: "
        "searchers (weight-sharing and standard NAS) ranked by final hypervolume per task and seed."))
    if frame["test_error"].notna().any():
        relative = catching(ctx, relative_table, frame, fraction, ctx.settings.size_objective,
                            ctx.settings.secondary_metrics, ctx.references, ctx.run_references)
        add_latex_tables(ctx, [(relative, relative_file_name(fraction))])
    else:
        ctx.note("no test errors in the results: the cross-task relative-performance table is skipped.")
    if final["kind"].isin(SEARCHER_KINDS).any():
        add_latex_tables(ctx, ((hypervolume_table(final), HYPERVOLUME_TEX), (ranks_table(final), RANKS_TEX)))
        for sentence in uneven_competitors(final):
            ctx.note(sentence)
        for sentence in tied_errors(compared, ctx.settings.hypervolume()):
            ctx.note(sentence)
        above_constant_tables(compared, ctx)
    else:
        ctx.note("no weight-sharing or standard-NAS runs in the results: the cross-task rank table is skipped.")


def add_latex_tables(ctx: ReportContext, tables: Iterable[tuple[CrossTaskTable, str]]) -> None:
    """Write each cross-task table as tables/NAME (LaTeX) and show it in the report under its caption."""
    for table, name in tables:
        write_latex(table, ctx.out_dir, name)
        ctx.blocks += [Paragraph(f"{table.caption} ({TABLES_DIR}/{name})."), table.table]


def above_constant_tables(compared: pd.DataFrame, ctx: ReportContext) -> None:
    """The hypervolume and rank tables again with the hypervolume above the constant predictor, where its
    validation error is known (``ctx.baselines``)."""
    if not ctx.baselines:
        return
    tables = catching(ctx, above_baseline_tables, compared, ctx.baselines, ctx.settings.size_objective)
    if tables is None:
        return
    errors = ", ".join(f"{task} {error:.4g}" for task, error in sorted(ctx.baselines.items()))
    ctx.blocks.append(Paragraph(
        "The same searchers measured by what they find beyond a model that learnt nothing: a validation error is "
        f"divided by the constant predictor's (validation errors: {errors}), the size fraction is kept, and the "
        "reference point is (1, 1). Unlike the quantile-normalised hypervolume above, this one does not depend on "
        "the other runs and grows with how far below the constant predictor the front lies, so a sub-network one "
        "validation example better than it adds next to nothing."))
    add_latex_tables(ctx, zip(tables, ABOVE_CONSTANT_TEX))


def write_documents(ctx: ReportContext, title: str) -> Path:
    """Write the context's blocks as report.md and report.html; return the path of report.md."""
    md_path = ctx.out_dir / REPORT_MD
    md_path.write_text(to_markdown(ctx.blocks), encoding="utf-8")
    (ctx.out_dir / REPORT_HTML).write_text(to_html(ctx.blocks, title), encoding="utf-8")
    return md_path


# ---------------------------------------------------------------------------------------------------------------
# Statistical comparison of methods (enough seeds)

SIGNIFICANCE_BUDGETS: tuple[int | None, ...] = (25, None)  # evaluations; None: each run's end


def _budget_name(budget: int | None) -> str:
    return "the end of each run" if budget is None else f"{budget} evaluations"


def significance_section(trajectories: pd.DataFrame, ctx: ReportContext) -> None:
    """Where at least two methods ran :data:`plotting.significance.MIN_BLOCKS` times on a task: hypervolume over
    evaluations with 95% confidence bands, the final (and early) hypervolume with confidence intervals, Friedman's
    test over blocks and Nemenyi's critical differences, per task and across tasks."""
    from plotting.significance import (
        ALPHA,
        CONFIDENCE,
        MIN_BLOCKS,
        block_table,
        confidence_interval,
        critical_difference_figure,
        friedman,
        hypervolume_at,
    )

    runs = final_hypervolume(trajectories).groupby(["task", "method"]).size()
    powered = [task for task, counts in runs.groupby(level="task") if len(counts) >= 2 and counts.min() >= MIN_BLOCKS]
    if not powered:
        return
    trajectories = trajectories[trajectories["task"].isin(powered)]
    ctx.blocks.append(Heading("Statistical comparison"))
    ctx.blocks.append(Paragraph(
        f"Tasks where every method ran at least {MIN_BLOCKS} times: {', '.join(powered)}. A block is one "
        "repetition: the runs of every method on the same task with the same seed (and super-network). Methods are "
        "ranked by hypervolume within each block (1 = largest); Friedman's test asks whether the mean ranks differ "
        f"more than chance would make them (two methods: Wilcoxon's signed-rank test), and Nemenyi's post-hoc test "
        f"which pairs do (p < {ALPHA}; scikit-posthocs). Only complete blocks count. Intervals: {CONFIDENCE:.0%} "
        "Student-t confidence intervals of the mean over runs."))
    for budget in SIGNIFICANCE_BUDGETS:
        values = hypervolume_at(trajectories, budget)
        ctx.blocks.append(Heading(f"After {_budget_name(budget)}", 3))
        rows, figures = [], []
        scopes = [(task, values[values["task"] == task]) for task in powered] + (
            [("all tasks", values)] if len(powered) > 1 else [])
        for scope, part in scopes:
            table = block_table(part)
            result = friedman(table)
            for method in sorted(part["method"].unique()):
                mean, low, high = confidence_interval(part.loc[part["method"] == method, "hypervolume"])
                rank = result.mean_ranks.get(method, np.nan) if result is not None else np.nan
                rows.append([Cell(scope), Cell(method), Cell(str(int((part["method"] == method).sum()))),
                             Cell(f"{mean:.4f}"), Cell(DASH if np.isnan(low) else f"[{low:.4f}, {high:.4f}]"),
                             Cell(DASH if np.isnan(rank) else f"{rank:.2f}")])
            if result is None:
                ctx.note(f"{scope} after {_budget_name(budget)}: fewer than {MIN_BLOCKS} complete blocks, no test.")
                continue
            pairs = result.different_pairs()
            verdict = ("; ".join(f"{a} > {b}" for a, b in pairs) if pairs else
                       "no pair differs significantly" if result.significant else "no significant difference")
            rows.append([Cell(scope), Cell(f"Friedman p = {result.p_value:.3g} ({result.blocks} blocks)"), Cell(""),
                         Cell(""), Cell(""), Cell(verdict)])
            figures.append((scope, result))
        ctx.blocks.append(Table(["scope", "method", "runs", "mean hypervolume", f"{CONFIDENCE:.0%} CI", "mean rank"],
                                rows))
        for scope, result in figures:
            fig = critical_difference_figure(result, f"{scope}, after {_budget_name(budget)}", ctx.colors)
            budget_tag = "end" if budget is None else str(budget)
            ctx.figure(fig, f"critical_difference_{slug(scope)}_{budget_tag}",
                       f"{scope}: mean ranks after {_budget_name(budget)}; methods joined by a bar do not differ "
                       f"significantly (Nemenyi, p >= {ALPHA}).")
    for task in powered:
        part = trajectories[trajectories["task"] == task]
        grid = make_grid(part, EVALUATION, ctx.settings.grid_points)
        on = on_grid(part, grid, EVALUATION)
        summary = summarize_over_seeds(on, by=("task", *METHOD_KEYS, EVALUATION))
        summary["se"] = _interval_half_widths(summary, CONFIDENCE)
        fig, axes = new_figure(7, 4.8)
        plot_over_x(summary, EVALUATION, ax=axes[0], colors=ctx.colors, log_x=False)
        axes[0].set_title(f"{task}: hypervolume over evaluations (mean, {CONFIDENCE:.0%} CI)")
        shared_legend(fig, axes)
        ctx.figure(fig, f"anytime_{slug(task)}",
                   f"{task}: hypervolume over evaluations, mean over runs with {CONFIDENCE:.0%} confidence bands.")


def _interval_half_widths(summary: pd.DataFrame, level: float) -> np.ndarray:
    """Half-widths of Student-t confidence intervals from a summary's standard errors and run counts."""
    from scipy import stats

    n = summary["n"].to_numpy(dtype=float)
    t = np.where(n > 1, stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1)), np.nan)
    return t * summary["se"].to_numpy(dtype=float)


def many_objectives_section(frame: pd.DataFrame, ctx: ReportContext) -> None:
    """Runs with more than two objectives: their n-dimensional hypervolume and 2-D projections of their fronts."""
    from plotting.many_objectives import REFERENCE, final_nd_hypervolumes, many_objective_runs, plot_projections

    rows = many_objective_runs(frame)
    if rows.empty:
        return
    ctx.blocks.append(Heading("More than two objectives"))
    ctx.blocks.append(Paragraph(
        "Runs that minimised more than two objectives. Their front holds the sub-networks no other of the run "
        "dominates in all objectives; the hypervolume is n-dimensional (each objective min-max normalised over the "
        f"task's rows of these runs, reference point {REFERENCE} in each; pymoo). The 2-D tables above measure the "
        "same runs in validation error and their first size objective only."))
    table = final_nd_hypervolumes(rows)
    ctx.blocks.append(Table(
        ["task", "method", "seed", "objectives", "points", "front", "n-D hypervolume"],
        [[Cell(str(r.task)), Cell(str(r.method)), Cell(str(r.seed)), Cell(str(r.objectives)), Cell(str(r.points)),
          Cell(str(r.front)), Cell(f"{r.hypervolume:.4f}")] for r in table.itertuples()]))
    for (task, objectives), part in rows.groupby(["task", "objectives"], sort=True):
        fig = plot_projections(part, ctx.colors)
        ctx.figure(fig, f"projections_{slug(str(task))}_{slug(str(objectives))}",
                   f"{task}: every pair of the objectives {objectives}; faint: evaluated sub-networks, outlined: "
                   "the run's front in all of them.")
