"""Predicted latency of a sub-network from a table measured once per model shape and setting.

A sub-network's extracted model runs the embeddings and the task head whatever it keeps, and per layer an
attention block with ``h`` heads (none when ``h = 0``) and an FFN block with ``u`` units (none when ``u = 0``).
Its latency is modelled as the sum of what these parts take when measured alone in the same setting (device,
threads, precision, batch size and sequence length):

    latency = fixed + sum over layers of attention[h_l] + ffn(u_l)

``fixed`` is the model with every block removed (embeddings, task head and the per-layer overhead that remains);
``attention[h]`` is measured for every head count, ``ffn(u)`` on a grid of unit counts and interpolated linearly
between grid points. Only the number of heads and units per layer matter, which is what every search space
(``small``, ``layer``, ``medium``, ``large``...) decides. ``plm-nas latency-table`` measures the table
(:mod:`benchmarks.perf.latency_table`); this module only reads it, so search and reports need no timing.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from search_spaces.masks import SubNetworkMasks
from search_spaces.shape import ModelShape

TABLE_FORMAT = 1
# What must agree between a table and a model it predicts for (everything that changes a block's cost).
SHAPE_FIELDS = ("model_type", "num_layers", "num_heads", "head_dim", "hidden_size", "intermediate_size", "head")


@dataclass(frozen=True)
class LatencySettingRecord:
    """Where a table was measured: enough for a reader to know which deployment it predicts."""

    device: str
    device_name: str
    threads: int
    precision: str
    batch_size: int
    seq_len: int
    torch: str
    measured_at: str
    repeats: int
    warmup: int
    clock: str = "wall"


@dataclass(frozen=True)
class LatencyTable:
    """Measured costs (milliseconds) of a model shape's parts in one setting; see the module docstring."""

    model: str
    shape: dict[str, Any]
    setting: LatencySettingRecord
    fixed_ms: float
    attention_ms: dict[int, float]  # heads kept in a layer (1..H) -> ms of that attention block
    ffn_units: tuple[int, ...]  # grid of unit counts (increasing, ending at U)
    ffn_ms: tuple[float, ...]  # ms of an FFN block with that many units
    full_ms: float  # the measured full model, for reference (prediction uses the parts)
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        heads = int(self.shape["num_heads"])
        if sorted(self.attention_ms) != list(range(1, heads + 1)):
            raise ValueError(f"a latency table needs the attention cost of 1..{heads} heads, got "
                             f"{sorted(self.attention_ms)}")
        units = np.asarray(self.ffn_units)
        if len(units) != len(self.ffn_ms) or len(units) < 1 or np.any(np.diff(units) <= 0):
            raise ValueError("a latency table's FFN grid must be increasing unit counts with one cost each")
        if units[0] < 1 or units[-1] != int(self.shape["intermediate_size"]):
            raise ValueError(f"a latency table's FFN grid must run from >= 1 to {self.shape['intermediate_size']} "
                             f"units, got {units[0]}..{units[-1]}")

    # ------------------------------------------------------------------------------------------ prediction

    def check_shape(self, shape: ModelShape) -> None:
        """Refuse to predict for a model of another shape than the one the table was measured for."""
        differs = {name: (self.shape.get(name), getattr(shape, name)) for name in SHAPE_FIELDS
                   if self.shape.get(name) != getattr(shape, name)}
        if differs:
            detail = ", ".join(f"{name} {table} in the table, {model} in the model"
                               for name, (table, model) in differs.items())
            raise ValueError(f"this latency table was measured for another model shape ({detail}); measure one for "
                             f"this model with plm-nas latency-table")

    def ffn(self, units: int) -> float:
        """Milliseconds of an FFN block with ``units`` units (0: none), interpolated on the grid."""
        if units <= 0:
            return 0.0
        grid = np.asarray(self.ffn_units, dtype=float)
        costs = np.asarray(self.ffn_ms, dtype=float)
        if units < grid[0]:  # below the grid: scale the first point's cost down linearly from zero units
            return float(costs[0] * units / grid[0])
        return float(np.interp(units, grid, costs))

    def attention(self, heads: int) -> float:
        return 0.0 if heads <= 0 else float(self.attention_ms[int(heads)])

    def predict_counts(self, heads_per_layer: list[int], units_per_layer: list[int]) -> float:
        """Predicted milliseconds of the sub-network keeping these heads and units per layer."""
        return self.fixed_ms + sum(self.attention(h) + self.ffn(u) for h, u in zip(heads_per_layer, units_per_layer))

    def predict_ms(self, shape: ModelShape, masks: SubNetworkMasks | None) -> float:
        """Predicted milliseconds of the sub-network ``masks`` (None: the full model) of a model of ``shape``."""
        self.check_shape(shape)
        if masks is None:
            masks = SubNetworkMasks.full(shape)
        return self.predict_counts(masks.heads_per_layer, masks.units_per_layer)

    def full_prediction_ms(self) -> float:
        layers = int(self.shape["num_layers"])
        return self.predict_counts([int(self.shape["num_heads"])] * layers, [int(self.shape["intermediate_size"])] * layers)

    def latency_fraction(self, shape: ModelShape, masks: SubNetworkMasks | None) -> float:
        """Predicted latency over the full model's predicted latency (same table)."""
        return self.predict_ms(shape, masks) / self.full_prediction_ms()

    # ---------------------------------------------------------------------------------------------- files

    def to_dict(self) -> dict[str, Any]:
        return {"format": TABLE_FORMAT, "model": self.model, "shape": dict(self.shape),
                "setting": asdict(self.setting), "fixed_ms": self.fixed_ms,
                "attention_ms": {str(h): ms for h, ms in sorted(self.attention_ms.items())},
                "ffn_units": list(self.ffn_units), "ffn_ms": list(self.ffn_ms), "full_ms": self.full_ms,
                "notes": dict(self.notes)}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> "LatencyTable":
        if record.get("format") != TABLE_FORMAT:
            raise ValueError(f"not a latency table of format {TABLE_FORMAT} (format {record.get('format')!r})")
        return cls(model=str(record["model"]), shape=dict(record["shape"]),
                   setting=LatencySettingRecord(**record["setting"]), fixed_ms=float(record["fixed_ms"]),
                   attention_ms={int(h): float(ms) for h, ms in record["attention_ms"].items()},
                   ffn_units=tuple(int(u) for u in record["ffn_units"]),
                   ffn_ms=tuple(float(ms) for ms in record["ffn_ms"]), full_ms=float(record["full_ms"]),
                   notes=dict(record.get("notes") or {}))

    @classmethod
    def read(cls, path: str | Path) -> "LatencyTable":
        """Read a table file, with errors that name it."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no latency table at {path}; measure one with plm-nas latency-table")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path} is not a valid latency table: {err}") from err

    def describe(self) -> str:
        s = self.setting
        return (f"{s.device} ({s.device_name}), {s.threads} thread(s), {s.precision}, batch {s.batch_size} x "
                f"{s.seq_len} tokens, {s.clock} clock, torch {s.torch}, measured {s.measured_at}")


def shape_record(shape: ModelShape) -> dict[str, Any]:
    """What a table records of the model shape it was measured for."""
    return {name: getattr(shape, name) for name in SHAPE_FIELDS}
