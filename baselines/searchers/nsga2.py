"""NSGA-II on Syne Tune config spaces, built from pymoo's operators, for asynchronous workers.

Syne Tune 0.16 dropped its NSGA-II. This one keeps NSGA-II's parts (Deb et al., 2002) and takes them from
pymoo: rank-and-crowding survival (non-dominated sorting + crowding distance), binary tournament selection,
and variation by variable kind:

* real columns: simulated binary crossover (SBX, eta 15) and polynomial mutation (PM, eta 20), pymoo's
  NSGA-II defaults (on a log scale for log-uniform ones);
* integer and ordered columns with more than two values: SBX and PM with eta 3 on a relaxed box
  ``[low - 0.5, high + 0.5]`` followed by rounding (pymoo's recipe for integer variables; the relaxed box gives
  both inclusive bounds the same chance as inner values);
* two-valued columns (binary masks): uniform crossover and bit-flip mutation;
* unordered categoricals: uniform crossover and random re-choice mutation.

Each variable mutates with probability ``1 / number of hyperparameters``.

Asynchronous workers: offspring wait in a queue. A new generation (survival of parents + results) is formed
as soon as ``population_size`` new results have arrived since the last one; when the queue runs dry earlier,
a new batch of offspring is bred from the current population plus the results already in.
"""
from __future__ import annotations

import math
import types
from typing import Any

import numpy as np
from pymoo.algorithms.moo.nsga2 import binary_tournament
from pymoo.core.individual import Individual
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.core.variable import Choice
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.crossover.ux import UX
from pymoo.operators.mutation.bitflip import BFM
from pymoo.operators.mutation.pm import PM
from pymoo.operators.mutation.rm import ChoiceRandomMutation
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.operators.selection.tournament import TournamentSelection
from pymoo.operators.survival.rank_and_crowding import RankAndCrowding

from baselines.searchers.base import MultiObjectiveSearcher
from baselines.searchers.encoding import ConfigEncoder


class _VariationGroup:
    """Crossover and mutation of one kind of columns (pymoo operators on the sub-vector of those columns)."""

    def __init__(self, columns: np.ndarray, problem: Problem, crossover, mutation, as_bool: bool = False):
        self.columns = columns
        self.problem = problem
        self.crossover = crossover
        self.mutation = mutation
        self.as_bool = as_bool

    def vary(self, parents: np.ndarray, generator: np.random.Generator) -> np.ndarray:
        """Children (warped) codes [2 * n_matings, k] from parent (warped) codes [2, n_matings, k]."""
        X = parents[..., self.columns]
        if self.as_bool:
            X = X > 0.5
        matings = [[Individual(X=X[0, i]), Individual(X=X[1, i])] for i in range(X.shape[1])]
        children = self.crossover(self.problem, matings, random_state=generator)
        children = self.mutation(self.problem, children, random_state=generator)
        return np.asarray(children.get("X"), dtype=float)


def _variation_groups(encoder: ConfigEncoder, real_eta: tuple[float, float], int_eta: float) -> list[_VariationGroup]:
    """Split the hyperparameters by kind and give each kind its pymoo operators."""
    n = encoder.dim
    prob_var = 1.0 / n
    xl, xu = encoder.relaxed_bounds()
    kinds: dict[str, list[int]] = {"real": [], "integer": [], "binary": [], "categorical": []}
    for j, c in enumerate(encoder.columns):
        if c.kind == "real":
            kinds["real"].append(j)
        elif c.num_values == 2:
            kinds["binary"].append(j)
        elif c.kind == "categorical":
            kinds["categorical"].append(j)
        else:
            kinds["integer"].append(j)
    groups = []
    for kind, cols in kinds.items():
        if not cols:
            continue
        idx = np.array(cols)
        k = len(idx)
        if kind == "real":
            problem = Problem(n_var=k, xl=xl[idx], xu=xu[idx])
            cross, mut = SBX(eta=real_eta[0]), PM(eta=real_eta[1], prob_var=prob_var)
        elif kind == "integer":
            problem = Problem(n_var=k, xl=xl[idx], xu=xu[idx])
            cross = SBX(eta=int_eta, vtype=float, repair=RoundingRepair())
            mut = PM(eta=int_eta, prob_var=prob_var, vtype=float, repair=RoundingRepair())
        elif kind == "binary":
            problem = Problem(n_var=k, xl=0, xu=1)
            cross, mut = UX(), BFM(prob_var=prob_var)
        else:
            choices = {i: Choice(options=list(range(encoder.columns[j].num_values))) for i, j in enumerate(idx)}
            problem = Problem(vars=choices)
            cross, mut = UX(), ChoiceRandomMutation(prob_var=prob_var)
        groups.append(_VariationGroup(idx, problem, cross, mut, as_bool=kind == "binary"))
    return groups


class NSGA2Searcher(MultiObjectiveSearcher):
    """Asynchronous NSGA-II with pymoo's survival, selection, crossover and mutation.

    :param config_space: Syne Tune config space.
    :param points_to_evaluate: Initial design; the rest of the first population is random.
    :param population_size: Parents kept per generation and offspring bred per batch.
    :param random_seed: Seed of every random draw.
    :param max_tries: Breeding rounds per batch to find children never suggested before.
    :param sbx_eta, pm_eta: Distribution indices for real columns.
    :param integer_eta: Distribution index of SBX and PM on integer and ordered columns.
    """

    def __init__(
        self,
        config_space: dict[str, Any],
        points_to_evaluate: list[dict[str, Any]] | None = None,
        population_size: int = 10,
        random_seed: int | None = None,
        max_tries: int = 20,
        sbx_eta: float = 15.0,
        pm_eta: float = 20.0,
        integer_eta: float = 3.0,
    ):
        super().__init__(config_space, points_to_evaluate, random_seed, max_tries)
        if population_size < 2:
            raise ValueError(f"population_size must be at least 2, got {population_size}")
        self.population_size = population_size
        self._groups = _variation_groups(self.encoder, (sbx_eta, pm_eta), integer_eta)
        self._survival = RankAndCrowding()
        self._selection = TournamentSelection(func_comp=binary_tournament)
        # pymoo's binary tournament reads these two attributes of the algorithm object.
        self._tournament = types.SimpleNamespace(
            tournament_type="comp_by_dom_and_crowding", random_state=self.generator
        )
        self.population_X = np.empty((0, self.encoder.dim))
        self.population_Y = np.empty((0, 0))
        self._new_X: list[np.ndarray] = []
        self._new_Y: list[np.ndarray] = []
        self.queue: list[np.ndarray] = []
        self.num_generations = 0

    # ------------------------------------------------------------------------------------------ evolution
    def _survive(self, X: np.ndarray, Y: np.ndarray, n: int) -> Population:
        """The ``n`` best of (X, Y) by non-dominated rank, then crowding distance (rank/crowding attached)."""
        pop = Population.new("X", X, "F", Y)
        problem = Problem(n_var=X.shape[1], n_obj=Y.shape[1])
        return self._survival.do(problem, pop, n_survive=n, random_state=self.generator)

    def _pool(self) -> tuple[np.ndarray, np.ndarray]:
        """Current parents plus the results that arrived since the last generation."""
        if not self._new_X:
            return self.population_X, self.population_Y
        new_X, new_Y = np.stack(self._new_X), np.stack(self._new_Y)
        if len(self.population_X) == 0:
            return new_X, new_Y
        return np.vstack([self.population_X, new_X]), np.vstack([self.population_Y, new_Y])

    def _on_result(self, x: np.ndarray, y: np.ndarray) -> None:
        self._new_X.append(x)
        self._new_Y.append(y)
        if len(self._new_X) >= self.population_size:
            X, Y = self._pool()
            survivors = self._survive(X, Y, self.population_size)
            self.population_X = np.asarray(survivors.get("X"), dtype=float)
            self.population_Y = np.asarray(survivors.get("F"), dtype=float)
            self._new_X, self._new_Y = [], []
            self.queue = []  # offspring of the previous generation are stale
            self.num_generations += 1

    def _breed(self, parents_pop: Population) -> np.ndarray:
        """One batch of children codes from tournament-selected parent pairs."""
        n_matings = math.ceil(self.population_size / 2)
        problem = Problem(n_var=self.encoder.dim, n_obj=parents_pop.get("F").shape[1])
        pairs = self._selection.do(
            problem, parents_pop, n_matings, n_parents=2, to_pop=False,
            algorithm=self._tournament, random_state=self.generator,
        )
        X = self.encoder.warp(np.asarray(parents_pop.get("X"), dtype=float))
        parents = np.stack([X[pairs[:, 0]], X[pairs[:, 1]]])  # [2, n_matings, dim]
        children = np.empty((2 * n_matings, self.encoder.dim))  # pymoo order: first children, then second
        for group in self._groups:
            children[:, group.columns] = group.vary(parents, self.generator)
        return self.encoder.repair(self.encoder.unwarp(children))

    def _offspring(self) -> list[np.ndarray]:
        """``population_size`` new children never suggested before (random configs fill any shortfall)."""
        X, Y = self._pool()
        if len(X) == 0:
            return [self.random_new()]
        parents_pop = self._survive(X, Y, min(len(X), self.population_size))
        batch: list[np.ndarray] = []
        keys: set[bytes] = set()
        for _ in range(self.max_tries):
            for child in self._breed(parents_pop):
                key = self.encoder.key(child)
                if key not in keys and self.is_new(child):
                    keys.add(key)
                    batch.append(child)
            if len(batch) >= self.population_size:
                break
        while len(batch) < self.population_size:
            batch.append(self.random_new())
        return batch[: self.population_size]

    def _propose(self) -> np.ndarray:
        if self.num_suggested < self.population_size:
            return self.random_new()  # rest of the first population
        if not self.queue:
            self.queue = self._offspring()
        return self.queue.pop(0)
