"""``standard``: plain fine-tuning of the full network."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from supernet.strategies.base import Pass, Strategy


@dataclass
class StandardStrategy(Strategy):
    """One pass of the full network per step, task loss."""

    name = "standard"

    def plan(self, step: int, total_steps: int, rng: np.random.Generator) -> list[Pass]:
        return [Pass(None)]
