"""Shared machinery of our multi-objective searchers: initial design first, bookkeeping, seeded randomness.

Syne Tune 0.16's :class:`SingleFidelityScheduler` drives a searcher through ``suggest`` and
``on_trial_complete``; it does not tell the searcher which trial a suggestion became. Our
:class:`MultiObjectiveScheduler` adds that (``on_trial_add``), so model-based searchers know which configs are
still running (pending) when workers are asynchronous.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
from syne_tune.backend.trial_status import Trial
from syne_tune.config_space import remove_constant_and_cast
from syne_tune.optimizer.schedulers.searchers.searcher import BaseSearcher
from syne_tune.optimizer.schedulers.single_fidelity_scheduler import SingleFidelityScheduler

from baselines.searchers.encoding import ConfigEncoder


def seeded_generators(seed: int) -> tuple[np.random.RandomState, np.random.Generator]:
    """Two independent streams from one seed: a RandomState (Syne Tune domains) and a Generator (pymoo)."""
    first, second = np.random.SeedSequence(int(seed)).generate_state(2)
    return np.random.RandomState(int(first)), np.random.default_rng(int(second))


def non_dominated(Y: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows of ``Y`` (all objectives minimised)."""
    Y = np.asarray(Y, dtype=float)
    if len(Y) == 0:
        return np.empty(0, dtype=int)
    return np.sort(NonDominatedSorting().do(Y, only_non_dominated_front=True))


def normalise_objectives(Y: np.ndarray) -> np.ndarray:
    """Min-max scale each objective to [0, 1] over the observed rows (constant objectives map to 0)."""
    Y = np.asarray(Y, dtype=float)
    low, high = Y.min(axis=0), Y.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    return (Y - low) / span


class MultiObjectiveSearcher(BaseSearcher):
    """Base class: returns ``points_to_evaluate`` first, then ``_propose()``; records suggestions and results.

    Subclasses implement ``_propose`` on code vectors (see :class:`ConfigEncoder`) and may react to results
    in ``_on_result``. Objectives arrive as minimised values (the scheduler flips signs for ``max``).

    :param config_space: Syne Tune config space.
    :param points_to_evaluate: Configs returned first, in order (the initial design).
    :param random_seed: Seed of every random draw of the searcher.
    :param max_tries: Draws tried before accepting an already suggested config.
    """

    def __init__(
        self,
        config_space: dict[str, Any],
        points_to_evaluate: list[dict[str, Any]] | None = None,
        random_seed: int | None = None,
        max_tries: int = 100,
    ):
        super().__init__(config_space, points_to_evaluate=points_to_evaluate, random_seed=random_seed)
        self.encoder = ConfigEncoder(config_space)
        self.random_state, self.generator = seeded_generators(self.random_seed)
        self.max_tries = max_tries
        self.num_suggested = 0
        self._suggested: set[bytes] = set()
        self._X: list[np.ndarray] = []
        self._Y: list[np.ndarray] = []
        self._pending: dict[int, np.ndarray] = {}

    # ------------------------------------------------------------------------------------ Syne Tune interface
    def suggest(self, **kwargs) -> dict[str, Any] | None:
        config = self._next_points_to_evaluate()
        if config is not None:
            x = self.encoder.encode(config)
        else:
            x = self._propose()
            if x is None:
                return None
            x = self.encoder.repair(x)
            config = self.encoder.decode(x)
        self._suggested.add(self.encoder.key(x))
        self.num_suggested += 1
        return config

    def on_trial_add(self, trial_id: int, config: dict[str, Any]) -> None:
        """A suggestion became trial ``trial_id``: it is pending until its result comes."""
        self._pending[trial_id] = self.encoder.encode(config)

    def on_trial_complete(self, trial_id: int, config: dict[str, Any], metrics: list[float]) -> None:
        x = self.encoder.encode(config)
        y = np.asarray(metrics, dtype=float)
        self._pending.pop(trial_id, None)
        self._suggested.add(self.encoder.key(x))
        self._X.append(x)
        self._Y.append(y)
        self._on_result(x, y)

    def on_trial_error(self, trial_id: int) -> None:
        self._pending.pop(trial_id, None)

    # ----------------------------------------------------------------------------------------- for subclasses
    def _propose(self) -> np.ndarray | None:
        """Code vector of the next config (called once the initial design is used up)."""
        raise NotImplementedError

    def _on_result(self, x: np.ndarray, y: np.ndarray) -> None:
        """Hook called after every completed trial."""

    @property
    def observed_X(self) -> np.ndarray:
        return np.stack(self._X) if self._X else np.empty((0, self.encoder.dim))

    @property
    def observed_Y(self) -> np.ndarray:
        return np.stack(self._Y) if self._Y else np.empty((0, 0))

    @property
    def pending_X(self) -> np.ndarray:
        rows = list(self._pending.values())
        return np.stack(rows) if rows else np.empty((0, self.encoder.dim))

    def is_new(self, x: np.ndarray) -> bool:
        """True when the (repaired) code vector was never suggested nor observed."""
        return self.encoder.key(x) not in self._suggested

    def random_new(self) -> np.ndarray:
        """A random config not suggested before (an old one after ``max_tries`` draws: tiny spaces)."""
        x = self.encoder.sample(1, self.random_state)[0]
        for _ in range(self.max_tries - 1):
            if self.is_new(x):
                break
            x = self.encoder.sample(1, self.random_state)[0]
        return x

    def pareto_X(self) -> np.ndarray:
        """Code vectors of the observed non-dominated configs."""
        return self.observed_X[non_dominated(self.observed_Y)]


class MultiObjectiveScheduler(SingleFidelityScheduler):
    """Syne Tune's single-fidelity scheduler that also tells the searcher which trial each suggestion became."""

    def on_trial_add(self, trial: Trial):
        if hasattr(self.searcher, "on_trial_add"):
            self.searcher.on_trial_add(trial.trial_id, remove_constant_and_cast(trial.config, self.config_space))
