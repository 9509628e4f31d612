"""Drive a Syne Tune scheduler without a Tuner: ask for configs, tell their results (weight-sharing search).

The calls mirror what Syne Tune's Tuner does for a trial that reports once and completes: ``suggest``, then
``on_trial_add``, later ``on_trial_result`` and ``on_trial_complete`` (``on_trial_remove`` instead if the
scheduler answers STOP).
"""
from __future__ import annotations

import datetime
import json
from typing import Any, Callable, Mapping

from syne_tune.backend.trial_status import Trial
from syne_tune.optimizer.scheduler import SchedulerDecision, TrialScheduler


class SearchExhausted(RuntimeError):
    """The scheduler has no config left to suggest."""


def _plain(value: Any) -> Any:
    """NumPy scalars (as searchers may return them) as Python numbers."""
    return value.item() if hasattr(value, "item") else value


def plain_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with Python scalars only (JSON- and search-space-friendly)."""
    return {str(k): _plain(v) for k, v in config.items()}


def config_key(config: Mapping[str, Any]) -> str:
    """Canonical JSON of a config (sorted keys, plain numbers): the identity of a sub-network, also on disk."""
    return json.dumps(plain_config(config), sort_keys=True)


class AskTellSearch:
    """Ask/tell loop around a Syne Tune :class:`TrialScheduler`, with a cache of evaluated configs.

    A searcher may suggest a config that was evaluated before; the caller should then skip the evaluation
    and tell the cached result (``result_of``), which :meth:`evaluate` does.
    """

    def __init__(self, scheduler: TrialScheduler):
        self.scheduler = scheduler
        self._next_trial_id = 0
        self._pending: dict[int, Trial] = {}
        self._results: dict[str, dict[str, Any]] = {}
        self.history: list[tuple[int, dict[str, Any], dict[str, Any]]] = []

    def ask(self) -> tuple[int, dict[str, Any]]:
        """Next trial id and config to evaluate (the config includes the space's constants)."""
        suggestion = self.scheduler.suggest()
        if suggestion is None:
            raise SearchExhausted(f"{type(self.scheduler).__name__} has no config left to suggest")
        if not suggestion.spawn_new_trial_id:
            raise NotImplementedError("AskTellSearch does not resume paused trials")
        trial = Trial(
            trial_id=self._next_trial_id, config=dict(suggestion.config), creation_time=datetime.datetime.now()
        )
        self._next_trial_id += 1
        self.scheduler.on_trial_add(trial)
        self._pending[trial.trial_id] = trial
        return trial.trial_id, dict(trial.config)

    def tell(self, trial_id: int, config: dict[str, Any], result: dict[str, Any]) -> str:
        """Report the final ``result`` ({metric: value}) of an asked trial; returns the scheduler's decision."""
        trial = self._pending.get(trial_id)
        if trial is None:
            raise ValueError(f"trial {trial_id} was not asked or was told already; pending: {sorted(self._pending)}")
        if config != trial.config:
            raise ValueError(f"config told for trial {trial_id} differs from the config asked for it")
        missing = [m for m in self.metric_names if m not in result]
        if missing:
            raise ValueError(f"result of trial {trial_id} lacks metrics {missing}; got {sorted(result)}")
        del self._pending[trial_id]
        decision = self.scheduler.on_trial_result(trial, result)
        if decision == SchedulerDecision.STOP:
            self.scheduler.on_trial_remove(trial)
        else:
            self.scheduler.on_trial_complete(trial, result)
        self._results.setdefault(config_key(trial.config), dict(result))
        self.history.append((trial_id, dict(trial.config), dict(result)))
        return decision

    def seen(self, config: dict[str, Any]) -> bool:
        """True when a result for this config was told before."""
        return config_key(config) in self._results

    def result_of(self, config: dict[str, Any]) -> dict[str, Any] | None:
        """The first result told for this config, or None."""
        result = self._results.get(config_key(config))
        return None if result is None else dict(result)

    def evaluate(self, objective: Callable[[dict[str, Any]], dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
        """One ask/evaluate/tell step; a repeated config is not evaluated again (its cached result is told)."""
        trial_id, config = self.ask()
        result = self.result_of(config)
        if result is None:
            result = objective(config)
        self.tell(trial_id, config, result)
        return config, result

    @property
    def metric_names(self) -> list[str]:
        return list(self.scheduler.metric_names())

    @property
    def num_pending(self) -> int:
        return len(self._pending)
