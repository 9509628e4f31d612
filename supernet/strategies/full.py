"""``full``: the sandwich rule with in-place distillation of the smallest and the random sub-networks."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from supernet.strategies.base import DistillingStrategy, Pass


@dataclass
class FullStrategy(DistillingStrategy):
    """Full network (task loss), smallest and ``num_random`` (default 2) random sub-networks distilled."""

    name = "full"
    num_random: int = 2
    min_random = 0

    def plan(self, step: int, total_steps: int, rng: np.random.Generator) -> list[Pass]:
        return [Pass(None), self.smallest_pass(distill=True), *self.random_passes(rng, distill=True)]
