"""Analysis and figures from the tidy results table: hypervolumes, ranks, relative performance, report.

Names load on first use (PEP 562), so that importing one light module (``plotting.document``) or asking
``plm-nas report --help`` does not pay for scipy and matplotlib.
"""
from __future__ import annotations

import importlib
from typing import Any

_SOURCES = {
    "HypervolumeSettings": "plotting.hypervolume",
    "NORMALIZERS": "plotting.normalize",
    "ReportSettings": "plotting.report",
    "add_regret": "plotting.hypervolume",
    "add_report_arguments": "plotting.report",
    "average_ranks": "plotting.ranks",
    "best_epoch_rows": "benchmarks.results",
    "best_so_far_rows": "benchmarks.results",
    "bootstrap_average_ranks": "plotting.ranks",
    "final_hypervolume": "plotting.hypervolume",
    "hypervolume_2d": "plotting.hypervolume",
    "hypervolume_over_time": "plotting.hypervolume",
    "hypervolume_trajectory": "plotting.hypervolume",
    "make_grid": "plotting.hypervolume",
    "method_color": "plotting.style",
    "method_colors": "plotting.style",
    "minmax_normalize": "plotting.normalize",
    "normalize_objectives": "plotting.normalize",
    "normalized_points": "plotting.hypervolume",
    "on_grid": "plotting.hypervolume",
    "pareto_front_2d": "plotting.hypervolume",
    "quantile_normalize": "plotting.normalize",
    "relative_performance": "plotting.relative",
    "resolve_size_column": "plotting.hypervolume",
    "run_report": "plotting.report",
    "step_interpolate": "plotting.hypervolume",
    "summarize_over_seeds": "plotting.hypervolume",
    "with_metric": "benchmarks.results",
    "write_report": "plotting.report",
}
__all__ = sorted(_SOURCES)


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` when it is first asked for."""
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_SOURCES[name]), name)
