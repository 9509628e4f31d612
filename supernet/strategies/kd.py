"""``kd``: in-place distillation of random sub-networks from the full network."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from supernet.strategies.base import DistillingStrategy, Pass


@dataclass
class KDStrategy(DistillingStrategy):
    """Full network (task loss), then ``num_random`` (default 1) random sub-networks distilled at ``temperature``."""

    name = "kd"

    def plan(self, step: int, total_steps: int, rng: np.random.Generator) -> list[Pass]:
        return [Pass(None), *self.random_passes(rng, distill=True)]
