"""The local backend's scheduler journal: every call to the searcher, appended as it happens, so ``--resume`` can
replay an interrupted run's searcher call by call and continue its unfinished trials.

Syne Tune 0.16 cannot restore a killed tuner, and the searchers keep their state (random generators, models,
populations) in memory. The searchers are deterministic given their seed and the sequence of calls, so the
journal records that sequence (``suggest`` with the config it returned, ``add``, ``result`` with the decision,
``complete``, ``error``, ``remove``) in *logical* trial ids, the ids an uninterrupted run would have used; a
fresh scheduler fed the same calls is in the same state and goes on proposing what it would have. One JSON line
per event, flushed at once: a SIGKILL loses at most the line being written, which :func:`read_journal` skips.
"""
from __future__ import annotations

import datetime
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

from syne_tune.backend.trial_status import Trial
from syne_tune.constants import ST_WORKER_TIMESTAMP
from syne_tune.optimizer.scheduler import SchedulerDecision, TrialScheduler, TrialSuggestion

from baselines.searchers.ask_tell import config_key, plain_config

JOURNAL_FILE = "scheduler_journal.jsonl"
EPOCH = "epoch"  # benchmarks.nas.common.RESOURCE_ATTR
HEARTBEAT_S = 30.0  # the elapsed time of a killed session is known to within this


def read_journal(path: Path) -> list[dict[str, Any]]:
    """The journal's events in order; a last line cut short by a kill is dropped."""
    if not path.is_file():
        return []
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            break  # only the last line can be partial: events after it were never written
    return events


def _json_safe(result: dict[str, Any]) -> dict[str, Any]:
    """A reported result with plain values (Syne Tune adds NumPy scalars and timestamps)."""
    return {key: value for key, value in plain_config(result).items()
            if isinstance(value, (int, float, str, bool)) or value is None}


@dataclass
class Restart:
    """An unfinished trial to continue: its logical id, config, and the backend trial holding its checkpoint."""

    trial: int
    config: dict[str, Any]
    backend_trial: int
    told_epoch: float = 0.0  # the last epoch the searcher has seen


@dataclass
class ReplayedRun:
    """What replaying a journal gives: the scheduler in its interrupted state and what is left to do."""

    restarts: list[Restart]
    next_trial: int  # the logical id of the next new trial
    elapsed_s: float  # wall-clock seconds the earlier sessions ran
    results: list[tuple[int, dict[str, Any], dict[str, Any], float]] = field(default_factory=list)
    # (logical trial, config, reported result, runtime_s) of every result the searcher was told, in order
    finished_backend_trials: list[int] = field(default_factory=list)  # folders whose checkpoints are not needed


def replay(scheduler: TrialScheduler, events: list[dict[str, Any]]) -> ReplayedRun:
    """Feed ``events`` to a fresh ``scheduler`` (same searcher and seed) as the interrupted run did.

    Raises ``ValueError`` if the scheduler suggests another config than the journal recorded (another seed,
    searcher or search space, or a searcher that is not deterministic).
    """
    trials: dict[int, Trial] = {}
    configs: dict[int, dict[str, Any]] = {}
    backend: dict[int, int] = {}  # logical trial -> the backend trial holding its latest checkpoint
    folders: dict[int, list[int]] = {}  # logical trial -> every backend trial that ran it
    told: dict[int, float] = {}
    finished: set[int] = set()
    results: list[tuple[int, dict[str, Any], dict[str, Any], float]] = []
    elapsed, session_start, last_time = 0.0, None, None
    for event in events:
        kind, trial_id = event["event"], event.get("trial")
        if kind == "session":
            if session_start is not None and last_time is not None:
                elapsed += last_time - session_start
            session_start = last_time = float(event["time"])
            continue
        last_time = float(event["time"])
        if kind == "suggest":
            suggestion = scheduler.suggest()
            got = None if suggestion is None else config_key(suggestion.config)
            want = None if event["config"] is None else config_key(event["config"])
            if got != want:
                raise ValueError(f"cannot resume: the searcher now suggests {got} where the interrupted run got "
                                 f"{want}; resume with the same searcher, seed, search space and model")
        elif kind == "add":
            configs[trial_id] = event["config"]
            backend[trial_id] = event["backend_trial"]
            folders[trial_id] = [event["backend_trial"]]
            trials[trial_id] = Trial(trial_id=trial_id, config=dict(event["config"]),
                                     creation_time=datetime.datetime.now())
            scheduler.on_trial_add(trials[trial_id])
        elif kind == "restart":
            backend[trial_id] = event["backend_trial"]
            folders[trial_id].append(event["backend_trial"])
        elif kind == "result":
            scheduler.on_trial_result(trials[trial_id], event["result"])
            told[trial_id] = float(event["result"].get(EPOCH, told.get(trial_id, 0.0)))
            results.append((trial_id, configs[trial_id], event["result"], float(event["runtime_s"])))
            if event["decision"] == SchedulerDecision.STOP:
                finished.add(trial_id)
        elif kind in ("complete", "error", "remove"):
            if kind == "complete":
                scheduler.on_trial_complete(trials[trial_id], event["result"])
            elif kind == "error":
                scheduler.on_trial_error(trials[trial_id])
            else:
                scheduler.on_trial_remove(trials[trial_id])
            finished.add(trial_id)
    if session_start is not None and last_time is not None:
        elapsed += last_time - session_start
    restarts = [Restart(trial, configs[trial], backend[trial], told.get(trial, 0.0))
                for trial in sorted(configs) if trial not in finished]
    done = sorted(folder for trial in finished for folder in folders.get(trial, []))
    return ReplayedRun(restarts=restarts, next_trial=max(configs, default=-1) + 1, elapsed_s=elapsed,
                       results=results, finished_backend_trials=done)


class JournaledScheduler(TrialScheduler):
    """Passes Syne Tune's calls on to ``scheduler`` in logical trial ids and journals each; when resuming, first
    restarts the unfinished trials (from their checkpoints), telling the searcher only epochs it has not seen.
    """

    def __init__(self, scheduler: TrialScheduler, journal: TextIO, resumed: ReplayedRun | None = None,
                 checkpoint_exists: Callable[[int], bool] | None = None) -> None:
        super().__init__(random_seed=scheduler.random_seed)
        self.scheduler = scheduler
        self.journal = journal
        self.restarts = list(resumed.restarts) if resumed is not None else []
        self.next_trial = resumed.next_trial if resumed is not None else 0
        self.told = {restart.trial: restart.told_epoch for restart in self.restarts}
        self.logical: dict[int, int] = {}  # backend trial id -> logical trial id
        self.trials: dict[int, Trial] = {}  # logical id -> the trial the searcher knows
        self.restarted_from: dict[int, int] = {}  # backend id of a restart -> backend id it continues
        self.checkpoint_exists = checkpoint_exists or (lambda backend_trial: False)
        self.start = time.time()
        self.elapsed_s = resumed.elapsed_s if resumed is not None else 0.0
        self._starting: Restart | None = None
        self.last_write = self.start
        self._write("session")

    def _write(self, event: str, **fields: Any) -> None:
        self.last_write = time.time()
        self.journal.write(json.dumps({"event": event, "time": self.last_write, **fields}) + "\n")
        self.journal.flush()

    def heartbeat(self, every_s: float = HEARTBEAT_S) -> None:
        """Note that the run is alive (at most every ``every_s``), so a resumed run knows how long it ran."""
        if time.time() - self.last_write >= every_s:
            self._write("alive")

    def runtime_s(self, result: dict[str, Any] | None = None) -> float:
        """Seconds since the run began, over all sessions, at which the trial reported ``result`` (else now)."""
        reported = float((result or {}).get(ST_WORKER_TIMESTAMP, time.time()))
        return self.elapsed_s + reported - self.start

    def _known(self, trial: Trial) -> Trial:
        return self.trials[self.logical[trial.trial_id]]

    def suggest(self) -> TrialSuggestion | None:
        if self.restarts:
            self._starting = self.restarts.pop(0)
            source = self._starting.backend_trial
            return TrialSuggestion.start_suggestion(
                config=dict(self._starting.config),
                checkpoint_trial_id=source if self.checkpoint_exists(source) else None)
        self._starting = None
        suggestion = self.scheduler.suggest()
        if suggestion is not None and not suggestion.spawn_new_trial_id:
            raise NotImplementedError("the journal does not record resumed (paused) trials")
        self._write("suggest", config=None if suggestion is None else plain_config(suggestion.config))
        return suggestion

    def on_trial_add(self, trial: Trial) -> None:
        restart, self._starting = self._starting, None
        if restart is not None:  # the searcher already knows this trial
            self.logical[trial.trial_id] = restart.trial
            self.restarted_from[trial.trial_id] = restart.backend_trial
            self._write("restart", trial=restart.trial, backend_trial=trial.trial_id)
            if restart.trial not in self.trials:
                self.trials[restart.trial] = Trial(trial_id=restart.trial, config=dict(restart.config),
                                                   creation_time=trial.creation_time)
            return
        number, self.next_trial = self.next_trial, self.next_trial + 1
        self.logical[trial.trial_id] = number
        self.trials[number] = Trial(trial_id=number, config=dict(trial.config), creation_time=trial.creation_time)
        self._write("add", trial=number, backend_trial=trial.trial_id, config=plain_config(trial.config))
        self.scheduler.on_trial_add(self.trials[number])

    def is_told(self, backend_trial: int, result: dict[str, Any]) -> bool:
        """Whether the searcher already saw this epoch (a restarted trial reports its checkpointed epochs again)."""
        number = self.logical[backend_trial]
        return float(result.get(EPOCH, 0.0)) <= self.told.get(number, 0.0)

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> str:
        if self.is_told(trial.trial_id, result):
            return SchedulerDecision.CONTINUE
        known = self._known(trial)
        decision = self.scheduler.on_trial_result(known, result)
        self.told[known.trial_id] = float(result.get(EPOCH, 0.0))
        self._write("result", trial=known.trial_id, result=_json_safe(result), decision=decision,
                    runtime_s=self.runtime_s(result))
        return decision

    def on_trial_complete(self, trial: Trial, result: dict[str, Any]) -> None:
        known = self._known(trial)
        self.scheduler.on_trial_complete(known, result)
        self._write("complete", trial=known.trial_id, result=_json_safe(result))

    def on_trial_error(self, trial: Trial) -> None:
        known = self._known(trial)
        self.scheduler.on_trial_error(known)
        self._write("error", trial=known.trial_id)

    def on_trial_remove(self, trial: Trial) -> None:
        known = self._known(trial)
        self.scheduler.on_trial_remove(known)
        self._write("remove", trial=known.trial_id)

    def metric_names(self) -> list[str]:
        return self.scheduler.metric_names()

    def metric_mode(self) -> str | list[str]:
        return self.scheduler.metric_mode()

    def metadata(self) -> dict[str, Any]:
        return self.scheduler.metadata()
