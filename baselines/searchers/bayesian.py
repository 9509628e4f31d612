"""Shared parts of our BoTorch searchers (EHVI, linear- and random-scalarisation BO).

Design, chosen to stay cheap on two CPU cores and valid on huge spaces:

* GP inputs ("features") live in [0, 1]^k with k <= ``max_features`` (64). Small spaces use their unit-scaled
  codes (one-hot for unordered categoricals with more than two values). Larger ones, like the ``large`` space
  (one binary key per head and unit: 9,288 keys for MiniLM), use group means: keys that differ only in a
  trailing number (``head_3_0`` ... ``head_3_11``) form one group, whose feature is the fraction of its
  maximum (e.g. the share of heads kept in layer 3); if that still gives too many groups, consecutive keys
  are averaged in blocks. Callers can pass explicit ``feature_groups``. An ARD kernel on 9k raw binary inputs
  would cost gigabytes per acquisition batch and cannot be fitted from 200 points.
* The acquisition is maximised over a candidate pool, not by gradients: ``num_random_candidates`` configs
  drawn from the space plus ``num_local_candidates`` mutations of observed Pareto-optimal configs (each key
  re-drawn with a rate between 1/d and 1/2), minus every config already suggested. Candidates are codes of
  the original space, so every suggestion is a valid config.
* One GP fit per suggestion, on at most ``max_gp_points`` observations (the Pareto set plus a random subset),
  float64 throughout, L-BFGS capped at ``gp_fit_maxiter`` iterations, under a torch RNG forked and seeded from
  the searcher's seed (reproducible; the caller's global torch RNG is left alone). Fitting and acquisition
  run with ``torch_threads`` (1) torch threads, restored afterwards: matrices of 200 points gain nothing from
  threads and slow down badly when trials train on the same cores.
* Objectives are min-max normalised to [0, 1] over the observations before modelling or scalarising.
"""
from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from botorch.acquisition import AcquisitionFunction
from botorch.exceptions.errors import ModelFittingError
from botorch.fit import fit_gpytorch_mll
from botorch.models import ModelListGP, SingleTaskGP
from botorch.models.model import Model
from gpytorch.mlls import ExactMarginalLogLikelihood
from linear_operator.utils.errors import NotPSDError

from baselines.searchers.base import MultiObjectiveSearcher, non_dominated, normalise_objectives
from baselines.searchers.encoding import ConfigEncoder

logger = logging.getLogger(__name__)

DTYPE = torch.float64


def _strip_trailing_number(key: str) -> str:
    return re.sub(r"\d+$", "", key)


def default_feature_groups(keys: Sequence[str], max_features: int) -> list[np.ndarray]:
    """Column groups whose means are GP features: keys equal up to a trailing number, else consecutive blocks."""
    by_name: dict[str, list[int]] = {}
    for j, key in enumerate(keys):
        by_name.setdefault(_strip_trailing_number(key), []).append(j)
    if len(by_name) <= max_features:
        return [np.array(idx) for idx in by_name.values()]
    return [block for block in np.array_split(np.arange(len(keys)), max_features) if len(block)]


class FeatureMap:
    """Maps code vectors to GP inputs in [0, 1]^k (see module docstring).

    :param encoder: Encoder of the config space.
    :param max_features: Largest number of GP inputs.
    :param feature_groups: Optional explicit groups of hyperparameter keys; each group's mean unit code is
        one feature (keys in no group are ignored). Overrides the automatic choice.
    """

    def __init__(
        self,
        encoder: ConfigEncoder,
        max_features: int = 64,
        feature_groups: Sequence[Sequence[str]] | None = None,
    ):
        self.encoder = encoder
        if feature_groups is not None:
            position = {k: j for j, k in enumerate(encoder.keys)}
            unknown = sorted({k for g in feature_groups for k in g} - position.keys())
            if unknown:
                raise ValueError(f"feature_groups name keys that are not hyperparameters: {unknown[:5]}")
            groups = [np.array([position[k] for k in g]) for g in feature_groups if len(g)]
        else:
            one_hot = sum(c.num_values for c in encoder.columns if c.kind == "categorical" and c.num_values > 2)
            plain = sum(1 for c in encoder.columns if not (c.kind == "categorical" and c.num_values > 2))
            groups = None if plain + one_hot <= max_features else default_feature_groups(encoder.keys, max_features)
        self.groups = groups
        if groups is not None:
            self._average = np.zeros((encoder.dim, len(groups)))
            for g, idx in enumerate(groups):
                self._average[idx, g] = 1.0 / len(idx)

    @property
    def uses_groups(self) -> bool:
        return self.groups is not None

    def __call__(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(X)
        unit = self.encoder.to_unit(X)
        if self.groups is not None:
            return unit @ self._average
        parts = []
        for j, c in enumerate(self.encoder.columns):
            if c.kind == "categorical" and c.num_values > 2:
                parts.append(np.eye(c.num_values)[X[:, j].astype(int)])
            else:
                parts.append(unit[:, j : j + 1])
        return np.hstack(parts)


@contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Run a block with ``num_threads`` torch threads, restoring the previous number after (None: unchanged)."""
    if num_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _fit_single(X: torch.Tensor, y: torch.Tensor, maxiter: int) -> SingleTaskGP:
    model = SingleTaskGP(X, y)
    fit_gpytorch_mll(
        ExactMarginalLogLikelihood(model.likelihood, model), optimizer_kwargs={"options": {"maxiter": maxiter}}
    )
    return model


def fit_gp(train_X: np.ndarray, train_Y: np.ndarray, seed: int, maxiter: int = 50) -> Model:
    """BoTorch's default GP (RBF, dimension-scaled priors, standardised outputs) per output column.

    One output gives a :class:`SingleTaskGP`, several a :class:`ModelListGP` of independent ones (fitted one
    by one: faster than BoTorch's batched multi-output fit). Marginal likelihood by L-BFGS, at most
    ``maxiter`` iterations (hyperparameters need no more; uncapped fits take hundreds).
    """
    X = torch.as_tensor(train_X, dtype=DTYPE)
    Y = torch.as_tensor(train_Y, dtype=DTYPE)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        models = [_fit_single(X, Y[:, i : i + 1], maxiter) for i in range(Y.shape[1])]
    return models[0] if len(models) == 1 else ModelListGP(*models)


def evaluate_acquisition(acqf: AcquisitionFunction, candidates: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Acquisition value of every candidate (q = 1), without gradients."""
    X = torch.as_tensor(candidates, dtype=DTYPE).unsqueeze(1)
    with torch.no_grad():
        return torch.cat([acqf(X[i : i + chunk]) for i in range(0, len(X), chunk)]).numpy()


def as_pending(features: np.ndarray) -> torch.Tensor | None:
    return torch.as_tensor(features, dtype=DTYPE) if len(features) else None


class BayesianSearcher(MultiObjectiveSearcher):
    """Base of our BoTorch searchers: random until ``min_observations`` results, then the best pool candidate.

    Subclasses implement ``_acquisition(train_F, train_Y, pool_F, pending_F, seed)`` returning one value per
    pool candidate (larger is better); ``train_Y`` holds min-max normalised objectives to be minimised.
    """

    def __init__(
        self,
        config_space: dict[str, Any],
        points_to_evaluate: list[dict[str, Any]] | None = None,
        random_seed: int | None = None,
        max_tries: int = 100,
        num_random_candidates: int = 500,
        num_local_candidates: int = 100,
        max_gp_points: int = 200,
        max_features: int = 64,
        feature_groups: Sequence[Sequence[str]] | None = None,
        min_observations: int = 3,
        mc_samples: int = 64,
        gp_fit_maxiter: int = 50,
        torch_threads: int | None = 1,
    ):
        super().__init__(config_space, points_to_evaluate, random_seed, max_tries)
        if min_observations < 2:
            raise ValueError(f"min_observations must be at least 2 to fit a GP, got {min_observations}")
        self.num_random_candidates = num_random_candidates
        self.num_local_candidates = num_local_candidates
        self.max_gp_points = max_gp_points
        self.min_observations = min_observations
        self.mc_samples = mc_samples
        self.gp_fit_maxiter = gp_fit_maxiter
        self.torch_threads = torch_threads
        self.features = FeatureMap(self.encoder, max_features, feature_groups)

    def candidate_pool(self) -> np.ndarray:
        """Random configs plus mutations of Pareto-optimal ones, never suggested before, without duplicates."""
        rs, d = self.random_state, self.encoder.dim
        parts = [self.encoder.sample(self.num_random_candidates, rs)]
        front = self.pareto_X()
        if len(front) and self.num_local_candidates:
            n = self.num_local_candidates
            parents = front[rs.randint(len(front), size=n)]
            low_rate = min(1.0 / d, 0.5)
            rates = np.exp(rs.uniform(np.log(low_rate), np.log(0.5), size=(n, 1)))
            mask = rs.random_sample((n, d)) < rates
            mask[np.arange(n), rs.randint(d, size=n)] = True
            parts.append(np.where(mask, self.encoder.sample(n, rs), parents))
        pool, seen = [], set()
        for x in self.encoder.repair(np.vstack(parts)):
            key = self.encoder.key(x)
            if key not in seen and self.is_new(x):
                seen.add(key)
                pool.append(x)
        return np.stack(pool) if pool else np.empty((0, d))

    def _training_rows(self, Y: np.ndarray) -> np.ndarray:
        """All rows, or the Pareto set plus a random subset when there are more than ``max_gp_points``."""
        n = len(Y)
        if n <= self.max_gp_points:
            return np.arange(n)
        front = non_dominated(Y)[: self.max_gp_points]
        rest = np.setdiff1d(np.arange(n), front)
        extra = self.random_state.choice(rest, size=self.max_gp_points - len(front), replace=False)
        return np.sort(np.concatenate([front, extra]))

    def _propose(self) -> np.ndarray:
        if len(self._Y) < self.min_observations:
            return self.random_new()
        pool = self.candidate_pool()
        if len(pool) == 0:
            return self.random_new()
        Y = normalise_objectives(self.observed_Y)
        rows = self._training_rows(Y)
        seed = int(self.random_state.randint(2**31 - 1))
        try:
            with torch_threads(self.torch_threads):
                values = self._acquisition(
                    self.features(self.observed_X[rows]),
                    Y[rows],
                    self.features(pool),
                    self.features(self.pending_X),
                    seed,
                )
        except (NotPSDError, ModelFittingError, torch.linalg.LinAlgError) as err:
            logger.warning("%s: GP failed (%s); suggesting a random candidate", type(self).__name__, err)
            return pool[0]
        return pool[int(np.argmax(values))]

    def _acquisition(
        self, train_F: np.ndarray, train_Y: np.ndarray, pool_F: np.ndarray, pending_F: np.ndarray, seed: int
    ) -> np.ndarray:
        raise NotImplementedError
