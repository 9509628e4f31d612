"""Learning curves of a super-network: the validation metric of its probe sub-networks after every epoch.

``plm-nas train-supernet`` records, per epoch, the validation metrics of fixed probe sub-networks (full
network, 75%, 50% and 25% of the encoder's MACs, the smallest) in ``metrics.json``, with the constant
predictor's score. One figure of them answers "is this super-network trained?": the probes should rise
above the constant predictor, and the full network should stay where plain fine-tuning gets.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes

from plotting.style import new_figure

SUPERNET_METRICS_FILE = "metrics.json"


def _probe_metrics(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The ``metrics.json`` in ``folder`` when it records probes; ``None`` when there is none or it does not."""
    path = Path(folder) / SUPERNET_METRICS_FILE
    if not path.is_file():
        return None
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return metrics if "probes" in metrics else None


def is_supernet_run(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is the output folder of ``plm-nas train-supernet`` with probe learning curves."""
    return _probe_metrics(folder) is not None


def _check_history(metrics: Mapping[str, Any], path: Path) -> None:
    if "probes" not in metrics or "history" not in metrics:
        raise ValueError(f"{path} records no probe sub-networks (written by an older train-supernet?)")


def supernet_run_metrics(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The ``metrics.json`` of a super-network run, read once: ``None`` where :func:`is_supernet_run` is false,
    and the ``ValueError`` of :func:`read_supernet_metrics` when it records probes without their history."""
    metrics = _probe_metrics(folder)
    if metrics is not None:
        _check_history(metrics, Path(folder) / SUPERNET_METRICS_FILE)
    return metrics


def read_supernet_metrics(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``metrics.json`` of a super-network run; ``ValueError`` naming the file when it holds no probes."""
    path = Path(folder) / SUPERNET_METRICS_FILE
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ValueError(f"{path} not found: {folder} is not a train-supernet output folder") from err
    except ValueError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    _check_history(metrics, path)
    return metrics


def probe_curves(metrics: Mapping[str, Any], metric: str = "main", split: str = "valid") -> pd.DataFrame:
    """Tidy curves: one row per (epoch, probe) with the probe's MAC fraction and its ``split`` ``metric``."""
    rows = []
    for record in metrics["history"]:
        for probe in metrics["probes"]:
            key = f"{split}_{probe['name']}_{metric}"
            if key in record:
                rows.append({"epoch": int(record["epoch"]), "probe": probe["name"],
                             "encoder_mac_fraction": float(probe["encoder_mac_fraction"]), metric: float(record[key])})
    return pd.DataFrame(rows, columns=["epoch", "probe", "encoder_mac_fraction", metric])


def probe_label(name: str, fraction: float) -> str:
    """Legend text of a probe, e.g. ``mac50 (50% MACs)``; one decimal under 1%, so a tiny probe never reads 0%."""
    if name == "full":
        return name
    return f"{name} ({fraction:.1%} MACs)" if fraction < 0.01 else f"{name} ({fraction:.0%} MACs)"


def plot_learning_curves(
    curves: pd.DataFrame,
    metric: str = "main",
    metric_label: str = "validation metric",
    constant: float | None = None,
    reference: float | None = None,
    reference_label: str = "plain fine-tuning",
    ax: Axes | None = None,
) -> Axes:
    """One line per probe (darker = larger), the constant predictor's score dashed, an optional reference dotted."""
    ax = ax if ax is not None else new_figure()[1][0]
    cmap = colormaps["viridis"]
    probes = curves.drop_duplicates("probe").sort_values("encoder_mac_fraction", ascending=False)
    for _, probe in probes.iterrows():
        part = curves[curves["probe"] == probe["probe"]].sort_values("epoch")
        color = cmap(0.85 * (1.0 - float(probe["encoder_mac_fraction"])))
        ax.plot(part["epoch"], part[metric], marker="o", color=color,
                label=probe_label(str(probe["probe"]), float(probe["encoder_mac_fraction"])))
    if constant is not None and np.isfinite(constant):
        ax.axhline(constant, color="black", linestyle="--", linewidth=1.0, label="constant predictor")
    if reference is not None and np.isfinite(reference):
        ax.axhline(reference, color="tab:red", linestyle=":", linewidth=1.2, label=reference_label)
    epochs = sorted(curves["epoch"].unique())
    if epochs:
        ax.set_xticks(epochs)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric_label)
    ax.legend(fontsize="small", framealpha=0.85)
    return ax


def learning_curve_table(curves: pd.DataFrame, metric: str = "main") -> pd.DataFrame:
    """Epochs as rows, probes as columns (largest first): the numbers behind the figure."""
    order = curves.drop_duplicates("probe").sort_values("encoder_mac_fraction", ascending=False)["probe"].tolist()
    table = curves.pivot(index="epoch", columns="probe", values=metric)
    return table[order]


def probes_not_above(table: pd.DataFrame, constant: float) -> list[str]:
    """The probes (columns of :func:`learning_curve_table`, largest first) whose value after the last epoch is not
    above the constant predictor's: those a trained super-network should have lifted and has not (the metric is
    higher-is-better)."""
    last = table.iloc[-1]
    return [str(name) for name, value in last.items() if not value > constant]
