"""Scalarised Bayesian optimisation: linear (``lsbo``) and random-scalarisation (``rsbo``) BO with BoTorch.

Both fit one GP to a scalarisation of the min-max normalised objectives and pick the candidate with the
largest qLogExpectedImprovement (pending trials as ``X_pending``):

* ``lsbo``: fixed weights (equal by default) on a weighted sum: it targets one trade-off point.
* ``rsbo``: new weights for every suggestion, drawn uniformly from the simplex, on the augmented Chebyshev
  scalarisation ``max_i w_i y_i + 0.05 * sum_i w_i y_i`` (Knowles, 2006 (ParEGO); Paria et al., 2020), which,
  unlike a weighted sum, can reach every point of a non-convex front.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from botorch.acquisition.logei import qLogExpectedImprovement
from botorch.sampling import SobolQMCNormalSampler

from baselines.searchers.bayesian import BayesianSearcher, as_pending, evaluate_acquisition, fit_gp


def linear_scalarization(Y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted sum of (minimised) objectives."""
    return np.asarray(Y) @ np.asarray(weights)


def chebyshev_scalarization(Y: np.ndarray, weights: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Augmented Chebyshev scalarisation of (minimised) objectives."""
    weighted = np.asarray(Y) * np.asarray(weights)
    return weighted.max(axis=1) + alpha * weighted.sum(axis=1)


class ScalarizedBOSearcher(BayesianSearcher):
    """GP on a scalarised objective + qLogEI; subclasses choose the scalarisation."""

    def scalarize(self, Y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _acquisition(
        self, train_F: np.ndarray, train_Y: np.ndarray, pool_F: np.ndarray, pending_F: np.ndarray, seed: int
    ) -> np.ndarray:
        target = -self.scalarize(train_Y)  # BoTorch maximises
        model = fit_gp(train_F, target[:, None], seed, self.gp_fit_maxiter)
        acqf = qLogExpectedImprovement(
            model=model,
            best_f=float(target.max()),
            sampler=SobolQMCNormalSampler(sample_shape=torch.Size([self.mc_samples]), seed=seed),
            X_pending=as_pending(pending_F),
        )
        return evaluate_acquisition(acqf, pool_F)


class LinearScalarizedBOSearcher(ScalarizedBOSearcher):
    """``lsbo``: fixed weights (equal unless given) on the normalised objectives.

    :param weights: One non-negative weight per objective; normalised to sum to one. Default: equal.
    """

    def __init__(self, config_space: dict[str, Any], *args, weights: Sequence[float] | None = None, **kwargs):
        super().__init__(config_space, *args, **kwargs)
        if weights is not None and (min(weights) < 0 or sum(weights) <= 0):
            raise ValueError(f"weights must be non-negative with a positive sum, got {list(weights)}")
        self.weights = None if weights is None else np.asarray(weights, dtype=float) / sum(weights)

    def scalarize(self, Y: np.ndarray) -> np.ndarray:
        weights = self.weights if self.weights is not None else np.full(Y.shape[1], 1.0 / Y.shape[1])
        if len(weights) != Y.shape[1]:
            raise ValueError(f"{len(weights)} weights given for {Y.shape[1]} objectives")
        return linear_scalarization(Y, weights)


class RandomScalarizedBOSearcher(ScalarizedBOSearcher):
    """``rsbo``: fresh uniform-simplex weights per suggestion on the augmented Chebyshev scalarisation."""

    last_weights: np.ndarray | None = None

    def scalarize(self, Y: np.ndarray) -> np.ndarray:
        self.last_weights = self.random_state.dirichlet(np.ones(Y.shape[1]))
        return chebyshev_scalarization(Y, self.last_weights)
