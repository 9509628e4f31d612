"""Measuring a latency table (:class:`search_spaces.latency.LatencyTable`) and checking its predictions.

:func:`measure_table` times extracted models that isolate each part of the cost model: every block removed
(``fixed``), every layer with ``h`` heads and no FFN (``attention[h]``, per layer), every layer with ``u`` units and
no attention (``ffn(u)`` on a grid, per layer), and the full model. Using every layer, not one, averages the
per-layer cost over the layers and measures it in the context it runs in. All models are timed in interleaved
rounds (so a disturbance spreads over all of them) and each cell keeps the median of its rounds.

:func:`prediction_accuracy` times held-out random sub-networks of several search spaces the same way and
compares them with the table's predictions (Spearman correlation, median absolute error); they are timed in the
same interleaved rounds as the table's cells (:func:`measure_table`'s ``also``).
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from benchmarks.perf.latency import LatencySetting, device_name, synthetic_batch, torch_threads
from search_spaces import get_search_space
from search_spaces.latency import LatencySettingRecord, LatencyTable, shape_record
from search_spaces.masks import SubNetworkMasks
from search_spaces.shape import ModelShape
from supernet.extract import extract_sub_network
from supernet.loading import model_shape
from supernet.precision import Precision

DEFAULT_UNIT_STEP = 32
ACCURACY_SPACES = ("small", "medium", "layer", "large")


def uniform_masks(shape: ModelShape, heads: int, units: int) -> SubNetworkMasks:
    """Every layer keeps its first ``heads`` heads and first ``units`` units."""
    head_row = torch.arange(shape.num_heads) < heads
    unit_row = torch.arange(shape.num_units) < units
    return SubNetworkMasks(heads=head_row.expand(shape.num_layers, -1).clone(),
                           units=unit_row.expand(shape.num_layers, -1).clone())


def unit_grid(num_units: int, step: int) -> list[int]:
    """Unit counts ``step, 2 step, ...`` up to and including ``num_units``."""
    if step < 1:
        raise ValueError(f"the unit step must be at least 1, got {step}")
    grid = list(range(step, num_units, step))
    return [*grid, num_units]


@torch.inference_mode()
def median_ms(runners: Mapping[str, Callable[[], object]], setting: LatencySetting,
              sync: Callable[[], None] = lambda: None) -> dict[str, float]:
    """Median milliseconds of each runner over ``setting.repeats`` interleaved rounds after ``setting.warmup``,
    on the setting's clock."""
    clock = setting.timer
    times: dict[str, list[float]] = {key: [] for key in runners}
    for round_index in range(setting.warmup + setting.repeats):
        for key, run in runners.items():
            sync()
            start = clock()
            run()
            sync()
            if round_index >= setting.warmup:
                times[key].append(1000.0 * (clock() - start))
    return {key: statistics.median(values) for key, values in times.items()}


def _runner(model: torch.nn.Module, batch: Mapping[str, torch.Tensor], precision: Precision) -> Callable[[], object]:
    def run() -> object:
        with precision.autocast(model):
            return model(**batch)

    return run


def _sync(device: torch.device) -> Callable[[], None]:
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)


def time_masks(model: torch.nn.Module, named_masks: Mapping[str, SubNetworkMasks | None], setting: LatencySetting
               ) -> dict[str, float]:
    """Median milliseconds of each named sub-network's *extracted* model (None: the model itself)."""
    device = next(model.parameters()).device
    shape = model_shape(model)
    batch = synthetic_batch(shape.vocab_size, setting.batch_size, setting.seq_len, device)
    precision = Precision(setting.precision, device.type)
    runners = {}
    for name, masks in named_masks.items():
        extracted = model if masks is None else extract_sub_network(model, masks).eval()
        runners[name] = _runner(extracted, batch, precision)
    with torch_threads(setting.threads):
        return median_ms(runners, setting, _sync(device))


def measure_table(model: torch.nn.Module, setting: LatencySetting, model_name: str,
                  unit_step: int = DEFAULT_UNIT_STEP, also: Mapping[str, SubNetworkMasks] | None = None
                  ) -> tuple[LatencyTable, dict[str, float]]:
    """Measure the latency table of ``model``'s shape in ``setting``; ``also`` (named sub-networks, e.g. held-out ones
    to check the table on) are timed in the same interleaved rounds, so a change of load on the machine affects
    the table and them alike. Returns the table and the milliseconds of ``also``."""
    model = model.eval()
    shape = model_shape(model)
    layers = shape.num_layers
    units = unit_grid(shape.num_units, unit_step)
    cells: dict[str, SubNetworkMasks | None] = {"fixed": uniform_masks(shape, 0, 0), "full": None}
    cells.update({f"heads{h}": uniform_masks(shape, h, 0) for h in range(1, shape.num_heads + 1)})
    cells.update({f"units{u}": uniform_masks(shape, 0, u) for u in units})
    extra = {f"also:{name}": masks for name, masks in (also or {}).items()}
    started = time.perf_counter()
    ms = time_masks(model, {**cells, **extra}, setting)
    fixed = ms["fixed"]
    device = next(model.parameters()).device
    record = LatencySettingRecord(
        device=device.type, device_name=device_name(device),
        threads=setting.threads if setting.threads is not None else torch.get_num_threads(),
        precision=setting.precision, batch_size=setting.batch_size, seq_len=setting.seq_len,
        torch=str(torch.__version__), measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        repeats=setting.repeats, warmup=setting.warmup, clock=setting.clock)
    table = LatencyTable(
        model=model_name, shape=shape_record(shape), setting=record, fixed_ms=fixed,
        attention_ms={h: max(0.0, (ms[f"heads{h}"] - fixed) / layers) for h in range(1, shape.num_heads + 1)},
        ffn_units=tuple(units), ffn_ms=tuple(max(0.0, (ms[f"units{u}"] - fixed) / layers) for u in units),
        full_ms=ms["full"],
        notes={"unit_step": unit_step, "seconds_to_measure": round(time.perf_counter() - started, 1),
               "cells": len(cells)},
    )
    return table, {name[len("also:"):]: value for name, value in ms.items() if name.startswith("also:")}


# ------------------------------------------------------------------------------------------------- accuracy


@dataclass(frozen=True)
class Held:
    """A held-out sub-network: its space, index and masks."""

    space: str
    index: int
    masks: SubNetworkMasks


def held_out_sub_networks(shape: ModelShape, count: int, seed: int,
                          spaces: Sequence[str] = ACCURACY_SPACES) -> list[Held]:
    """``count`` random sub-networks drawn in turn from ``spaces`` (each space's own sampling), seeded; never the
    empty network (it has nothing to predict beyond ``fixed``)."""
    rng = np.random.default_rng(seed)
    found: list[Held] = []
    while len(found) < count:
        name = spaces[len(found) % len(spaces)]
        space = get_search_space(name, shape)
        masks = space.to_masks(space.sample(rng))
        if masks.heads.any() or masks.units.any():
            found.append(Held(name, len(found), masks))
    return found


def held_out_masks(model: torch.nn.Module, count: int, seed: int = 1) -> dict[str, SubNetworkMasks]:
    """``count`` held-out random sub-networks by name (``SPACE-INDEX``)."""
    return {f"{h.space}-{h.index}": h.masks for h in held_out_sub_networks(model_shape(model), count, seed)}


def prediction_accuracy(model: torch.nn.Module, table: LatencyTable, measured: Mapping[str, float],
                        held: Mapping[str, SubNetworkMasks]) -> pd.DataFrame:
    """Measured and predicted milliseconds of the held-out sub-networks ``held`` (one row each)."""
    shape = model_shape(model)
    records = []
    for name, masks in held.items():
        predicted = table.predict_ms(shape, masks)
        records.append({"sub_network": name, "space": name.rsplit("-", 1)[0], "heads": sum(masks.heads_per_layer),
                        "units": sum(masks.units_per_layer), "measured_ms": measured[name],
                        "predicted_ms": predicted,
                        "relative_error": (predicted - measured[name]) / measured[name]})
    return pd.DataFrame.from_records(records)


def accuracy_summary(frame: pd.DataFrame) -> dict[str, float]:
    """Spearman correlation of predicted and measured latency, and the median absolute relative error."""
    from scipy.stats import spearmanr

    return {"sub_networks": int(len(frame)),
            "spearman": float(spearmanr(frame["predicted_ms"], frame["measured_ms"]).statistic),
            "median_absolute_error": float(frame["relative_error"].abs().median()),
            "max_absolute_error": float(frame["relative_error"].abs().max())}
