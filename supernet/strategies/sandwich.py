"""``sandwich``: the full network, the smallest sub-network and ``k`` random ones every step."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from supernet.strategies.base import Pass, SamplingStrategy


@dataclass
class SandwichStrategy(SamplingStrategy):
    """Full + smallest + ``num_random`` (default 2) random sub-networks, task loss for all (sandwich rule)."""

    name = "sandwich"
    num_random: int = 2
    min_random = 0

    def plan(self, step: int, total_steps: int, rng: np.random.Generator) -> list[Pass]:
        return [Pass(None), self.smallest_pass(), *self.random_passes(rng)]
