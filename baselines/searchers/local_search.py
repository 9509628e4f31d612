"""Multi-objective local search: mutate one hyperparameter of a random Pareto-optimal config.

Syne Tune 0.16 removed its local search; this follows the paper's description: start from the initial
design, then repeatedly pick a random point of the observed Pareto front and re-sample one hyperparameter
from its domain, so that the child differs from its parent in exactly one key and was never suggested.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from baselines.searchers.base import MultiObjectiveSearcher


class MultiObjectiveLocalSearch(MultiObjectiveSearcher):
    """One-key mutations of random Pareto points; random configs until a first result arrives.

    :param config_space: Syne Tune config space.
    :param points_to_evaluate: Initial design, returned first.
    :param random_seed: Seed of every random draw.
    :param max_tries: Mutations tried per Pareto point before moving to the next one.
    """

    def __init__(
        self,
        config_space: dict[str, Any],
        points_to_evaluate: list[dict[str, Any]] | None = None,
        random_seed: int | None = None,
        max_tries: int = 100,
    ):
        super().__init__(config_space, points_to_evaluate, random_seed, max_tries)
        sizes = [c.num_values for c in self.encoder.columns]
        # Only hyperparameters that can take another value can be mutated.
        self._mutable = np.array([j for j, n in enumerate(sizes) if n is None or n > 1])

    def mutate(self, parent: np.ndarray) -> np.ndarray:
        """Copy of ``parent`` with one random mutable hyperparameter re-drawn to a different value."""
        child = parent.copy()
        j = int(self.random_state.choice(self._mutable))
        for _ in range(self.max_tries):
            value = self.encoder.sample_column(j, 1, self.random_state)[0]
            if value != parent[j]:
                break
        child[j] = value
        return child

    def _propose(self) -> np.ndarray:
        if len(self._Y) == 0 or len(self._mutable) == 0:
            return self.random_new()
        front = self.pareto_X()
        for p in self.random_state.permutation(len(front)):
            for _ in range(self.max_tries):
                child = self.mutate(front[p])
                if self.is_new(child):
                    return child
        # Every one-key neighbour of the front was tried already: restart from a random config.
        return self.random_new()
