"""``random``: train randomly sampled sub-networks only."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from supernet.strategies.base import Pass, SamplingStrategy


@dataclass
class RandomStrategy(SamplingStrategy):
    """``num_random`` (default 1) sub-networks drawn from the search space per step, task loss."""

    name = "random"

    def plan(self, step: int, total_steps: int, rng: np.random.Generator) -> list[Pass]:
        return self.random_passes(rng)
