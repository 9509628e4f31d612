"""Probe sub-networks: a fixed handful of sub-networks at set encoder-MAC fractions, tracked while training.

A super-network is trained when its sub-networks are good across sizes, not only the full network. The
probes are chosen from the search space deterministically (no sampling), so every epoch, every run and
every strategy tracks the very same sub-networks: the full network, one at 75%, 50% and 25% of the
encoder's MACs, and the space's smallest. At each target the preferred shape is the *uniform* one (every
layer, the same share of heads and units), which searches on MiniLM find best at mid sizes; a space that
cannot express it (``layer``) gets the first ``k`` whole layers instead. Of the candidates the space can
express, the one closest to the target wins (ties: the uniform shape, then fewer heads).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from search_spaces.base import Config, SearchSpace
from search_spaces.cost import cost_of
from search_spaces.masks import SubNetworkMasks
from search_spaces.shape import ModelShape

PROBE_FRACTIONS: tuple[float, ...] = (0.75, 0.5, 0.25)


@dataclass(frozen=True)
class Probe:
    """One tracked sub-network: its name (``full``, ``mac50``, ``smallest``...), config, masks and MAC share."""

    name: str
    config: Config
    masks: SubNetworkMasks | None
    encoder_mac_fraction: float

    def to_dict(self) -> dict[str, object]:
        """What ``metrics.json`` keeps of a probe (the masks follow from the config)."""
        return {"name": self.name, "config": self.config, "encoder_mac_fraction": self.encoder_mac_fraction}


def probe_name(fraction: float) -> str:
    """``mac75`` for 0.75: the column prefix of a probe at that encoder-MAC fraction."""
    return f"mac{round(fraction * 100):d}"


def _uniform_masks(shape: ModelShape, heads: int, units: int) -> SubNetworkMasks:
    """Every layer keeps its first ``heads`` heads and first ``units`` units."""
    head_row = torch.arange(shape.num_heads) < heads
    unit_row = torch.arange(shape.num_units) < units
    return SubNetworkMasks(
        heads=head_row.expand(shape.num_layers, -1).clone(), units=unit_row.expand(shape.num_layers, -1).clone()
    )


def _depth_masks(shape: ModelShape, layers: int) -> SubNetworkMasks:
    """The first ``layers`` layers, each kept whole."""
    keep = torch.arange(shape.num_layers) < layers
    return SubNetworkMasks(
        heads=keep[:, None].expand(-1, shape.num_heads).clone(), units=keep[:, None].expand(-1, shape.num_units).clone()
    )


def _units_for(shape: ModelShape, heads: int, target: float) -> int:
    """Units per layer that bring the uniform shape with ``heads`` heads closest to ``target`` (MACs are linear in units)."""
    base = cost_of(shape, _uniform_masks(shape, heads, 0)).encoder_mac_fraction
    one = cost_of(shape, _uniform_masks(shape, heads, 1)).encoder_mac_fraction - base
    return int(np.clip(round((target - base) / one), 0, shape.num_units))


def _candidates(shape: ModelShape, target: float) -> Iterator[SubNetworkMasks]:
    """Uniform shapes (head counts nearest the target share first), then depth-only shapes."""
    head_counts = sorted(range(1, shape.num_heads + 1), key=lambda h: (abs(h - target * shape.num_heads), h))
    for heads in head_counts:
        yield _uniform_masks(shape, heads, _units_for(shape, heads, target))
    for layers in range(1, shape.num_layers + 1):
        yield _depth_masks(shape, layers)


def _representable(space: SearchSpace, masks: SubNetworkMasks) -> Config | None:
    try:
        return space.from_masks(masks)
    except ValueError:
        return None


def probe_at(space: SearchSpace, target: float, tolerance: float = 0.02) -> Probe:
    """The probe of ``space`` at encoder-MAC fraction ``target``: the first candidate within ``tolerance``, else the
    closest."""
    if not 0.0 < target < 1.0:
        raise ValueError(f"a probe's MAC fraction must lie in (0, 1), got {target}")
    best: Probe | None = None
    for masks in _candidates(space.shape, target):
        config = _representable(space, masks)
        if config is None:
            continue
        fraction = cost_of(space.shape, masks).encoder_mac_fraction
        probe = Probe(probe_name(target), config, masks, fraction)
        if abs(fraction - target) <= tolerance:
            return probe
        if best is None or abs(fraction - target) < abs(best.encoder_mac_fraction - target):
            best = probe
    if best is None:
        raise ValueError(f"search space {space.name!r} expresses no uniform or depth-only sub-network")
    return best


def probe_sub_networks(space: SearchSpace, fractions: tuple[float, ...] = PROBE_FRACTIONS) -> dict[str, Probe]:
    """``full``, one probe per fraction (largest first) and ``smallest``, in that order."""
    smallest = space.smallest()
    smallest_masks = space.to_masks(smallest)
    probes = {"full": Probe("full", space.largest(), None, 1.0)}
    for fraction in sorted(fractions, reverse=True):
        probe = probe_at(space, fraction)
        probes[probe.name] = probe
    probes["smallest"] = Probe(
        "smallest", smallest, smallest_masks, cost_of(space.shape, smallest_masks).encoder_mac_fraction
    )
    return probes
