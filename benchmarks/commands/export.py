"""``plm-nas export``: chosen sub-networks of a results table as standalone models, each with a small JSON.

Picks (on the rows' validation error and their size objective; for standard NAS on each trial's
best-validation epoch):

* ``pareto``: every sub-network on the run's Pareto front;
* ``smallest-within ERR``: the smallest Pareto sub-network whose validation error is <= ERR, which is also the
  smallest of all rows within that error;
* ``largest-within SIZE``: the largest Pareto sub-network whose size objective is <= SIZE, which is also the
  most accurate (on validation) of all rows within that size.

Weight-sharing rows are extracted from the super-network (``--supernet``, the ``train-supernet`` output) with
:func:`supernet.extract.extract_sub_network`. Standard-NAS trials fine-tune their own copy of each
sub-network, and those weights exist only if the trials saved them (``plm-nas nas --save-models`` keeps each
trial's best epoch in ``syne-tune/TRIAL/best_model``); export then copies that folder.

Each model goes to ``--out/NAME/`` (loadable with :func:`supernet.extract.load_extracted`, or with plain
``transformers`` when the sub-network keeps every head of uniform layers) with ``subnetwork.json``: the
config, the masks, the cost fields and the errors of its row. ``--out/export.json`` lists all of them.

With ``--latency`` every exported model is timed where it will run (``--device``, ``--threads``, ``--precision``,
one synthetic batch of ``--latency-batch-size`` x ``--seq-len`` tokens; median of ``--latency-repeats`` passes),
beside the full network in the same setting, and ``--out/latency.csv`` holds one row per model:
``measured_latency_ms`` and ``measured_latency_fraction`` (over the full network's) beside its size and errors.
``--latency-table FILE`` times them in the table's setting instead and writes the table's prediction beside each
measurement (``predicted_latency_ms``, ``predicted_latency_fraction``).
"""
from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import pandas as pd

from benchmarks.artifacts import BEST_MODEL_DIR, TRIAL_INFO_FILE, SuperNetSource
from benchmarks.commands.options import (
    DEVICES,
    add_precision_argument,
    check_option_ranges,
    read_latency_table,
    resolve_precision_option,
)
from benchmarks.files import write_json_atomic
from benchmarks.results import (
    METRICS_COLUMNS,
    RESULTS_FILE,
    SIZE_OBJECTIVES,
    best_epoch_rows,
    mark_pareto,
    parse_metrics,
    read_results,
    write_atomic,
)

if TYPE_CHECKING:  # torch loads only when a model is timed, so --help answers fast
    from benchmarks.perf.latency import LatencySetting
    from search_spaces.latency import LatencyTable
    from search_spaces.masks import SubNetworkMasks
    from search_spaces.shape import ModelShape

SUBNETWORK_FILE = "subnetwork.json"
EXPORT_FILE = "export.json"
LATENCY_FILE = "latency.csv"
ROW_FIELDS = (
    "run_id", "kind", "method", "searcher", "search_space", "strategy", "task", "model", "seed", "valid_error",
    "test_error", "params", "param_fraction", "encoder_param_fraction", "macs", "mac_fraction", "size_objective",
    "epoch", "runtime_s", "precision",
)


# ---------------------------------------------------------------------------------------------- picking


def _pareto(rows: pd.DataFrame, size: str, threshold: float | None) -> pd.DataFrame:
    return rows[rows["pareto"]]


def _smallest_within(rows: pd.DataFrame, size: str, threshold: float | None) -> pd.DataFrame:
    front = rows[rows["pareto"] & (rows["valid_error"] <= threshold)]
    return front.sort_values([size, "valid_error"], kind="stable").head(1)


def _largest_within(rows: pd.DataFrame, size: str, threshold: float | None) -> pd.DataFrame:
    front = rows[rows["pareto"] & (rows[size] <= threshold)]
    return front.sort_values([size, "valid_error"], ascending=[False, True], kind="stable").head(1)


@dataclass(frozen=True)
class PickRule:
    """How to choose rows; ``needs`` names the threshold it takes (``None``: none)."""

    select: Callable[[pd.DataFrame, str, float | None], pd.DataFrame]
    needs: str | None = None


PICKS: dict[str, PickRule] = {
    "pareto": PickRule(_pareto),
    "smallest-within": PickRule(_smallest_within, needs="a maximum validation error"),
    "largest-within": PickRule(_largest_within, needs="a maximum size (in units of the size objective)"),
}


@dataclass(frozen=True)
class Pick:
    """A parsed ``--pick``: the rule's name and its threshold."""

    name: str
    threshold: float | None = None

    @classmethod
    def parse(cls, tokens: Sequence[str]) -> "Pick":
        """``["pareto"]``, ``["smallest-within", "0.3"]`` or ``["largest-within", "0.5"]``."""
        if not tokens or tokens[0] not in PICKS:
            raise ValueError(f"unknown pick {' '.join(tokens)!r}; choose from pareto, smallest-within ERR, "
                             f"largest-within SIZE")
        name, rest = tokens[0], list(tokens[1:])
        rule = PICKS[name]
        if rule.needs is None:
            if rest:
                raise ValueError(f"--pick {name} takes no value, got {' '.join(rest)}")
            return cls(name)
        if len(rest) != 1:
            raise ValueError(f"--pick {name} takes one value: {rule.needs}")
        try:
            threshold = float(rest[0])
        except ValueError as err:
            raise ValueError(f"--pick {name} takes a number ({rule.needs}), got {rest[0]!r}") from err
        return cls(name, threshold)


def candidate_rows(frame: pd.DataFrame, run_id: str | None = None) -> pd.DataFrame:
    """The rows of one run, reduced to each trial's best epoch, with ``pareto`` recomputed on them."""
    runs = sorted(frame["run_id"].astype(str).unique())
    if run_id is not None:
        if run_id not in runs:
            raise ValueError(f"no run {run_id!r} in the results; runs: {', '.join(runs)}")
        frame = frame[frame["run_id"].astype(str) == run_id]
    elif len(runs) != 1:
        raise ValueError(f"the results hold {len(runs)} runs; choose one with --run-id: {', '.join(runs)}")
    rows = best_epoch_rows(frame)
    rows = rows[np.isfinite(rows["valid_error"].astype(float))]
    return mark_pareto(rows)


def pick_rows(frame: pd.DataFrame, pick: Pick, run_id: str | None = None) -> pd.DataFrame:
    """The rows ``pick`` chooses from one run, smallest first."""
    rows = candidate_rows(frame, run_id)
    if rows.empty:
        raise ValueError("the results hold no evaluated sub-network to export")
    size = str(rows["size_objective"].iloc[0])
    chosen = PICKS[pick.name].select(rows, size, pick.threshold)
    if chosen.empty:
        best = rows.sort_values(size).iloc[0]
        raise ValueError(
            f"no sub-network satisfies --pick {pick.name} {pick.threshold:g}: validation errors range "
            f"{rows['valid_error'].min():.4f}..{rows['valid_error'].max():.4f}, {size} "
            f"{rows[size].min():.4f}..{rows[size].max():.4f} (smallest has error {best['valid_error']:.4f})"
        )
    return chosen.sort_values([size, "valid_error"], kind="stable")


# ------------------------------------------------------------------------------------------- exporting


def row_record(row: pd.Series) -> dict[str, Any]:
    """The JSON of one exported sub-network: its config and the fields of its results row."""
    record = {name: _jsonable(row[name]) for name in ROW_FIELDS if name in row.index}
    for name in METRICS_COLUMNS:  # every task metric on each split, {} where not scored
        record[name] = parse_metrics(row.get(name))
    record["config"] = json.loads(row["config"])
    return record


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def model_name(rank: int, row: pd.Series) -> str:
    return f"subnet-{rank:02d}-params{int(row['params'])}"


def check_exportable(row: pd.Series, source: SuperNetSource | None, saved: dict[tuple[str, int], Path]) -> None:
    """Refuse a row whose config is not JSON, does not fit the super-network's search space or task, or (standard
    NAS) has no saved model, before anything is written."""
    from search_spaces import get_search_space

    try:
        config = json.loads(row["config"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"the config of the row with {int(row['params']):,} parameters is not valid JSON ({err}): "
                         "the results file was edited; restore it") from err
    if row["kind"] == "weight-sharing":
        if str(row["task"]) != str(source.info["task"]):
            raise ValueError(f"row of task {row['task']!r} cannot come from a super-network of task "
                             f"{source.info['task']!r}")
        get_search_space(str(row["search_space"]), source.shape).to_masks(config)
    else:
        saved_model_of(row, saved)


def export_weight_sharing(row: pd.Series, source: SuperNetSource, target: Path) -> dict[str, Any]:
    """Extract the row's sub-network from the super-network into ``target``."""
    from search_spaces import get_search_space
    from supernet.extract import extract_sub_network, save_extracted

    if str(row["task"]) != str(source.info["task"]):
        raise ValueError(f"row of task {row['task']!r} cannot come from a super-network of task {source.info['task']!r}")
    space = get_search_space(str(row["search_space"]), source.shape)
    masks = space.to_masks(json.loads(row["config"]))
    model = extract_sub_network(source.model, masks)
    params = sum(p.numel() for p in model.parameters())
    if params != int(row["params"]):
        raise ValueError(
            f"the extracted model has {params:,} parameters but the row says {int(row['params']):,}: "
            f"the results do not belong to the super-network in {source.folder}"
        )
    save_extracted(model, target, tokenizer=source.tokenizer, masks=masks)
    return {**row_record(row), "masks": masks.to_dict(), "source": str(source.folder)}


def saved_trial_models(root: Path) -> dict[tuple[str, int], Path]:
    """(config key, epoch) -> folder of every best-epoch model saved by standard-NAS trials below ``root``."""
    from baselines.searchers.ask_tell import config_key  # syne_tune loads only when needed

    found: dict[tuple[str, int], Path] = {}
    for info_path in sorted(root.rglob(f"{BEST_MODEL_DIR}/{TRIAL_INFO_FILE}")):
        info = json.loads(info_path.read_text())
        found[(config_key(info["config"]), int(info["epoch"]))] = info_path.parent
    return found


def saved_model_of(row: pd.Series, saved: dict[tuple[str, int], Path]) -> Path:
    """The folder of the model a standard-NAS trial saved for the row's config and epoch."""
    from baselines.searchers.ask_tell import config_key  # syne_tune loads only when needed

    folder = saved.get((config_key(json.loads(row["config"])), int(row["epoch"])))
    if folder is None:
        raise ValueError(
            "standard NAS fine-tunes every sub-network separately, and its weights are kept only when the "
            "trials saved them: run `plm-nas nas --save-models` to keep each trial's best epoch, then export "
            f"again (no saved model for the trial of epoch {int(row['epoch'])} with config {row['config'][:80]}...)"
        )
    return folder


def export_standard(row: pd.Series, saved: dict[tuple[str, int], Path], target: Path) -> dict[str, Any]:
    """Copy the model a standard-NAS trial saved for the row's config and epoch into ``target``."""
    from supernet.extract import load_extracted_masks

    folder = saved_model_of(row, saved)
    shutil.copytree(folder, target, dirs_exist_ok=True)
    masks = load_extracted_masks(target)
    return {**row_record(row), "masks": masks.to_dict() if masks is not None else None, "source": str(folder)}


def export(
    frame: pd.DataFrame,
    pick: Pick,
    out: Path,
    supernet: str | Path | None = None,
    results_root: Path | None = None,
    run_id: str | None = None,
    device: str = "cpu",
    latency: LatencySetting | None = None,
    latency_table: LatencyTable | None = None,
) -> list[dict[str, Any]]:
    """Export the rows ``pick`` chooses into ``out``; returns the records written to ``export.json``.

    With ``latency`` each exported model is timed in that setting (and the full network beside it)."""
    chosen = pick_rows(frame, pick, run_id)
    kinds = set(chosen["kind"].astype(str))
    if kinds - {"weight-sharing", "standard"}:
        raise ValueError(f"only NAS results can be exported; these rows are of kind {sorted(kinds)}")
    source = None
    if "weight-sharing" in kinds:
        if supernet is None:
            raise ValueError("weight-sharing rows are extracted from their super-network: pass --supernet DIR")
        source = SuperNetSource.load(supernet, device=device)
    saved = saved_trial_models(results_root) if "standard" in kinds and results_root is not None else {}
    for _, row in chosen.iterrows():  # a refused row refuses the export before out/ is made
        check_exportable(row, source, saved)
    out.mkdir(parents=True, exist_ok=True)
    full_ms = full_network_latency(source, chosen, latency, device)
    records = []
    for rank, (_, row) in enumerate(chosen.iterrows()):
        target = out / model_name(rank, row)
        if row["kind"] == "weight-sharing":
            record = export_weight_sharing(row, source, target)
        else:
            record = export_standard(row, saved, target)
        if latency is not None:
            record.update(measured_latency(target, latency, device, full_ms))
        if latency_table is not None and record.get("masks") is not None:
            from search_spaces.masks import SubNetworkMasks

            shape = source.shape if source is not None else base_shape(str(row["model"]))
            record.update(predicted_latency(latency_table, shape, SubNetworkMasks.from_dict(record["masks"])))
        write_json_atomic(record, target / SUBNETWORK_FILE)
        records.append({"name": target.name, **{k: v for k, v in record.items() if k != "masks"}})
        print(f"{target.name}: {int(row['params']):,} parameters, validation error {row['valid_error']:.4f}",
              flush=True)
    summary: dict[str, Any] = {"pick": {"name": pick.name, "threshold": pick.threshold}, "models": records}
    if latency is not None:
        from benchmarks.perf.latency import device_name

        summary["latency_setting"] = {**asdict(latency), "device_name": device_name(device),
                                      "torch": torch_version(), "full_network_ms": full_ms}
        if latency_table is not None:
            summary["latency_table"] = {"setting": asdict(latency_table.setting), "model": latency_table.model,
                                        "full_network_predicted_ms": latency_table.full_prediction_ms()}
        write_atomic(latency_frame(records), out / LATENCY_FILE)
    write_json_atomic(summary, out / EXPORT_FILE)
    return records


def torch_version() -> str:
    import torch

    return str(torch.__version__)


def full_network_latency(source: SuperNetSource | None, chosen: pd.DataFrame, latency: LatencySetting | None,
                         device: str) -> float | None:
    """The full network's latency in ``latency``'s setting: the super-network's model as it is, or for standard
    NAS the pre-trained model its trials started from (None when neither can be loaded here)."""
    if latency is None:
        return None
    from benchmarks.perf.latency import model_latency_ms

    if source is not None:
        return model_latency_ms(source.model.eval(), latency)
    from supernet.loading import load_model

    try:
        model = load_model(str(chosen["model"].iloc[0]), device=device).eval()
    except (OSError, ValueError):
        return None
    return model_latency_ms(model, latency)


def base_shape(model: str) -> ModelShape:
    """The shape of the pre-trained model a standard-NAS row fine-tuned its sub-network from."""
    from search_spaces.shape import ModelShape
    from supernet.loading import load_config

    return ModelShape.from_config(load_config(model))


def predicted_latency(table: LatencyTable, shape: ModelShape, masks: SubNetworkMasks) -> dict[str, float]:
    """The table's prediction for the sub-network ``masks`` of a model of ``shape`` (refused for another shape)."""
    return {"predicted_latency_ms": table.predict_ms(shape, masks),
            "predicted_latency_fraction": table.latency_fraction(shape, masks)}


def measured_latency(target: Path, latency: LatencySetting, device: str, full_ms: float | None) -> dict[str, Any]:
    """The exported model in ``target`` timed in ``latency``'s setting, and its fraction of the full network's."""
    from benchmarks.perf.latency import model_latency_ms
    from supernet.extract import load_extracted
    from supernet.loading import resolve_device

    model = load_extracted(target, device=resolve_device(device)).eval()
    ms = model_latency_ms(model, latency)
    return {"measured_latency_ms": ms, "measured_latency_fraction": ms / full_ms if full_ms else None}


LATENCY_COLUMNS = ("name", "params", "param_fraction", "mac_fraction", "valid_error", "test_error",
                   "measured_latency_ms", "measured_latency_fraction", "predicted_latency_ms",
                   "predicted_latency_fraction")


def latency_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per exported model: its size, errors and measured latency, largest first."""
    frame = pd.DataFrame.from_records([{key: record.get(key) for key in LATENCY_COLUMNS} for record in records],
                                      columns=list(LATENCY_COLUMNS))
    return frame.sort_values("mac_fraction", ascending=False, kind="stable", ignore_index=True)


# ------------------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", required=True, type=Path, help=f"a {RESULTS_FILE} or the run folder holding it")
    parser.add_argument("--pick", nargs="+", default=["pareto"], metavar="RULE",
                        help="pareto | smallest-within ERR | largest-within SIZE (default: pareto)")
    parser.add_argument("--supernet", default=None, type=Path,
                        help="train-supernet output folder (needed for weight-sharing results)")
    parser.add_argument("--out", required=True, type=Path, help="folder for the exported models")
    parser.add_argument("--run-id", default=None, help="the run to export when the results hold several")
    parser.add_argument("--device", default="cpu", choices=DEVICES, help="device to load the super-network on")
    timing = parser.add_argument_group("latency of the exported models (--latency)")
    timing.add_argument("--latency", action="store_true",
                        help=f"time every exported model and the full network; writes {LATENCY_FILE}")
    timing.add_argument("--latency-batch-size", type=int, default=1, help="sequences per timed batch (default 1)")
    timing.add_argument("--seq-len", type=int, default=128, help="tokens per sequence (default 128)")
    timing.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    timing.add_argument("--latency-repeats", type=int, default=10, help="timed passes; the median counts (default 10)")
    add_precision_argument(timing, "timed forward passes")
    timing.add_argument("--latency-table", type=Path, default=None,
                        help="time in this latency table's setting (batch, length, threads, precision, device) and "
                             "write its prediction beside each measurement (implies --latency)")


@dataclass(frozen=True)
class ExportSettings:
    """Everything ``plm-nas export`` does, parsed once from its options."""

    results: Path
    pick: Pick
    out: Path
    supernet: Path | None = None
    run_id: str | None = None
    device: str = "cpu"
    latency: LatencySetting | None = None
    latency_table: LatencyTable | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "ExportSettings":
        latency = table = None
        if args.latency_table is not None:
            from benchmarks.perf.latency import LatencySetting

            table = read_latency_table(args.latency_table)
            s = table.setting
            latency = LatencySetting(batch_size=s.batch_size, seq_len=s.seq_len, threads=s.threads,
                                     precision=s.precision, device=s.device, repeats=s.repeats, warmup=s.warmup,
                                     clock=s.clock)
            print(f"timing in the latency table's setting: {table.describe()}", flush=True)
        elif args.latency:
            from benchmarks.perf.latency import LatencySetting

            precision = resolve_precision_option(args.precision, args.device).name
            latency = LatencySetting(batch_size=args.latency_batch_size, seq_len=args.seq_len, threads=args.threads,
                                     precision=precision, device=args.device, repeats=args.latency_repeats)
        return cls(results=Path(args.results), pick=Pick.parse(args.pick), out=Path(args.out), supernet=args.supernet,
                   run_id=args.run_id, device=latency.device if latency is not None else args.device,
                   latency=latency, latency_table=table)


def run(args: argparse.Namespace) -> int:
    check_option_ranges(args)
    settings = ExportSettings.from_args(args)
    frame = read_results(settings.results)
    unknown = sorted(set(frame["size_objective"].fillna("").astype(str)) - set(SIZE_OBJECTIVES))
    if unknown:  # pick rules would read another column, or none, as the size
        raise ValueError(f"{settings.results}: rows with size objective(s) {', '.join(map(repr, unknown))}, not one of "
                         f"{', '.join(SIZE_OBJECTIVES)}; the results file was edited: restore it")
    root = settings.results if settings.results.is_dir() else settings.results.parent
    records = export(frame, settings.pick, settings.out, supernet=settings.supernet, results_root=root,
                     run_id=settings.run_id, device=settings.device, latency=settings.latency,
                     latency_table=settings.latency_table)
    print(f"exported {len(records)} sub-network(s) to {settings.out}", flush=True)
    return 0
