"""``plm-nas nas``: standard NAS, a Syne Tune tuning job whose trials each fine-tune one sub-network on its own.

Every trial (:mod:`benchmarks.nas.trial`, a separate process started by Syne Tune's ``LocalBackend``)
extracts its sub-network from the pre-trained model, fine-tunes it and reports validation error, test error
and the cost fields after every epoch. The searcher (any of :data:`baselines.searchers.SEARCHERS`, MO-ASHA
included, which stops trials early on ``epoch``) minimises (validation error, size objective). The initial
design is [largest, smallest, midpoint]. ``--workers N`` runs N trials at once, each with
``--threads // N`` torch threads; the budget is wall-clock seconds (``--max-wallclock``: running trials are
stopped when it is spent) and/or a number of trials (``--max-trials``: started trials finish).

Outputs in ``--output-dir``:

* ``results.csv``: the tidy results table with ONE ROW PER TRIAL AND EPOCH (``epoch`` filled; ``runtime_s``
  is when the epoch was reported), so that hypervolume over time can be computed. Rows are ordered by trial,
  then epoch; a trial is identified by (``run_id``, ``config``). The per-trial result of the method is the
  trial's best-validation epoch row (``plotting.hypervolume.best_epoch_rows``), and ``pareto`` is True
  exactly for best-epoch rows on the front of all trials' best-epoch rows. The file is rewritten atomically
  after every reported epoch.
* ``run.json`` (arguments, versions), ``trial_settings.json`` (what every trial shares), and
  ``syne-tune/`` (Syne Tune's own records and one folder per trial with its logs). With ``--save-models``
  a trial keeps its best epoch's model in ``syne-tune/TRIAL_ID/best_model`` for ``plm-nas export``.
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
from tqdm.auto import tqdm
from syne_tune import StoppingCriterion, Tuner
from syne_tune.backend import LocalBackend
from syne_tune.backend.trial_status import Trial
from syne_tune.constants import ST_TUNER_START_TIMESTAMP, ST_WORKER_TIMESTAMP, SYNE_TUNE_ENV_FOLDER
from syne_tune.optimizer.scheduler import TrialScheduler, TrialSuggestion
from syne_tune.results_callback import StoreResultsCallback
from syne_tune.tuner_callback import TunerCallback

from benchmarks.nas import trial as nas_trial
from benchmarks.nas.trial import TRIAL_SETTINGS_ENV, TrialSettings
from benchmarks.objectives import (
    add_size_objective_argument,
    config_cost,
    initial_design,
    objective_names,
    plain_config,
)
from benchmarks.ray_cluster import environment
from benchmarks.results import RESULTS_FILE, ResultRow, mark_pareto_best_epochs, rows_to_frame, write_atomic
from benchmarks.runinfo import PROJECT_ROOT, write_run_info
from benchmarks.tasks.registry import get_task

KIND = "standard"
SETTINGS_FILE = "trial_settings.json"
SYNE_TUNE_DIR = "syne-tune"  # Syne Tune's experiment folder inside the output directory
RESOURCE_ATTR = "epoch"
DEFAULT_SEARCHER = "random_search"
DEFAULT_SEARCH_SPACE = "small"
DEVICES = ("cpu", "cuda", "auto")
ENTRY_POINT = Path(nas_trial.__file__).resolve()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from baselines.searchers import SEARCHERS
    from search_spaces import SEARCH_SPACES

    parser.add_argument("--model", default="minilm", help="hub name or local folder (default: embedded MiniLM-L6)")
    parser.add_argument("--task", required=True, help="task name, e.g. rte, mrpc, stsb")
    parser.add_argument("--data-dir", default=None, help="local copy of the data (default: $GLUE_DIR for GLUE, else the hub)")
    parser.add_argument("--output-dir", required=True, type=Path, help="folder for results.csv, run.json and trial logs")
    parser.add_argument("--search-space", default=DEFAULT_SEARCH_SPACE, choices=tuple(SEARCH_SPACES))
    parser.add_argument("--searcher", default=DEFAULT_SEARCHER, choices=tuple(SEARCHERS))
    add_size_objective_argument(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the searcher and of every trial's fine-tuning")
    parser.add_argument("--dataset-seed", type=int, default=0, help="seed of the 70/30 train/validation split")
    parser.add_argument("--run-id", default=None, help="run identifier in the results (default: from the settings)")
    budget = parser.add_argument_group("budget (give at least one)")
    budget.add_argument("--max-wallclock", type=float, default=None, help="seconds; running trials are stopped then")
    budget.add_argument("--max-trials", type=int, default=None, help="number of trials; started trials finish")
    parallel = parser.add_argument_group("parallelism")
    parallel.add_argument("--workers", type=int, default=1, help="trials run in parallel")
    parallel.add_argument("--threads", type=int, default=None,
                          help="CPU threads in all (default: all cores); each trial gets threads // workers")
    parallel.add_argument("--device", default="cpu", choices=DEVICES, help="device of every trial")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parallel.add_argument("--poll-interval", type=float, default=2.0, help="seconds between Syne Tune's polls")
    protocol = parser.add_argument_group("fine-tuning protocol of every trial (defaults: the paper's)")
    protocol.add_argument("--epochs", type=int, default=5, help="epochs per trial (MO-ASHA's maximum resource)")
    protocol.add_argument("--lr", type=float, default=2e-5, help="AdamW learning rate")
    protocol.add_argument("--batch-size", type=int, default=8)
    protocol.add_argument("--eval-batch-size", type=int, default=32)
    protocol.add_argument("--weight-decay", type=float, default=0.0)
    protocol.add_argument("--warmup-ratio", type=float, default=0.0, help="fraction of steps of linear warm-up")
    protocol.add_argument("--max-length", type=int, default=128, help="maximum tokens per example")
    protocol.add_argument("--seq-len", type=int, default=None, help="sequence length of MAC counts (default: --max-length)")
    protocol.add_argument("--max-train-samples", type=int, default=None, help="seeded subset of the training split")
    protocol.add_argument("--max-valid-samples", type=int, default=None,
                          help="seeded subset of the validation split (default: 2,048 for large tasks, else all)")
    protocol.add_argument("--max-test-samples", type=int, default=None, help="seeded subset of the test split")
    parser.add_argument("--save-models", action="store_true",
                        help="every trial keeps its best epoch's extracted model (for plm-nas export)")
    backend = parser.add_argument_group("backend (where trials run)")
    backend.add_argument("--backend", default="local", choices=tuple(BACKENDS),
                         help="local: Syne Tune processes on this machine; ray: Ray Tune trials on a Ray cluster")
    backend.add_argument("--ray-address", default=None,
                         help="HOST:PORT of a running Ray cluster (default: start a loopback-only Ray on this machine)")
    backend.add_argument("--cpus-per-trial", type=int, default=None,
                         help="Ray: CPUs (and torch threads) of each trial (default: --threads // --workers)")
    backend.add_argument("--gpus-per-trial", type=float, default=None, help="Ray: GPUs of each trial (>0: device cuda)")
    backend.add_argument("--max-failures", type=int, default=2,
                         help="Ray: restarts of a failed trial from its last epoch checkpoint")
    backend.add_argument("--resume", action="store_true", help="Ray: continue the interrupted run in --output-dir")


# ------------------------------------------------------------------------------------------------ settings


def check_budget(max_wallclock: float | None, max_trials: int | None) -> None:
    """At least one budget, each positive."""
    if max_wallclock is None and max_trials is None:
        raise ValueError("give a budget: --max-wallclock SECONDS and/or --max-trials N")
    if max_wallclock is not None and max_wallclock <= 0:
        raise ValueError(f"--max-wallclock must be positive, got {max_wallclock}")
    if max_trials is not None and max_trials < 1:
        raise ValueError(f"--max-trials must be >= 1, got {max_trials}")


def threads_per_trial(total_threads: int | None, workers: int) -> int:
    """Torch threads of one trial: all threads split evenly over the workers, at least one each."""
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    total = total_threads if total_threads is not None else (os.cpu_count() or 1)
    if total < 1:
        raise ValueError(f"--threads must be >= 1, got {total}")
    return max(1, total // workers)


def trial_settings(args: argparse.Namespace) -> TrialSettings:
    """The settings every trial of this run shares."""
    from supernet.loading import resolve_model_name

    return TrialSettings(
        model=resolve_model_name(args.model),
        task=args.task,
        search_space=args.search_space,
        size_objective=args.size_objective,
        data_dir=str(Path(args.data_dir).resolve()) if args.data_dir else None,
        dataset_seed=args.dataset_seed,
        seed=args.seed,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        eval_batch_size=args.eval_batch_size,
        weight_decay=args.weight_decay,
        warmup_ratio=args.warmup_ratio,
        max_length=args.max_length,
        max_train_samples=args.max_train_samples,
        max_valid_samples=args.max_valid_samples,
        max_test_samples=args.max_test_samples,
        seq_len=args.seq_len or args.max_length,
        threads=threads_per_trial(args.threads, args.workers),
        device=args.device,
        save_models=args.save_models,
    )


def default_run_id(args: argparse.Namespace) -> str:
    return f"nas-{args.searcher}-{args.search_space}-{get_task(args.task).name}-seed{args.seed}"


# ------------------------------------------------------------------------------------- scheduling helpers


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


# --------------------------------------------------------------------------------------------- results


@dataclass
class RowMaker:
    """Turns a trial's reported epoch into a results row (costs computed here, from the config)."""

    space: Any
    args: argparse.Namespace
    run_id: str
    task: str  # the registered task name
    seq_len: int

    def __call__(self, config: Mapping[str, Any], result: Mapping[str, Any], runtime_s: float) -> ResultRow:
        config = plain_config({key: config[key] for key in self.space.keys})
        cost = config_cost(self.space, config, seq_len=self.seq_len)
        return ResultRow(
            run_id=self.run_id,
            kind=KIND,
            method=self.args.searcher,
            searcher=self.args.searcher,
            search_space=self.args.search_space,
            strategy="",
            task=self.task,
            model=str(self.args.model),
            seed=self.args.seed,
            config=config,
            valid_error=float(result["valid_error"]),
            test_error=float(result["test_error"]),
            runtime_s=float(runtime_s),
            size_objective=self.args.size_objective,
            epoch=float(result[RESOURCE_ATTR]),
            **cost.as_row_fields(),
        )


@dataclass
class EpochRows:
    """Every reported epoch as a results row, keyed by (trial number, epoch), written atomically on each change.

    Shared by both backends: a trial reported again for an epoch (a retried trial) replaces that row.
    """

    row_maker: RowMaker
    path: Path
    rows: dict[tuple[int, float], ResultRow] = field(default_factory=dict)

    @property
    def num_trials(self) -> int:
        return len({trial for trial, _ in self.rows})

    def add(self, trial: int, config: Mapping[str, Any], result: Mapping[str, Any], runtime_s: float) -> pd.DataFrame:
        """Record one reported epoch and rewrite the table; returns the table."""
        row = self.row_maker(config, result, runtime_s)
        self.rows[(trial, row.epoch)] = row
        frame = self.frame()
        write_atomic(frame, self.path)
        return frame

    def frame(self) -> pd.DataFrame:
        """Rows ordered by trial, then epoch, with ``pareto`` over the trials' best epochs."""
        ordered = [self.rows[key] for key in sorted(self.rows)]
        return mark_pareto_best_epochs(rows_to_frame(ordered))


def progress_bar(enabled: bool) -> tqdm:
    return tqdm(desc="standard NAS", unit="epoch", disable=not enabled)


def show_progress(bar: tqdm | None, table: EpochRows, frame: pd.DataFrame) -> None:
    if bar is not None:
        bar.update(1)
        bar.set_postfix(trials=table.num_trials, front=int(frame["pareto"].sum()), refresh=False)


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


# ------------------------------------------------------------------------------------------------- run


@dataclass
class NasSetup:
    """What both backends build from the arguments: trial settings, search space, scheduler, row maker."""

    settings: TrialSettings
    space: Any
    scheduler: TrialScheduler  # without the trial limit (the local backend adds it, Ray counts trials itself)
    row_maker: RowMaker


def build_setup(args: argparse.Namespace, output_dir: Path, threads: int | None = None,
                device: str | None = None) -> NasSetup:
    """Check the arguments, write the trial settings, and build the searcher's scheduler and the row maker."""
    from baselines.searchers import make_scheduler
    from search_spaces import get_search_space
    from search_spaces.shape import ModelShape
    from supernet.loading import load_config

    task = get_task(args.task)
    settings = trial_settings(args)
    if threads is not None or device is not None:
        settings = replace(settings, threads=threads or settings.threads, device=device or settings.device)
    shape = ModelShape.from_config(load_config(settings.model, num_labels=task.num_labels), head=task.head)
    space = get_search_space(args.search_space, shape)
    settings.write(output_dir / SETTINGS_FILE)
    scheduler = make_scheduler(
        args.searcher,
        space.config_space,
        metrics=objective_names(args.size_objective),
        points_to_evaluate=initial_design(space),
        random_seed=args.seed,
        max_t=args.epochs,
        resource_attr=RESOURCE_ATTR,
        mode="standard",
    )
    row_maker = RowMaker(space=space, args=args, run_id=args.run_id or default_run_id(args), task=task.name,
                         seq_len=settings.seq_len)
    return NasSetup(settings, space, scheduler, row_maker)


def build_tuner(args: argparse.Namespace, output_dir: Path) -> tuple[Tuner, ResultsTable]:
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


def run(args: argparse.Namespace) -> int:
    """Run standard NAS on the chosen backend."""
    return BACKENDS[getattr(args, "backend", "local")](args)


def run_ray(args: argparse.Namespace) -> int:
    from benchmarks.nas import ray_backend as ray_nas

    return ray_nas.run(args)


def run_local(args: argparse.Namespace) -> int:
    """Run the tuning job with Syne Tune's local backend; write results.csv (as results come), run.json and
    the trial settings."""
    ray_only = [flag for flag, value in (("--ray-address", getattr(args, "ray_address", None)),
                                         ("--cpus-per-trial", getattr(args, "cpus_per_trial", None)),
                                         ("--gpus-per-trial", getattr(args, "gpus_per_trial", None)),
                                         ("--resume", getattr(args, "resume", False))) if value]
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
    write_run_info(output_dir, args, seed=args.seed, command_name="nas")
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


BACKENDS = {"local": run_local, "ray": run_ray}
