"""Standard NAS on Syne Tune's local backend: every trial a process on this machine, results as they come.

Every call to the searcher is journaled (:mod:`benchmarks.nas.journal`) and every trial checkpoints each epoch,
so ``--resume`` continues a killed run: finished trials are kept, the searcher is replayed into the state it
had, and unfinished trials continue from their last epoch in new trial folders beside the old ones.
"""
from __future__ import annotations

import argparse
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import pandas as pd
from syne_tune import StoppingCriterion, Tuner
from syne_tune.backend import LocalBackend
from syne_tune.backend.trial_status import Trial
from syne_tune.constants import SYNE_TUNE_ENV_FOLDER
from syne_tune.optimizer.scheduler import SchedulerDecision, TrialScheduler, TrialSuggestion
from syne_tune.results_callback import StoreResultsCallback
from syne_tune.tuner_callback import TunerCallback
from tqdm.auto import tqdm

from benchmarks.nas import trial as nas_trial
from benchmarks.nas.common import (
    RESOURCE_ATTR,
    SETTINGS_FILE,
    EpochRows,
    NasSettings,
    RowMaker,
    build_setup,
    check_budget,
    progress_bar,
    settings_changes,
    show_progress,
    trial_settings,
)
from benchmarks.nas.journal import JOURNAL_FILE, JournaledScheduler, ReplayedRun, read_journal, replay
from benchmarks.nas.trial import TRIAL_SETTINGS_ENV, TrialSettings
from benchmarks.ray_cluster import environment
from benchmarks.results import RESULTS_FILE, write_atomic
from benchmarks.runinfo import PROJECT_ROOT, write_run_info

SYNE_TUNE_DIR = "syne-tune"  # Syne Tune's experiment folder inside the output directory
ENTRY_POINT = Path(nas_trial.__file__).resolve()


class TrialLimit(TrialScheduler):
    """Delegates to ``scheduler`` but suggests no new trial after ``max_trials``; the tuner lets running ones finish.

    (Syne Tune's ``StoppingCriterion(max_num_trials_started=...)`` would instead stop the trials still running.)
    """

    def __init__(self, scheduler: TrialScheduler, max_trials: int) -> None:
        super().__init__(random_seed=scheduler.random_seed)
        self.scheduler = scheduler
        self.max_trials = max_trials
        self.num_started = 0

    def suggest(self) -> TrialSuggestion | None:
        if self.num_started >= self.max_trials:
            return None
        suggestion = self.scheduler.suggest()
        if suggestion is not None and suggestion.spawn_new_trial_id:
            self.num_started += 1
        return suggestion

    def on_trial_add(self, trial: Trial) -> None:
        self.scheduler.on_trial_add(trial)

    def on_trial_error(self, trial: Trial) -> None:
        self.scheduler.on_trial_error(trial)

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> str:
        return self.scheduler.on_trial_result(trial, result)

    def on_trial_complete(self, trial: Trial, result: dict[str, Any]) -> None:
        self.scheduler.on_trial_complete(trial, result)

    def on_trial_remove(self, trial: Trial) -> None:
        self.scheduler.on_trial_remove(trial)

    def metric_names(self) -> list[str]:
        return self.scheduler.metric_names()

    def metric_mode(self) -> str | list[str]:
        return self.scheduler.metric_mode()

    def metadata(self) -> dict[str, Any]:
        return {**self.scheduler.metadata(), "max_trials": self.max_trials}


def _with_project_on_path(pythonpath: str | None) -> str:
    """``PYTHONPATH`` with this project's root first, so trial scripts import the project."""
    parts = [str(PROJECT_ROOT)] + [p for p in (pythonpath or "").split(os.pathsep) if p and p != str(PROJECT_ROOT)]
    return os.pathsep.join(parts)


def _check_no_spaces(*paths: Path) -> None:
    """Syne Tune's LocalBackend splits its trial command line on spaces: such paths would break it."""
    for path in paths:
        if " " in str(path):
            raise ValueError(
                f"{path} contains a space; Syne Tune's LocalBackend splits trial command lines on spaces, "
                "so the project and --output-dir must be in folders without spaces"
            )


class ContinuingLocalBackend(LocalBackend):
    """Syne Tune's LocalBackend numbering its trials from ``first_trial_id``: a resumed run adds trial folders
    beside the interrupted run's instead of overwriting them."""

    def __init__(self, first_trial_id: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.first_trial_id = first_trial_id

    def new_trial_id(self) -> int:
        return self.first_trial_id + len(self.trial_ids)


def next_trial_folder(experiment: Path) -> int:
    """The first trial id without a folder in Syne Tune's experiment folder."""
    ids = [int(p.name) for p in experiment.iterdir() if p.name.isdigit()] if experiment.is_dir() else []
    return max(ids, default=-1) + 1


class ResultsTable(TunerCallback):
    """Syne Tune callback collecting every reported epoch into :class:`EpochRows`, in logical trial ids.

    Rows of an interrupted run come from its journal; an epoch a restarted trial reports again keeps its row.
    Checkpoints of finished trials are deleted (a MiniLM trial's state is about 270 MB).
    """

    def __init__(self, row_maker: RowMaker, path: Path, scheduler: JournaledScheduler, experiment: Path,
                 resumed: ReplayedRun | None = None, progress: bool = True) -> None:
        self.table = EpochRows(row_maker, path)
        self.scheduler = scheduler
        self.experiment = experiment
        for trial, config, result, runtime in resumed.results if resumed is not None else []:
            self.table.rows[(trial, float(result[RESOURCE_ATTR]))] = row_maker(config, result, runtime)
        self.stopped: set[int] = set(resumed.finished_backend_trials if resumed is not None else ())
        self.progress = progress
        self.bar: tqdm | None = None

    @property
    def num_trials(self) -> int:
        return self.table.num_trials

    def _forget_checkpoint(self, backend_trial: int) -> None:
        shutil.rmtree(self.experiment / str(backend_trial) / "checkpoints", ignore_errors=True)

    def on_tuning_start(self, tuner: Any) -> None:
        for backend_trial in self.stopped:  # finished before an interruption
            self._forget_checkpoint(backend_trial)
        self.bar = progress_bar(self.progress)

    def on_tuning_end(self) -> None:
        for backend_trial in self.stopped:
            self._forget_checkpoint(backend_trial)
        if self.bar is not None:
            self.bar.close()

    def on_loop_end(self) -> None:
        self.scheduler.heartbeat()

    def on_start_trial(self, trial: Trial) -> None:
        source = self.scheduler.restarted_from.get(trial.trial_id)
        if source is not None:  # its checkpoint was copied into the new trial's folder
            self._forget_checkpoint(source)

    def on_trial_result(self, trial: Trial, status: str, result: dict[str, Any], decision: str) -> None:
        if decision == SchedulerDecision.STOP:
            self.stopped.add(trial.trial_id)
        number = self.scheduler.logical[trial.trial_id]
        if (number, float(result[RESOURCE_ATTR])) in self.table.rows:
            return  # an epoch of a restarted trial, recorded before the interruption
        frame = self.table.add(number, trial.config, result, self.scheduler.runtime_s(result))
        show_progress(self.bar, self.table, frame)

    def on_trial_complete(self, trial: Trial, result: dict[str, Any]) -> None:
        self._forget_checkpoint(trial.trial_id)

    def frame(self) -> pd.DataFrame:
        return self.table.frame()


@dataclass
class LocalRun:
    """A local tuning job ready to run: the tuner, its results table and the wall-clock budget left."""

    tuner: Tuner
    table: ResultsTable
    budget_left_s: float | None


def build_tuner(args: NasSettings, output_dir: Path, journal: TextIO,
                events: list[dict[str, Any]] | None = None) -> LocalRun:
    """Build the Syne Tune tuner and its results table (see :func:`build_setup`); with the ``events`` of an
    interrupted run, replay them into the searcher first and continue that run.

    Call inside :func:`environment` with ``SYNETUNE_FOLDER`` set (Syne Tune reads it when the tuner is built).
    """
    setup = build_setup(args, output_dir)
    scheduler, row_maker = setup.scheduler, setup.row_maker
    if args.max_trials is not None:
        scheduler = TrialLimit(scheduler, args.max_trials)
    resumed = replay(scheduler, events) if events else None
    experiment = output_dir / SYNE_TUNE_DIR
    journaled = JournaledScheduler(
        scheduler, journal, resumed, checkpoint_exists=lambda trial: (experiment / str(trial) / "checkpoints").is_dir())
    table = ResultsTable(row_maker, output_dir / RESULTS_FILE, journaled, experiment, resumed,
                         progress=not args.no_progress)
    budget = None if args.max_wallclock is None else args.max_wallclock - journaled.elapsed_s
    tuner = Tuner(
        # GPU rotation asks nvidia-smi and leaves a std.out file in the working directory: only for GPUs.
        trial_backend=ContinuingLocalBackend(first_trial_id=next_trial_folder(experiment),
                                             entry_point=str(ENTRY_POINT), pass_args_as_json=True,
                                             rotate_gpus=args.device != "cpu"),
        scheduler=journaled,
        stop_criterion=StoppingCriterion(max_wallclock_time=budget if budget is None else max(budget, 1e-3)),
        n_workers=args.workers,
        sleep_time=args.poll_interval,
        results_update_interval=max(10.0, args.poll_interval),
        print_update_interval=60.0,
        tuner_name=SYNE_TUNE_DIR,
        suffix_tuner_name=False,
        save_tuner=False,
        callbacks=[StoreResultsCallback(), table],
        metadata={"plm_nas_run_id": row_maker.run_id},
    )
    return LocalRun(tuner, table, budget)


def check_resumable(args: NasSettings, output_dir: Path) -> list[dict[str, Any]]:
    """The journal of the run to continue (empty for a fresh run); refuse to mix two runs in one folder."""
    started = (output_dir / SYNE_TUNE_DIR).exists() or (output_dir / RESULTS_FILE).exists()
    events = read_journal(output_dir / JOURNAL_FILE)
    if not args.resume:
        if started or events:
            raise ValueError(f"{output_dir} already holds a standard-NAS run; use --resume to continue it, "
                             "or another --output-dir")
        return []
    if started and not events:
        raise ValueError(f"cannot resume: {output_dir} holds a standard-NAS run without {JOURNAL_FILE} "
                         "(written since local runs can resume); use another --output-dir")
    return events


def run_local(args: NasSettings, arguments: argparse.Namespace | None = None) -> int:
    """Run (or, with ``--resume``, continue) the tuning job with Syne Tune's local backend; write results.csv
    (as results come), run.json, the trial settings and the scheduler journal."""
    ray_only = [flag for flag, value in (("--ray-address", args.ray_address), ("--cpus-per-trial", args.cpus_per_trial),
                                         ("--gpus-per-trial", args.gpus_per_trial)) if value]
    if ray_only:
        raise ValueError(f"{', '.join(ray_only)} only apply to --backend ray")
    check_budget(args.max_wallclock, args.max_trials)
    output_dir = Path(args.output_dir).resolve()
    _check_no_spaces(ENTRY_POINT, output_dir)
    events = check_resumable(args, output_dir)
    if events:  # before anything is replayed or rewritten
        stored, settings = TrialSettings.read(output_dir / SETTINGS_FILE), trial_settings(args)
        if stored != settings:
            raise ValueError(f"cannot resume with other trial settings {settings_changes(stored, settings)} "
                             "(earlier, now); use the earlier run's arguments")
    output_dir.mkdir(parents=True, exist_ok=True)
    write_run_info(output_dir, arguments if arguments is not None else args.record(), seed=args.seed,
                   keep_previous=bool(events), command_name="nas", precision=args.protocol.precision)
    started = time.perf_counter()
    variables = {
        SYNE_TUNE_ENV_FOLDER: str(output_dir),  # Syne Tune's experiment folder becomes OUTPUT/syne-tune
        TRIAL_SETTINGS_ENV: str(output_dir / SETTINGS_FILE),
        "PYTHONPATH": _with_project_on_path(os.environ.get("PYTHONPATH")),
    }
    with environment(**variables), open(output_dir / JOURNAL_FILE, "a") as journal:
        run = build_tuner(args, output_dir, journal, events)
        if run.budget_left_s is None or run.budget_left_s > 0:
            run.tuner.run()
    frame = run.table.frame()
    write_atomic(frame, output_dir / RESULTS_FILE)
    print(
        f"standard NAS: {run.table.num_trials} trial(s), {len(frame)} epoch row(s), "
        f"{int(frame['pareto'].sum()) if len(frame) else 0} on the front, {time.perf_counter() - started:.0f} s; "
        f"results in {output_dir / RESULTS_FILE}",
        flush=True,
    )
    return 0
