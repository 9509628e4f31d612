"""``plm-nas nas --backend ray``: the same standard NAS as the local backend, its trials run by Ray Tune.

The search stays with our Syne Tune schedulers (:mod:`baselines.searchers.ray_tune` adapts them to Ray Tune);
Ray Tune places trials on the cluster's nodes, ``--workers`` at a time, each with ``--cpus-per-trial`` CPUs
and ``--gpus-per-trial`` GPUs. Every trial runs :func:`benchmarks.nas.trial.run_trial`, saving the trainer's
exact state after each epoch and reporting the epoch with that state as a Ray checkpoint; a trial whose
worker dies is restarted from its last checkpoint (``--max-failures`` times), and ``--resume`` continues an
interrupted experiment (``Tuner.restore``: finished trials are kept, unfinished ones continue from their
checkpoints, the searcher's state and the results table are restored).

Outputs in ``--output-dir``: ``results.csv`` (the same tidy table as the local backend, one row per trial and
epoch, rewritten atomically as results come), ``run.json``, ``trial_settings.json`` and ``ray/`` (Ray Tune's
experiment: one folder per trial, named by its trial id, with its checkpoints and, with ``--save-models``,
its best model). On a multi-node cluster ``--output-dir`` must be on storage that every node sees.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from benchmarks.nas.common import (
    SETTINGS_FILE,
    EpochRows,
    NasSettings,
    RowMaker,
    build_setup,
    check_budget,
    progress_bar,
    settings_changes,
    show_progress,
    threads_per_trial,
    trial_settings,
)
from benchmarks.nas.trial import TrialSettings, run_trial
from benchmarks.results import RESULTS_FILE, read_results
from benchmarks.runinfo import write_run_info

RAY_DIR = "ray"  # Ray Tune's experiment folder inside the output directory
TRAINER_CHECKPOINT = "checkpoint.pt"  # supernet.training.CHECKPOINT_FILE


def ray_trial(config: dict[str, Any], settings: TrialSettings) -> None:
    """Ray Tune function trainable: one standard-NAS trial, checkpointed and reported after every epoch."""
    from ray import tune

    from benchmarks.verbosity import configure_output

    configure_output()  # a Ray worker is a process of its own: quiet loading there too
    trial_dir = Path(tune.get_context().get_trial_dir())
    work = Path(tempfile.mkdtemp(prefix="plm-nas-trial-"))  # the trainer's checkpoint, reported to Ray each epoch
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            shutil.copy2(Path(folder) / TRAINER_CHECKPOINT, work / TRAINER_CHECKPOINT)

    def report(**fields: Any) -> None:
        tune.report(fields, checkpoint=tune.Checkpoint.from_directory(str(work)))

    try:
        run_trial(settings, config, report, trial_dir=trial_dir, checkpoint_dir=work, resume=checkpoint is not None)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def trial_dirname(trial: Any) -> str:
    """Trial folders named by trial id (Ray's default name holds the config, 9k keys in the large space)."""
    return str(trial.trial_id)


def _ray_callback_base() -> type:
    from ray.tune import Callback

    return Callback


class RayResultsTable(_ray_callback_base()):  # type: ignore[misc]
    """Ray Tune callback writing every reported epoch to the results table (rows survive ``Tuner.restore``)."""

    def __init__(self, row_maker: RowMaker, path: Path, searcher: Any, progress: bool = True) -> None:
        self.table = EpochRows(row_maker, path)
        self.searcher = searcher  # its Ray -> Syne Tune trial ids give the trials' suggestion order
        self.seen: dict[str, int] = {}
        self.start: float | None = None
        self.progress = progress
        self.bar: tqdm | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "bar": None}

    def setup(self, **info: Any) -> None:
        if self.start is None:
            self.start = time.time()
        self.bar = progress_bar(self.progress)

    def trial_number(self, trial_id: str) -> int:
        """The trial's Syne Tune id (suggestion order), or the order of first results for unknown trials."""
        trial = self.searcher.trials.get(trial_id)
        if trial is not None:
            return int(trial.trial_id)
        return self.seen.setdefault(trial_id, 1_000_000 + len(self.seen))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        runtime = time.time() - (self.start if self.start is not None else time.time())
        frame = self.table.add(self.trial_number(trial.trial_id), trial.config, result, runtime)
        show_progress(self.bar, self.table, frame)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """A finished trial is never restored: free its checkpoints (a MiniLM trial's state is ~270 MB)."""
        for folder in Path(str(trial.path)).glob("checkpoint_*"):
            shutil.rmtree(folder, ignore_errors=True)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if self.bar is not None:
            self.bar.close()

    def get_state(self) -> dict[str, Any]:
        return {"rows": dict(self.table.rows), "seen": dict(self.seen), "start": self.start}

    def set_state(self, state: dict[str, Any]) -> None:
        self.table.rows = dict(state["rows"])
        self.seen = dict(state["seen"])
        self.start = state["start"]


def ray_resources(args: NasSettings) -> tuple[int, float, str]:
    """CPUs (= torch threads) and GPUs of each trial, and its device."""
    cpus = args.cpus_per_trial or threads_per_trial(args.threads, args.workers)
    gpus = args.gpus_per_trial or 0
    if cpus < 1 or gpus < 0:
        raise ValueError(f"--cpus-per-trial must be >= 1 and --gpus-per-trial >= 0, got {cpus} and {gpus}")
    return cpus, gpus, "cuda" if gpus > 0 else args.device


def ray_settings(args: NasSettings, output_dir: Path) -> tuple[Any, int, float]:
    """The run's setup with threads = CPUs per trial and device from the GPUs; (setup, cpus, gpus) per trial."""
    cpus, gpus, device = ray_resources(args)
    setup = build_setup(args, output_dir, threads=cpus, device=device)
    return setup, cpus, gpus


def run_ray(args: NasSettings, arguments: argparse.Namespace | None = None) -> int:
    """Run (or resume) the tuning job on Ray; write results.csv, run.json and the trial settings."""
    from baselines.searchers import SEARCHERS
    from baselines.searchers.ray_tune import ray_search
    from benchmarks.ray_cluster import ray_session, require_ray

    require_ray()
    from ray import tune

    check_budget(args.max_wallclock, args.max_trials)
    output_dir = Path(args.output_dir).resolve()
    experiment = output_dir / RAY_DIR
    if not args.resume and (experiment.exists() or (output_dir / RESULTS_FILE).exists()):
        raise ValueError(f"{output_dir} already holds a standard-NAS run; use --resume to continue it, "
                         "or another --output-dir")
    stored = None
    if args.resume:
        if not tune.Tuner.can_restore(str(experiment)):
            raise ValueError(f"nothing to resume: {experiment} holds no Ray Tune experiment")
        stored = TrialSettings.read(output_dir / SETTINGS_FILE)
        cpus, _, device = ray_resources(args)
        now = replace(trial_settings(args), threads=cpus, device=device)
        if stored != now:  # refused before any file is written: the run stays as it was
            raise ValueError(f"cannot resume with other trial settings {settings_changes(stored, now)} "
                             "(earlier, now); use the earlier run's arguments")
    output_dir.mkdir(parents=True, exist_ok=True)
    setup, cpus, gpus = ray_settings(args, output_dir)
    write_run_info(output_dir, arguments if arguments is not None else args.record(), seed=args.seed,
                   keep_previous=args.resume, command_name="nas", precision=args.protocol.precision)
    trainable = tune.with_resources(tune.with_parameters(ray_trial, settings=setup.settings),
                                    {"cpu": cpus, "gpu": gpus})
    started = time.perf_counter()
    with ray_session(args.ray_address, num_cpus=args.threads):
        if args.resume:
            tuner = tune.Tuner.restore(str(experiment), trainable=trainable, resume_unfinished=True,
                                       resume_errored=True)
        else:
            searcher, scheduler = ray_search(setup.scheduler, list(setup.scheduler.metric_names()),
                                             multi_fidelity=SEARCHERS[args.searcher].supports_multi_fidelity)
            table = RayResultsTable(setup.row_maker, output_dir / RESULTS_FILE, searcher,
                                    progress=not args.no_progress)
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(
                    search_alg=searcher, scheduler=scheduler, num_samples=args.max_trials or -1,
                    max_concurrent_trials=args.workers, time_budget_s=args.max_wallclock,
                    trial_name_creator=trial_dirname, trial_dirname_creator=trial_dirname,
                ),
                run_config=tune.RunConfig(
                    name=RAY_DIR, storage_path=str(output_dir), callbacks=[table], verbose=0,
                    failure_config=tune.FailureConfig(max_failures=args.max_failures),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                ),
            )
        grid = tuner.fit()
    path = output_dir / RESULTS_FILE
    frame = read_results(path) if path.is_file() else pd.DataFrame()
    failed = sum(1 for result in grid if result.error is not None)
    trials = frame["config"].nunique() if len(frame) else 0
    print(
        f"standard NAS on Ray: {trials} distinct sub-network(s), {len(frame)} epoch row(s), "
        f"{int(frame['pareto'].sum()) if len(frame) else 0} on the front, {failed} failed, "
        f"{time.perf_counter() - started:.0f} s; results in {path}",
        flush=True,
    )
    return 0 if failed == 0 else 1
