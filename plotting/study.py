"""The study section of a report on a grid's folder (``plm-nas experiments --grid cpu-study``): what a reader of a
method comparison needs beyond the per-task report, each table made from the grid's files alone.

A grid folder (see :mod:`benchmarks.grids.spec`) holds, beside the results tables, ``finetuned/TASK/MODEL/seedS``
(plain fine-tuning: ``metrics.json``), ``supernets/TASK/MODEL/SPACE/STRATEGY/seedS`` (``metrics.json`` with the
constant predictor) and every step's ``timing.json``. From them:

* relative test performance at fixed fractions pruned, relative to *plain fine-tuning of the same seed* (the
  paper's reference: the unpruned fine-tuned model), for every method, with the constant predictor beside it;
* the wall-clock time weight-sharing NAS needs to reach each standard-NAS run's final hypervolume, with and
  without the super-network's training, over the time standard NAS needed (the paper's speed claim);
* the factor comparisons the grid's ``grid.json`` names (e.g. the super-network strategies and search spaces on
  one task) by final hypervolume, rank and relative performance;
* the time of every step.

``grid.json`` (:class:`plotting.comparisons.StudyManifest`) also says which runs are the grid's *main* runs: the
searcher comparisons (ranks, cross-task tables, speed) use those alone, and the comparison runs appear only in
their factor's tables.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from benchmarks.results import metric_task
from plotting.comparisons import STANDARD, WEIGHT_SHARING, StudyManifest, comparison_section
from plotting.document import DASH, Cell, Paragraph, Section, Table, format_mean_se
from plotting.hypervolume import TIME, standard_error
from plotting.paper_tables import with_secondary_metrics
from plotting.relative import relative_to_finetuned
from plotting.report_sections import format_seconds

FINETUNED_DIR = "finetuned"
SUPERNETS_DIR = "supernets"
TIMING_FILE = "timing.json"
METRICS_FILE = "metrics.json"
STEP_FOLDERS = ("supernets", "weight-sharing", "standard", "finetuned", "baselines")


def is_study_root(folder: str | Path) -> bool:
    """Whether a folder is a grid's root with fine-tuned models or super-networks (their metrics and timings)."""
    folder = Path(folder)
    return folder.is_dir() and any((folder / name).is_dir() for name in (FINETUNED_DIR, SUPERNETS_DIR))


def _seed(folder: Path) -> int:
    if not folder.name.startswith("seed"):
        raise ValueError(f"{folder} is not a seed folder (seedN)")
    return int(folder.name[len("seed"):])


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def supernet_folders(root: Path) -> list[Path]:
    """The output folders of the grid's super-networks (each with its probes' learning curves)."""
    return sorted((Path(root) / SUPERNETS_DIR).glob("*/*/*/*/seed*"))


def _metric_tasks(task: str, scores: Mapping[str, float], secondary: Sequence[tuple[str, str]]) -> dict[str, float]:
    """The main score under the task's name and each secondary metric's under ``"TASK (METRIC)"``."""
    tasks = {task: float(scores["main"])}
    tasks.update({metric_task(task, metric): float(scores[metric])
                  for name, metric in secondary if name == task and metric in scores})
    return tasks


def finetuned_references(root: Path, secondary: Sequence[tuple[str, str]] = ()) -> pd.DataFrame:
    """One row per fine-tuned model (and secondary metric): task, model, seed and its test metric (the unpruned
    reference); a secondary metric's rows are named as :func:`benchmarks.results.with_metric` names them."""
    records = []
    for path in sorted((root / FINETUNED_DIR).glob(f"*/*/seed*/{METRICS_FILE}")):
        task, model = path.parts[-4], path.parts[-3]
        for name, value in _metric_tasks(task, _read_json(path)["test"], secondary).items():
            records.append({"task": name, "model": model, "seed": _seed(path.parent), "reference": value})
    return pd.DataFrame(records, columns=["task", "model", "seed", "reference"])


def _constant_scores(root: Path, split: str) -> Iterator[tuple[str, Mapping[str, float]]]:
    """(task, scores) of the constant predictor on ``split`` for every super-network of the grid that records it."""
    for folder in supernet_folders(root):
        path = folder / METRICS_FILE
        scores = _read_json(path).get("constant", {}).get(split) if path.is_file() else None
        if scores:
            yield folder.parts[-5], scores


def _mean_per_name(pairs: Iterable[tuple[str, float]]) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    for name, value in pairs:
        values.setdefault(name, []).append(float(value))
    return {name: float(np.mean(found)) for name, found in values.items()}


def constant_predictor(root: Path, secondary: Sequence[tuple[str, str]] = ()) -> dict[str, float]:
    """Per task (and secondary metric): the constant predictor's test metric, from the super-networks' metrics."""
    return _mean_per_name(pair for task, scores in _constant_scores(root, "test")
                          for pair in _metric_tasks(task, scores, secondary).items())


def constant_valid_errors(root: Path) -> dict[str, float]:
    """Per task: the constant predictor's validation error (the searches' objective), from the super-networks'
    metrics; the error every sub-network that learnt nothing has."""
    return _mean_per_name((task, scores.get("error", 1.0 - float(scores["main"])))
                          for task, scores in _constant_scores(root, "valid"))


def supernet_runs(root: Path) -> pd.DataFrame:
    """One row per super-network: its factors and training seconds (timing.json)."""
    records = []
    for folder in supernet_folders(root):
        task, model, space, strategy = folder.parts[-5:-1]
        timing = folder / TIMING_FILE
        records.append({
            "task": task, "model": model, "search_space": space, "strategy": strategy, "seed": _seed(folder),
            "seconds": float(_read_json(timing)["seconds"]) if timing.is_file() else float("nan"),
        })
    return pd.DataFrame(records, columns=["task", "model", "search_space", "strategy", "seed", "seconds"])


def step_timings(root: Path) -> pd.DataFrame:
    """One row per finished step with a timing.json: its kind of folder, path below the root and seconds."""
    records = []
    for path in sorted(root.rglob(TIMING_FILE)):
        relative = path.parent.relative_to(root)
        if relative.parts and relative.parts[0] in STEP_FOLDERS:
            timing = _read_json(path)
            records.append({"step": relative.parts[0], "task": relative.parts[1] if len(relative.parts) > 1 else "",
                            "path": str(relative), "seconds": float(timing["seconds"]), "note": timing.get("note", "")})
    return pd.DataFrame(records, columns=["step", "task", "path", "seconds", "note"])


def first_time_reaching(trajectory: pd.DataFrame, target: float, tolerance: float = 1e-9) -> float:
    """The earliest runtime at which a run's hypervolume reaches ``target`` (inf if it never does)."""
    reached = trajectory[trajectory["hypervolume"] >= target - tolerance]
    return float(reached[TIME].min()) if not reached.empty else float("inf")


def speed_ratios(trajectories: pd.DataFrame, supernets: pd.DataFrame) -> pd.DataFrame:
    """Per task, seed, standard-NAS run and weight-sharing run of that task and seed (same search space): the
    seconds standard NAS needed to reach its final hypervolume, and those weight-sharing NAS needed to reach it,
    with its super-network's training (``ws_total_s``) and without (``ws_search_s``); inf where never reached."""
    records = []
    trained = {(r.task, r.search_space, r.strategy, r.seed): r.seconds for r in supernets.itertuples()}
    for (task, seed), runs in trajectories.groupby(["task", "seed"], sort=True):
        standard = runs[runs["kind"] == STANDARD]
        shared = runs[runs["kind"] == WEIGHT_SHARING]
        for std_id, std in standard.groupby("run_id", sort=True):
            target = float(std["hypervolume"].max())
            std_seconds = first_time_reaching(std, target)
            space = str(std["search_space"].iloc[0])
            for ws_id, ws in shared[shared["search_space"] == space].groupby("run_id", sort=True):
                strategy = str(ws["strategy"].iloc[0])
                search = first_time_reaching(ws, target)
                offset = trained.get((task, space, strategy, seed), float("nan"))
                records.append({
                    "task": task, "seed": seed, "standard": str(std["method"].iloc[0]),
                    "weight_sharing": str(ws["method"].iloc[0]), "target": target, "standard_s": std_seconds,
                    "ws_search_s": search, "supernet_s": offset, "ws_total_s": search + offset,
                })
    return pd.DataFrame(records, columns=["task", "seed", "standard", "weight_sharing", "target", "standard_s",
                                          "ws_search_s", "supernet_s", "ws_total_s"])


def summarize_speed(ratios: pd.DataFrame) -> pd.DataFrame:
    """Per task, standard-NAS searcher and weight-sharing searcher: how many seeds reached the target, and the mean
    (± s.e.) over those of the time ratios weight-sharing / standard, with and without super-network training."""
    ratios = ratios.assign(total_ratio=ratios["ws_total_s"] / ratios["standard_s"],
                           search_ratio=ratios["ws_search_s"] / ratios["standard_s"])
    records = []
    for (task, std, ws), part in ratios.groupby(["task", "standard", "weight_sharing"], sort=True):
        reached = part[np.isfinite(part["ws_search_s"])]
        records.append({
            "task": task, "standard": std, "weight_sharing": ws, "reached": len(reached), "runs": len(part),
            "standard_s": float(part["standard_s"].mean()), "ws_total_s": float(reached["ws_total_s"].mean()),
            "total_ratio": float(reached["total_ratio"].mean()), "total_ratio_se": standard_error(reached["total_ratio"]),
            "search_ratio": float(reached["search_ratio"].mean()),
            "search_ratio_se": standard_error(reached["search_ratio"]),
        })
    return pd.DataFrame(records)


def _seconds(value: float) -> str:
    return format_seconds(value) if np.isfinite(value) else DASH


def _relative_table(summary: pd.DataFrame, constant: Mapping[str, float], references: pd.DataFrame,
                    fractions: Sequence[float]) -> Table:
    tasks = sorted(summary["task"].unique())
    header = ["kind", "method", *(f"{task} {100 * f:.0f}%" for task in tasks for f in fractions)]
    rows = []
    for (kind, method), part in summary.groupby(["kind", "method"], sort=True):
        cells = [Cell(str(kind)), Cell(str(method))]
        for task in tasks:
            for fraction in fractions:
                hit = part[(part["task"] == task) & np.isclose(part["fraction_pruned"], fraction)]
                row = hit.iloc[0] if not hit.empty else None
                text = DASH if row is None else format_mean_se(row["mean"], row["se"], digits=1, scale=100.0)
                cells.append(Cell(text))
        rows.append(cells)
    # the constant predictor, relative to the same references: what "learnt nothing" scores
    reference = references.groupby("task")["reference"].mean()
    cells = [Cell("reference"), Cell("constant predictor")]
    for task in tasks:
        value = constant.get(task, float("nan")) / reference.get(task, float("nan"))
        cells += [Cell(f"{100 * value:.1f}" if np.isfinite(value) else DASH) for _ in fractions]
    rows.append(cells)
    return Table(header, rows)


def _speed_table(speed: pd.DataFrame) -> Table:
    header = ["task", "standard NAS", "weight-sharing", "reached (seeds)", "standard NAS to its final HV",
              "WS incl. super-network", "ratio incl. training", "ratio search only"]
    rows = [[Cell(r.task), Cell(r.standard), Cell(r.weight_sharing), Cell(f"{r.reached}/{r.runs}"),
             Cell(_seconds(r.standard_s)), Cell(_seconds(r.ws_total_s)),
             Cell(format_mean_se(r.total_ratio, r.total_ratio_se, digits=2)),
             Cell(format_mean_se(r.search_ratio, r.search_ratio_se, digits=3))] for r in speed.itertuples()]
    return Table(header, rows)


def _timing_table(timings: pd.DataFrame) -> Table:
    rows = []
    for (step, task), part in timings.groupby(["step", "task"], sort=True):
        rows.append([Cell(step), Cell(task), Cell(str(len(part))), Cell(_seconds(part["seconds"].sum())),
                     Cell(_seconds(part["seconds"].mean()))])
    return Table(["step", "task", "runs", "total", "mean per run"], rows)


def study_section(
    root: Path, frame: pd.DataFrame, trajectories: pd.DataFrame, final: pd.DataFrame, fractions_pruned: Sequence[float],
    size_column: str | None = None, secondary_metrics: Sequence[tuple[str, str]] = (),
    everything: pd.DataFrame | None = None, everything_final: pd.DataFrame | None = None,
    manifest: StudyManifest | None = None, references: pd.DataFrame | None = None,
) -> Section:
    """The study tables of a grid folder (see the module docstring) as one report section. ``frame``,
    ``trajectories`` and ``final`` (every run's last hypervolume) are of the main runs; ``everything`` and
    ``everything_final`` of all runs, the comparisons' included (default: the main ones); ``manifest`` is the
    grid's ``grid.json`` (:func:`plotting.comparisons.read_manifest`), whose comparisons get their tables;
    ``references`` its :func:`finetuned_references` (read from ``root`` when not given)."""
    everything = frame if everything is None else everything
    everything_final = final if everything_final is None else everything_final
    references = finetuned_references(root, secondary_metrics) if references is None else references
    supernets = supernet_runs(root)
    section = Section(f"Study: {root}")
    if not references.empty:
        rows = with_secondary_metrics(frame, secondary_metrics)
        summary = relative_to_finetuned(rows, references, fractions_pruned, size_column)
        section.blocks += [Paragraph(
            "Relative test performance (%) at each fraction pruned, mean ± s.e. over seeds: the best-validation "
            "sub-network within the size, over the test metric of plain fine-tuning with the same task and seed "
            "(finetuned/); TASK (METRIC) columns measure the same chosen sub-networks in a secondary metric. The "
            "constant predictor's row says what a model that learnt nothing scores."),
            _relative_table(summary, constant_predictor(root, secondary_metrics), references, fractions_pruned)]
    speed = speed_ratios(trajectories, supernets)
    if not speed.empty:
        section.blocks += [Paragraph(
            "Time to reach each standard-NAS run's final hypervolume (validation error vs size, normalised per "
            "task as above): standard NAS's own time, and weight-sharing NAS's with its super-network's training "
            "(from supernets/*/timing.json) and without; ratios below 1 mean weight-sharing NAS is faster. Means over "
            "the seeds in which weight-sharing NAS reached the target."), _speed_table(summarize_speed(speed))]
    for comparison in manifest.comparisons if manifest else ():
        section.blocks += comparison_section(comparison, everything, everything_final, references, fractions_pruned,
                                             size_column)
    timings = step_timings(root)
    if not timings.empty:
        notes = sorted(set(timings["note"]) - {""})
        section.blocks += [Paragraph("Wall-clock time of the grid's steps (timing.json of each step)."
                                     + (" Notes: " + "; ".join(notes) if notes else "")), _timing_table(timings)]
    return section
