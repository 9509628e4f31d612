"""MO-ASHA that starts from the initial design, draws all its randomness from its seed and ranks correctly.

Syne Tune 0.16's :class:`MOASHA` ignores ``points_to_evaluate``, samples configs and brackets from NumPy's
global RNG, does not cast configs, and by default ranks the results at a rung with the wrong permutation
(see :mod:`baselines.searchers.priority`: a trial's fate at a rung barely depends on its own results).
This subclass fixes those points and keeps its successive-halving logic unchanged.
"""
from __future__ import annotations

from copy import deepcopy
from typing import Any

import numpy as np
from syne_tune.backend.trial_status import Trial
from syne_tune.config_space import cast_config_values, postprocess_config
from syne_tune.optimizer.scheduler import TrialSuggestion
from syne_tune.optimizer.schedulers.multiobjective.moasha import MOASHA

from baselines.searchers.encoding import ConfigEncoder
from baselines.searchers.priority import NonDominatedRank


class SeededMOASHA(MOASHA):
    """MO-ASHA with an initial design and a private seeded RNG (see module docstring).

    Arguments are those of Syne Tune's :class:`MOASHA` plus ``points_to_evaluate`` (configs started first).
    """

    def __init__(
        self,
        config_space: dict[str, Any],
        metrics: list[str],
        points_to_evaluate: list[dict[str, Any]] | None = None,
        random_seed: int | None = None,
        **kwargs,
    ):
        kwargs.setdefault("multiobjective_priority", NonDominatedRank())
        super().__init__(config_space, metrics, random_seed=random_seed, **kwargs)
        self.points_to_evaluate = deepcopy(list(points_to_evaluate or []))
        self.encoder = ConfigEncoder(config_space)
        self.random_state = np.random.RandomState(self.random_seed)

    def suggest(self) -> TrialSuggestion | None:
        if self.points_to_evaluate:
            config = self.points_to_evaluate.pop(0)
        else:
            config = self.encoder.decode(self.encoder.sample(1, self.random_state)[0])
        config = cast_config_values(config, self.config_space)
        return TrialSuggestion.start_suggestion(postprocess_config(config, self.config_space))

    def on_trial_add(self, trial: Trial):
        sizes = np.array([len(b.rungs) for b in self.brackets])
        probs = np.exp(sizes - sizes.max())
        index = self.random_state.choice(len(self.brackets), p=probs / probs.sum())
        self.trial_info[trial.trial_id] = self.brackets[index]
