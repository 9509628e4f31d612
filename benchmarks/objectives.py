"""The objectives both NAS kinds minimise, (validation error, size objective), and a config's cost fields.

The size objective is one of the fraction columns of the results table: ``param_fraction`` (the paper's),
``encoder_param_fraction`` (what other pruning papers report), ``mac_fraction`` (useful for small models
whose embeddings dominate the parameter count, such as MiniLM) or ``latency_fraction`` (predicted latency over the
full model's, from a latency table measured where the model will run: :mod:`search_spaces.latency`). Standard
NAS and weight-sharing search use the same functions here, so a row's cost fields never depend on who produced it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from benchmarks.results import SIZE_OBJECTIVES
from search_spaces import DEFAULT_SEQ_LEN, SearchSpace, SubNetworkCost, cost_of
from search_spaces.latency import LatencyTable
from search_spaces.masks import SubNetworkMasks
from search_spaces.shape import ModelShape

ERROR_METRIC = "valid_error"
DEFAULT_SIZE_OBJECTIVE = "param_fraction"
METRIC_MODE = "min"  # both objectives are minimised



def check_size_objective(name: str) -> str:
    """Return ``name`` if it is a known size objective, else raise a ValueError naming the choices."""
    if name not in SIZE_OBJECTIVES:
        raise ValueError(f"unknown size objective {name!r}; choose from {', '.join(SIZE_OBJECTIVES)}")
    return name


def objective_names(size_objective: str) -> list[str]:
    """The metric names the searchers minimise, in order: validation error, then the size objective."""
    return [ERROR_METRIC, check_size_objective(size_objective)]


@dataclass(frozen=True)
class CostFields:
    """The cost columns of a results row for one sub-network (each size objective is one of them)."""

    params: int
    param_fraction: float
    encoder_param_fraction: float
    macs: float
    mac_fraction: float
    latency_ms: float = math.nan  # predicted, where a latency table was given
    latency_fraction: float = math.nan

    @classmethod
    def from_cost(cls, cost: SubNetworkCost, latency: tuple[float, float] | None = None) -> "CostFields":
        ms, fraction = latency if latency is not None else (math.nan, math.nan)
        return cls(
            params=int(cost.params),
            param_fraction=float(cost.param_fraction),
            encoder_param_fraction=float(cost.encoder_param_fraction),
            macs=float(cost.macs),
            mac_fraction=float(cost.mac_fraction),
            latency_ms=float(ms),
            latency_fraction=float(fraction),
        )

    def size(self, size_objective: str) -> float:
        """The value of ``size_objective`` for this sub-network."""
        value = float(getattr(self, check_size_objective(size_objective)))
        if math.isnan(value):
            raise ValueError(f"size objective {size_objective!r} needs a latency table (--latency-table FILE)")
        return value

    def as_row_fields(self) -> dict[str, Any]:
        """Keyword arguments for :class:`benchmarks.results.ResultRow`."""
        return {
            "params": self.params,
            "param_fraction": self.param_fraction,
            "encoder_param_fraction": self.encoder_param_fraction,
            "macs": self.macs,
            "mac_fraction": self.mac_fraction,
            "latency_ms": self.latency_ms,
            "latency_fraction": self.latency_fraction,
        }


def masks_cost(shape: ModelShape, masks: SubNetworkMasks, seq_len: int = DEFAULT_SEQ_LEN,
               latency: LatencyTable | None = None) -> CostFields:
    """Cost fields of the sub-network ``masks`` (MACs for sequences of ``seq_len`` tokens; predicted latency when a
    ``latency`` table is given)."""
    predicted = None
    if latency is not None:
        predicted = (latency.predict_ms(shape, masks), latency.latency_fraction(shape, masks))
    return CostFields.from_cost(cost_of(shape, masks, seq_len=seq_len), predicted)


def config_cost(space: SearchSpace, config: Mapping[str, Any], seq_len: int = DEFAULT_SEQ_LEN,
                latency: LatencyTable | None = None) -> CostFields:
    """Cost fields of the sub-network a search-space config selects."""
    return masks_cost(space.shape, space.to_masks(config), seq_len=seq_len, latency=latency)


def check_latency_objective(size_objective: str, latency_table: Any) -> None:
    """``latency_fraction`` is predicted from a latency table: refuse it without one."""
    if size_objective == "latency_fraction" and latency_table is None:
        raise ValueError("--size-objective latency_fraction needs --latency-table FILE (measure one with "
                         "plm-nas latency-table)")


def metric_fields(prefix: str, metrics: Mapping[str, float]) -> dict[str, float]:
    """A split's task metrics as flat report fields ``PREFIX_NAME`` (e.g. ``valid_accuracy``), as trials report
    them (scalars only: Syne Tune and Ray Tune pass them on, and journals and checkpoints keep them)."""
    return {f"{prefix}_{name}": float(value) for name, value in metrics.items()}


def metrics_of_fields(fields: Mapping[str, Any], prefix: str, names: Sequence[str]) -> dict[str, float]:
    """The task metrics ``names`` back from :func:`metric_fields` (those present; none from older reports)."""
    return {name: float(fields[f"{prefix}_{name}"]) for name in names if f"{prefix}_{name}" in fields}


def initial_design(space: Any) -> list[dict[str, Any]]:
    """The paper's initial design for every searcher of both NAS kinds: largest, smallest, midpoint."""
    return [space.largest(), space.smallest(), space.midpoint()]
