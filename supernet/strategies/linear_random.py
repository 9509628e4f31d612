"""``linear_random``: from the full network towards random sub-networks as training goes on."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from supernet.strategies.base import Pass, SamplingStrategy


def random_probability(step: int, total_steps: int) -> float:
    """Chance of training random sub-networks at ``step``: 0 at the first step, rising linearly to 1 at the last."""
    if total_steps <= 1:
        return 1.0
    return min(max(step / (total_steps - 1), 0.0), 1.0)


@dataclass
class LinearRandomStrategy(SamplingStrategy):
    """With probability :func:`random_probability` ``num_random`` (default 1) random sub-networks, else the full one."""

    name = "linear_random"
    full_warmup: float = 0.0  # its schedule already starts from the full network

    def plan(self, step: int, total_steps: int, rng: np.random.Generator) -> list[Pass]:
        if rng.random() < random_probability(step, total_steps):
            return self.random_passes(rng)
        return [Pass(None)]
