"""MOREA (multi-objective regularised evolution), seeded and ranking by dominance.

Two fixes to Syne Tune 0.16's :class:`MultiObjectiveRegularizedEvolution`, whose population logic and
mutation we keep: its first population is drawn from NumPy's global RNG (its ``sample_random_config``
ignores the generator it is given), and its default priority scores rows by the wrong permutation (see
:mod:`baselines.searchers.priority`). We draw from the searcher's own ``random_state`` and rank with
:class:`NonDominatedRank`.
"""
from __future__ import annotations

from typing import Any

from syne_tune.optimizer.schedulers.multiobjective.multi_objective_regularized_evolution import (
    MultiObjectiveRegularizedEvolution,
)

from baselines.searchers.encoding import ConfigEncoder
from baselines.searchers.priority import NonDominatedRank


class SeededMultiObjectiveRegularizedEvolution(MultiObjectiveRegularizedEvolution):
    """Syne Tune's MOREA with a seeded random initial population and a correct non-dominated ranking."""

    def __init__(
        self,
        config_space: dict[str, Any],
        points_to_evaluate: list[dict[str, Any]] | None = None,
        population_size: int = 10,
        sample_size: int = 5,
        random_seed: int | None = None,
    ):
        super().__init__(
            config_space,
            points_to_evaluate=points_to_evaluate,
            population_size=population_size,
            sample_size=sample_size,
            multiobjective_priority=NonDominatedRank(),
            random_seed=random_seed,
        )
        self.encoder = ConfigEncoder(config_space)

    def suggest(self, **kwargs) -> dict[str, Any] | None:
        if not self.points_to_evaluate and len(self.population) < self.population_size:
            return self.encoder.decode(self.encoder.sample(1, self.random_state)[0])
        # Initial design, or mutation of a tournament winner with the seeded ``self.random_state``.
        return super().suggest(**kwargs)
