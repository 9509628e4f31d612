"""The report of super-network runs: the learning curves of their probe sub-networks, from metrics.json alone.

A ``train-supernet`` folder given to the report, or the super-network a weight-sharing search ran on (named in
its run.json), becomes one section; given only such folders, the report holds these sections alone. Each
folder's metrics.json is read once.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from plotting.document import Cell, Heading, Paragraph, Table
from plotting.learning_curves import (
    learning_curve_table,
    plot_learning_curves,
    probe_curves,
    probe_label,
    probes_not_above,
    supernet_run_metrics,
)
from plotting.report_sections import ReportContext, ReportSettings, slug, write_documents
from plotting.study import is_study_root, supernet_folders
from plotting.style import new_figure, shared_legend

SupernetRuns = dict[Path, dict[str, Any]]  # folder -> its metrics.json


def _supernet_run_of(source: str | os.PathLike) -> tuple[Path, dict[str, Any]] | None:
    """The super-network run a weight-sharing search folder was run on, with its metrics, if it has curves."""
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
        metrics = supernet_run_metrics(folder)
        if metrics is not None:
            return folder, metrics
    return None


def supernet_of(source: str | os.PathLike) -> Path | None:
    """The super-network run a weight-sharing search folder was run on (from its run.json), if it has curves."""
    found = _supernet_run_of(source)
    return None if found is None else found[0]


def split_supernet_runs(sources: Sequence[str | os.PathLike]) -> tuple[list[str | os.PathLike], SupernetRuns]:
    """The sources that hold results, and the super-network runs to draw with their metrics: those given,
    then those the searches among the sources ran on."""
    supernets: SupernetRuns = {}
    for source in sources:
        metrics = supernet_run_metrics(source)
        if metrics is not None:
            supernets[Path(source)] = metrics
    results = [source for source in sources if Path(source) not in supernets]
    for found in map(_supernet_run_of, results):
        if found is not None and found[0] not in supernets:
            supernets[found[0]] = found[1]
    for root in filter(is_study_root, results):  # a grid's super-networks, also where run.json's paths are gone
        known = {folder.resolve() for folder in supernets}
        for folder in supernet_folders(Path(root)):
            metrics = supernet_run_metrics(folder) if folder.resolve() not in known else None
            if metrics is not None:
                supernets[folder] = metrics
    return results, supernets


def _verdict(table: pd.DataFrame, labels: dict[str, str], constant: float | None) -> str:
    """What the last epoch of the :func:`learning_curve_table` says of the probes against the constant predictor."""
    if constant is None or table.empty:
        return ""
    below = probes_not_above(table, constant)
    count, epoch = len(table.columns), int(table.index[-1])
    if not below:
        return f" After epoch {epoch} all {count} probes score above the constant predictor."
    above = count - len(below)
    verb = "scores" if above == 1 else "score"
    named = ", ".join(labels[name] for name in below)
    return f" After epoch {epoch}, {above} of {count} probes {verb} above the constant predictor; not above it: {named}."


def supernet_section(folder: Path, metrics: dict[str, Any], ctx: ReportContext) -> None:
    """Learning curves of a super-network's probe sub-networks, as a table and a figure."""
    curves = probe_curves(metrics)
    constant = metrics.get("constant", {}).get("valid", {}).get("main")
    metric = metrics.get("main_metric", "metric")
    constant_text = "" if constant is None else f"; the constant predictor scores {constant:.4f}"
    table = learning_curve_table(curves)
    fractions = dict(zip(curves["probe"], curves["encoder_mac_fraction"]))
    labels = {name: probe_label(name, fractions[name]) for name in table.columns}
    ctx.blocks.append(Heading(f"Super-network training: {folder}"))
    ctx.blocks.append(Paragraph(
        f"Task {metrics.get('task')}, strategy {metrics.get('strategy')} {metrics.get('strategy_options', {})}, "
        f"search space {metrics.get('search_space')}. Validation {metric} of fixed probe sub-networks after every "
        f"epoch{constant_text}.{_verdict(table, labels, constant)} A trained super-network lifts its probes above "
        "the constant predictor, and its full network stays near plain fine-tuning."))
    header = ["epoch", *labels.values()]
    ctx.blocks.append(Table(header, [[Cell(str(epoch)), *(Cell(f"{value:.4f}") for value in row)]
                                     for epoch, row in table.iterrows()]))
    fig, axes = new_figure(6, 4.6)
    plot_learning_curves(curves, metric_label=f"validation {metric}", constant=constant, ax=axes[0])
    axes[0].set_title(f"{metrics.get('task')}: probe sub-networks per epoch")
    shared_legend(fig, axes)
    ctx.figure(fig, f"learning_curves_{slug(str(folder))}", "Validation metric of the probe sub-networks per epoch.")


def write_supernet_report(supernets: SupernetRuns, out_dir: Path, settings: ReportSettings) -> Path:
    """A report of super-network runs alone: their probe learning curves."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = ReportContext(out_dir, settings, {})
    title = "plm-nas super-network report"
    ctx.blocks.append(Heading(title, 1))
    for folder, metrics in supernets.items():
        supernet_section(folder, metrics, ctx)
    return write_documents(ctx, title)
