"""Analysis and figures from the tidy results table: hypervolumes, ranks, relative performance, report."""
from benchmarks.results import best_epoch_rows, best_so_far_rows
from plotting.hypervolume import (
    HypervolumeSettings,
    add_regret,
    final_hypervolume,
    hypervolume_2d,
    hypervolume_over_time,
    hypervolume_trajectory,
    make_grid,
    normalized_points,
    on_grid,
    pareto_front_2d,
    resolve_size_column,
    step_interpolate,
    summarize_over_seeds,
)
from plotting.normalize import NORMALIZERS, minmax_normalize, normalize_objectives, quantile_normalize
from plotting.ranks import average_ranks, bootstrap_average_ranks
from plotting.relative import relative_performance
from plotting.report import ReportSettings, add_report_arguments, run_report, write_report
from plotting.style import method_color, method_colors

__all__ = [
    "HypervolumeSettings",
    "NORMALIZERS",
    "ReportSettings",
    "add_regret",
    "add_report_arguments",
    "average_ranks",
    "best_epoch_rows",
    "best_so_far_rows",
    "bootstrap_average_ranks",
    "final_hypervolume",
    "hypervolume_2d",
    "hypervolume_over_time",
    "hypervolume_trajectory",
    "make_grid",
    "method_color",
    "method_colors",
    "minmax_normalize",
    "normalize_objectives",
    "normalized_points",
    "on_grid",
    "pareto_front_2d",
    "quantile_normalize",
    "relative_performance",
    "resolve_size_column",
    "run_report",
    "step_interpolate",
    "summarize_over_seeds",
    "write_report",
]
