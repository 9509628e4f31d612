"""The ask/tell loop of a weight-sharing search, independent of models and data: budget, batches, replay.

A searcher proposes configs; new ones are scored (one at a time or a batch at once), re-proposals of scored
configs are told their cached result. A resumed run replays its recorded evaluations to a fresh seeded
searcher, so that it continues as an uninterrupted run would (see :meth:`SearchLoop.replay`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from baselines.searchers.ask_tell import AskTellSearch, SearchExhausted, config_key, plain_config

DEFAULT_NUM_SAMPLES = 100
MAX_REPEATS = 50  # consecutive re-proposals of evaluated configs before the search counts as exhausted

Config = dict[str, Any]


@dataclass(frozen=True)
class Budget:
    """How long the search runs: a number of evaluated sub-networks and/or seconds (either ends it)."""

    num_samples: int | None = DEFAULT_NUM_SAMPLES
    max_wallclock: float | None = None

    def __post_init__(self) -> None:
        if self.num_samples is None and self.max_wallclock is None:
            raise ValueError("give a budget: --num-samples N and/or --max-wallclock SECONDS")
        if self.num_samples is not None and self.num_samples < 1:
            raise ValueError(f"--num-samples must be >= 1, got {self.num_samples}")
        if self.max_wallclock is not None and self.max_wallclock <= 0:
            raise ValueError(f"--max-wallclock must be positive, got {self.max_wallclock}")

    def spent(self, num_evaluated: int, runtime_s: float) -> bool:
        if self.num_samples is not None and num_evaluated >= self.num_samples:
            return True
        return self.max_wallclock is not None and runtime_s >= self.max_wallclock


@dataclass
class Evaluation:
    """One evaluated sub-network: its config, validation error and when (seconds into the run) it finished."""

    config: Config
    valid_error: float
    runtime_s: float


SearchFactory = Callable[[Sequence[Config] | None], AskTellSearch]  # initial design override -> searcher


@dataclass
class Batch:
    """Trials asked together: new configs to evaluate, and re-proposals of configs pending in the same batch."""

    new: list[tuple[int, Config]] = field(default_factory=list)
    duplicates: list[tuple[int, Config]] = field(default_factory=list)
    exhausted: bool = False  # the searcher has nothing new left to propose


@dataclass
class SearchLoop:
    """The ask/tell loop of a weight-sharing search, independent of models and data.

    ``make_search(recorded)`` builds a fresh seeded :class:`baselines.searchers.AskTellSearch` whose initial
    design starts with the ``recorded`` configs (``None``: the run's own initial design). ``score(config)``
    returns the validation error and ``size(config)`` the size objective, ``metrics[1]``; with more than two
    ``metrics``, ``sizes(config)`` returns every size objective by name. ``evaluations`` holds the rows of
    earlier sessions (to replay) and then every new evaluation, in order.

    With ``batch_size`` N the loop asks for N new configs, scores them together (``score_batch``, e.g. on N
    evaluation workers) and then tells their results in ask order; N = 1 is the sequential search. A batch
    depends only on the seed and the results told before it, so a run is reproducible for a given N.
    """

    make_search: SearchFactory
    score: Callable[[Config], float]
    size: Callable[[Config], float]
    metrics: Sequence[str]
    evaluations: list[Evaluation] = field(default_factory=list)
    max_repeats: int = MAX_REPEATS
    batch_size: int = 1
    score_batch: Callable[[list[Config]], list[float]] | None = None
    exact_replay: bool = True  # False once a replay had to fall back to the recorded configs
    num_repeats: int = 0  # re-proposals of already evaluated configs, told from the cache
    sizes: Callable[[Config], Mapping[str, float]] | None = None  # every size objective, for > 2 metrics

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"the batch size (evaluation workers) must be >= 1, got {self.batch_size}")
        if len(self.metrics) > 2 and self.sizes is None:
            raise ValueError(f"{len(self.metrics)} objectives need sizes(config) for every size objective")

    def result(self, config: Config, valid_error: float) -> dict[str, float]:
        if len(self.metrics) == 2:
            return {self.metrics[0]: valid_error, self.metrics[1]: self.size(config)}
        sizes = self.sizes(config)
        return {self.metrics[0]: valid_error, **{name: float(sizes[name]) for name in self.metrics[1:]}}

    def ask_batch(self, search: AskTellSearch, room: int) -> Batch:
        """Ask until ``room`` new configs are pending; repeats of evaluated configs are told their cached result."""
        batch, pending, repeats = Batch(), set(), 0
        while len(batch.new) < room:
            try:
                trial_id, config = search.ask()
            except SearchExhausted:
                batch.exhausted = True
                break
            cached = search.result_of(config)
            if cached is None and config_key(config) not in pending:
                repeats = 0
                pending.add(config_key(config))
                batch.new.append((trial_id, plain_config(config)))
                continue
            if cached is not None:
                search.tell(trial_id, config, cached)
            else:
                batch.duplicates.append((trial_id, config))
            self.num_repeats += 1
            repeats += 1
            if repeats >= self.max_repeats:
                batch.exhausted = True
                break
        return batch

    def tell_batch(self, search: AskTellSearch, batch: Batch, errors: Sequence[float]) -> None:
        """Tell the batch's results in ask order, then the in-batch duplicates their config's result."""
        for (trial_id, config), error in zip(batch.new, errors):
            search.tell(trial_id, config, self.result(config, float(error)))
        for trial_id, config in batch.duplicates:
            search.tell(trial_id, config, search.result_of(config))

    def replay(self) -> AskTellSearch:
        """A fresh searcher told every recorded evaluation in batches, as the run asked them (see ``plm-nas search``)."""
        search = self.make_search(None)
        done = 0
        while done < len(self.evaluations):
            expected = self.evaluations[done:done + self.batch_size]
            batch = self.ask_batch(search, len(expected))
            if [config_key(c) for _, c in batch.new] != [config_key(e.config) for e in expected]:
                return self._replay_recorded()
            self.tell_batch(search, batch, [e.valid_error for e in expected])
            done += len(expected)
        self.num_repeats = 0
        return search

    def _replay_recorded(self) -> AskTellSearch:
        """Fallback: a searcher whose initial design starts with the recorded configs, told their results."""
        self.exact_replay = False
        self.num_repeats = 0
        search = self.make_search([e.config for e in self.evaluations])
        for evaluation in self.evaluations:
            trial_id, config = search.ask()
            if config_key(config) != config_key(evaluation.config):
                raise RuntimeError("the searcher did not return its initial design first; cannot replay the results")
            search.tell(trial_id, config, self.result(config, evaluation.valid_error))
        return search

    def run(
        self,
        budget: Budget,
        runtime_offset: float = 0.0,
        on_evaluation: Callable[[Evaluation], None] = lambda evaluation: None,
    ) -> AskTellSearch:
        """Replay earlier evaluations, then ask/evaluate/tell in batches until the budget is spent."""
        search = self.replay()
        score_batch = self.score_batch or (lambda configs: [self.score(config) for config in configs])
        started = time.perf_counter()
        while not budget.spent(len(self.evaluations), runtime_offset + time.perf_counter() - started):
            room = self.batch_size
            if budget.num_samples is not None:
                room = min(room, budget.num_samples - len(self.evaluations))
            batch = self.ask_batch(search, room)
            if batch.new:
                errors = [float(error) for error in score_batch([config for _, config in batch.new])]
                self.tell_batch(search, batch, errors)
                finished = runtime_offset + time.perf_counter() - started
                for (_, config), error in zip(batch.new, errors):
                    evaluation = Evaluation(config, error, finished)
                    self.evaluations.append(evaluation)
                    on_evaluation(evaluation)
            if batch.exhausted:
                break
        return search
