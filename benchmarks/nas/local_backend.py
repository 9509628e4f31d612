"""Standard NAS on Syne Tune's local backend: every trial a process on this machine, results as they come."""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd
from syne_tune import StoppingCriterion, Tuner
from syne_tune.backend import LocalBackend
from syne_tune.backend.trial_status import Trial
from syne_tune.constants import ST_TUNER_START_TIMESTAMP, ST_WORKER_TIMESTAMP, SYNE_TUNE_ENV_FOLDER
from syne_tune.optimizer.scheduler import TrialScheduler, TrialSuggestion
from syne_tune.results_callback import StoreResultsCallback
from syne_tune.tuner_callback import TunerCallback
from tqdm.auto import tqdm

from benchmarks.nas import trial as nas_trial
from benchmarks.nas.common import (
    SETTINGS_FILE,
    EpochRows,
    NasSettings,
    RowMaker,
    build_setup,
    check_budget,
    progress_bar,
    show_progress,
)
from benchmarks.nas.trial import TRIAL_SETTINGS_ENV
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


class ResultsTable(TunerCallback):
    """Syne Tune callback collecting every reported epoch into :class:`EpochRows`."""

    def __init__(self, row_maker: RowMaker, path: Path, progress: bool = True) -> None:
        self.table = EpochRows(row_maker, path)
        self.start = time.time()
        self.progress = progress
        self.bar: tqdm | None = None

    @property
    def num_trials(self) -> int:
        return self.table.num_trials

    def on_tuning_start(self, tuner: Any) -> None:
        self.start = float(tuner.metadata.get(ST_TUNER_START_TIMESTAMP, time.time()))
        self.bar = progress_bar(self.progress)

    def on_tuning_end(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def on_trial_result(self, trial: Trial, status: str, result: dict[str, Any], decision: str) -> None:
        runtime = float(result.get(ST_WORKER_TIMESTAMP, time.time())) - self.start
        frame = self.table.add(trial.trial_id, trial.config, result, runtime)
        show_progress(self.bar, self.table, frame)

    def frame(self) -> pd.DataFrame:
        return self.table.frame()


def build_tuner(args: NasSettings, output_dir: Path) -> tuple[Tuner, ResultsTable]:
    """Build the Syne Tune tuner and its results table (see :func:`build_setup`).

    Call inside :func:`environment` with ``SYNETUNE_FOLDER`` set (Syne Tune reads it when the tuner is built).
    """
    setup = build_setup(args, output_dir)
    scheduler, row_maker = setup.scheduler, setup.row_maker
    if args.max_trials is not None:
        scheduler = TrialLimit(scheduler, args.max_trials)
    table = ResultsTable(row_maker, output_dir / RESULTS_FILE, progress=not args.no_progress)
    tuner = Tuner(
        # GPU rotation asks nvidia-smi and leaves a std.out file in the working directory: only for GPUs.
        trial_backend=LocalBackend(entry_point=str(ENTRY_POINT), pass_args_as_json=True,
                                   rotate_gpus=args.device != "cpu"),
        scheduler=scheduler,
        stop_criterion=StoppingCriterion(max_wallclock_time=args.max_wallclock),
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
    return tuner, table


def run_local(args: NasSettings, arguments: argparse.Namespace | None = None) -> int:
    """Run the tuning job with Syne Tune's local backend; write results.csv (as results come), run.json and
    the trial settings."""
    ray_only = [flag for flag, value in (("--ray-address", args.ray_address), ("--cpus-per-trial", args.cpus_per_trial),
                                         ("--gpus-per-trial", args.gpus_per_trial), ("--resume", args.resume)) if value]
    if ray_only:
        raise ValueError(f"{', '.join(ray_only)} only apply to --backend ray")
    check_budget(args.max_wallclock, args.max_trials)
    output_dir = Path(args.output_dir).resolve()
    _check_no_spaces(ENTRY_POINT, output_dir)
    if (output_dir / SYNE_TUNE_DIR).exists() or (output_dir / RESULTS_FILE).exists():
        raise ValueError(
            f"{output_dir} already holds a standard-NAS run (trial logs would mix); use another --output-dir"
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    write_run_info(output_dir, arguments if arguments is not None else vars(args), seed=args.seed, command_name="nas")
    started = time.perf_counter()
    variables = {
        SYNE_TUNE_ENV_FOLDER: str(output_dir),  # Syne Tune's experiment folder becomes OUTPUT/syne-tune
        TRIAL_SETTINGS_ENV: str(output_dir / SETTINGS_FILE),
        "PYTHONPATH": _with_project_on_path(os.environ.get("PYTHONPATH")),
    }
    with environment(**variables):
        tuner, table = build_tuner(args, output_dir)
        tuner.run()
    frame = table.frame()
    write_atomic(frame, output_dir / RESULTS_FILE)
    print(
        f"standard NAS: {table.num_trials} trial(s), {len(frame)} epoch row(s), "
        f"{int(frame['pareto'].sum())} on the front, {time.perf_counter() - started:.0f} s; "
        f"results in {output_dir / RESULTS_FILE}",
        flush=True,
    )
    return 0
