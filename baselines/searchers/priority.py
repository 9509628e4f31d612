"""A correct non-dominated priority for Syne Tune 0.16's MOREA and MO-ASHA.

Both read ``MOPriority(objectives)`` as one priority per row (lower is better). Syne Tune 0.16's
``NonDominatedPriority`` instead returns the row indices in sorted order (best first), so row ``i`` gets the
index of the ``i``-th best row: MOREA picks parents and MO-ASHA promotes trials almost regardless of
dominance (with rows [5, 1, 3, 2, 4] on both objectives it gives [1, 3, 2, 4, 0] where the ranks are
[4, 0, 2, 1, 3]). :class:`NonDominatedRank` returns the rank of each row in that same order.
"""
from __future__ import annotations

import numpy as np
from syne_tune.optimizer.schedulers.multiobjective.multiobjective_priority import NonDominatedPriority


class NonDominatedRank(NonDominatedPriority):
    """Rank of each row in Syne Tune's non-dominated sort (fronts first, epsilon-net order within a front)."""

    def priority_unsafe(self, objectives: np.ndarray) -> np.ndarray:
        order = np.asarray(super().priority_unsafe(objectives), dtype=int)
        ranks = np.empty_like(order)
        ranks[order] = np.arange(len(order))
        return ranks
