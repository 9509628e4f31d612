"""Multi-objective random search, reproducible from its seed.

Syne Tune 0.16's ``MultiObjectiveRandomSearcher`` draws from NumPy's global RNG; this one draws from its own
seeded stream and does not repeat a config while unseen ones are easy to find.
"""
from __future__ import annotations

import numpy as np

from baselines.searchers.base import MultiObjectiveSearcher


class MultiObjectiveRandomSearcher(MultiObjectiveSearcher):
    """Random configs from each domain's own sampler, after the initial design."""

    def _propose(self) -> np.ndarray:
        return self.random_new()
