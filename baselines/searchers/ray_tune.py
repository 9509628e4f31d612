"""Our Syne Tune searchers inside Ray Tune: a ``Searcher`` adapter and a trial-scheduler adapter for MO-ASHA.

Ray Tune optimises one metric; the search here stays multi-objective because the decisions stay with the
Syne Tune scheduler built by :func:`baselines.searchers.make_scheduler`. :class:`SyneTuneSearcher` asks it for
configs (``suggest``) and tells it results (``on_trial_complete``); for a multi-fidelity scheduler (MO-ASHA),
:class:`SyneTuneTrialScheduler` passes every reported epoch to it and returns its CONTINUE/STOP decision.
Ray saves and restores only the searcher with an experiment, so the searcher owns the Syne Tune scheduler and
the trial scheduler reaches it through the searcher: after ``Tuner.restore`` both see the restored state.
"""
from __future__ import annotations

import datetime
import pickle
from pathlib import Path
from typing import Any, Mapping, Sequence

from ray.tune.schedulers import FIFOScheduler
from ray.tune.schedulers import TrialScheduler as RayTrialScheduler
from ray.tune.search import Searcher
from syne_tune.backend.trial_status import Trial
from syne_tune.optimizer.scheduler import SchedulerDecision, TrialScheduler

STATE_VERSION = 1


class SyneTuneSearcher(Searcher):
    """A Ray Tune ``Searcher`` that delegates to a Syne Tune scheduler minimising every metric in ``metrics``.

    Ray trial ids map to Syne Tune trial ids 0, 1, ... in suggestion order. ``results_via_scheduler`` is set
    when a :class:`SyneTuneTrialScheduler` passes the per-epoch results on (the scheduler must see each once).
    """

    def __init__(self, scheduler: TrialScheduler, metrics: Sequence[str], resource_attr: str = "epoch") -> None:
        super().__init__(metric=None, mode=None)
        self.scheduler = scheduler
        self.metrics = list(metrics)
        self.resource_attr = resource_attr
        self.trials: dict[str, Trial] = {}
        self.results_via_scheduler = False
        self.finished = False

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        """The objectives are fixed by the Syne Tune scheduler; Ray's single metric/mode are not used."""
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.finished:
            return Searcher.FINISHED
        suggestion = self.scheduler.suggest()
        if suggestion is None:
            self.finished = True
            return Searcher.FINISHED
        if not suggestion.spawn_new_trial_id:
            raise NotImplementedError(f"{type(self.scheduler).__name__} asked to resume a paused trial; "
                                      "only stopping schedulers work with Ray Tune")
        trial = Trial(trial_id=len(self.trials), config=dict(suggestion.config),
                      creation_time=datetime.datetime.now())
        self.trials[trial_id] = trial
        self.scheduler.on_trial_add(trial)
        return dict(suggestion.config)

    def syne_tune_result(self, result: Mapping[str, Any]) -> dict[str, Any]:
        """The metrics and the resource of a Ray result, the only keys the Syne Tune scheduler reads."""
        return {key: result[key] for key in (*self.metrics, self.resource_attr) if key in result}

    def decide(self, trial_id: str, result: Mapping[str, Any]) -> str:
        """Pass one reported result to the scheduler; its decision (Syne Tune's CONTINUE or STOP)."""
        trial = self.trials.get(trial_id)
        if trial is None:
            return SchedulerDecision.CONTINUE
        return self.scheduler.on_trial_result(trial, self.syne_tune_result(result))

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if not self.results_via_scheduler:
            self.decide(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        trial = self.trials.get(trial_id)
        if trial is None:
            return
        values = self.syne_tune_result(result or {})
        if error or any(metric not in values for metric in self.metrics):
            self.scheduler.on_trial_error(trial)
        else:
            self.scheduler.on_trial_complete(trial, values)

    # ----------------------------------------------------------------------------------- save / restore

    def get_state(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "scheduler": self.scheduler, "trials": self.trials,
                "metrics": self.metrics, "resource_attr": self.resource_attr, "finished": self.finished}

    def set_state(self, state: dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION or state.get("metrics") != self.metrics:
            raise ValueError(f"searcher state of another version or objectives ({state.get('metrics')}); "
                             f"this run minimises {self.metrics}")
        self.scheduler = state["scheduler"]
        self.trials = dict(state["trials"])
        self.resource_attr = state["resource_attr"]
        self.finished = bool(state["finished"])

    def save(self, checkpoint_path: str) -> None:
        """Pickle the Syne Tune scheduler (its random state included) and the trial mapping."""
        Path(checkpoint_path).write_bytes(pickle.dumps(self.get_state()))

    def restore(self, checkpoint_path: str) -> None:
        self.set_state(pickle.loads(Path(checkpoint_path).read_bytes()))


class SyneTuneTrialScheduler(FIFOScheduler):
    """Ray Tune trial scheduler that stops trials when the searcher's Syne Tune scheduler says STOP (MO-ASHA)."""

    def __init__(self, searcher: SyneTuneSearcher) -> None:
        super().__init__()
        self.searcher = searcher
        searcher.results_via_scheduler = True

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        decision = self.searcher.decide(trial.trial_id, result)
        return RayTrialScheduler.STOP if decision == SchedulerDecision.STOP else RayTrialScheduler.CONTINUE


def ray_search(
    scheduler: TrialScheduler, metrics: Sequence[str], multi_fidelity: bool, resource_attr: str = "epoch"
) -> tuple[SyneTuneSearcher, FIFOScheduler]:
    """The searcher and trial scheduler that run ``scheduler`` in Ray Tune (early stopping if multi-fidelity)."""
    searcher = SyneTuneSearcher(scheduler, metrics, resource_attr=resource_attr)
    return searcher, (SyneTuneTrialScheduler(searcher) if multi_fidelity else FIFOScheduler())
