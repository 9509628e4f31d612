"""What both standard-NAS backends share: settings, budget, the trials' settings, results rows and the searcher."""
from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
from syne_tune.optimizer.scheduler import TrialScheduler
from tqdm.auto import tqdm

from baselines.searchers.ask_tell import plain_config
from benchmarks.nas.trial import PROTOCOL_FIELDS, TrialProtocol, TrialSettings
from benchmarks.objectives import config_cost, initial_design, metrics_of_fields, objective_names
from benchmarks.results import ResultRow, mark_pareto_best_epochs, rows_to_frame, write_atomic
from search_spaces import SearchSpace
from search_spaces.latency import LatencyTable

KIND = "standard"
SETTINGS_FILE = "trial_settings.json"
RESOURCE_ATTR = "epoch"
DEFAULT_SEARCHER = "random_search"
DEFAULT_SEARCH_SPACE = "small"


@dataclass(frozen=True)
class NasSettings:
    """Everything ``plm-nas nas`` does, parsed once from its options."""

    task: str
    output_dir: Path
    model: str = "minilm"
    data_dir: str | None = None
    search_space: str = DEFAULT_SEARCH_SPACE
    searcher: str = DEFAULT_SEARCHER
    size_objective: str = "param_fraction"
    seed: int = 0
    run_id: str | None = None
    max_wallclock: float | None = None
    max_trials: int | None = None
    workers: int = 1
    threads: int | None = None
    device: str = "cpu"
    no_progress: bool = False
    poll_interval: float = 2.0
    protocol: TrialProtocol = TrialProtocol()  # the fine-tuning protocol and data of every trial
    seq_len: int | None = None
    save_models: bool = False
    task_definition: dict[str, Any] | None = None  # your own data; None: the registered ``task``
    backend: str = "local"
    ray_address: str | None = None
    cpus_per_trial: int | None = None
    gpus_per_trial: float | None = None
    max_failures: int = 2
    resume: bool = False
    latency_table: Path | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "NasSettings":
        protocol = TrialProtocol(**{name: getattr(args, name, None) for name in PROTOCOL_FIELDS})
        return cls(**{f.name: getattr(args, f.name, None) for f in fields(cls) if f.name != "protocol"},
                   protocol=protocol)

    def record(self) -> dict[str, Any]:
        """The settings as flat options (the protocol's beside the others), for run.json."""
        record = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "protocol"}
        return {**record, **asdict(self.protocol)}

    @property
    def task_spec(self) -> Any:
        """The task: your own data's stored definition (files checked), else the registered ``task``."""
        from benchmarks.tasks.definition import task_from_definition

        return task_from_definition(self.task_definition or {"name": self.task}, where="this NAS run")


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


def trial_settings(args: NasSettings) -> TrialSettings:
    """The settings every trial of this run shares."""
    from supernet.loading import resolve_model_name

    return TrialSettings(
        model=resolve_model_name(args.model),
        task=args.task,
        search_space=args.search_space,
        size_objective=args.size_objective,
        data_dir=str(Path(args.data_dir).resolve()) if args.data_dir else None,
        seed=args.seed,
        protocol=args.protocol,
        seq_len=args.seq_len or args.protocol.max_length,
        threads=threads_per_trial(args.threads, args.workers),
        device=args.device,
        save_models=args.save_models,
        task_definition=args.task_definition,
        latency_table=str(Path(args.latency_table).resolve()) if args.latency_table else None,
    )


def settings_changes(stored: TrialSettings, settings: TrialSettings) -> dict[str, tuple[Any, Any]]:
    """Trial settings that differ between an earlier run and now, as {name: (earlier, now)}."""
    now = settings.to_dict()
    return {key: (value, now[key]) for key, value in stored.to_dict().items() if now[key] != value}


def default_run_id(args: NasSettings) -> str:
    return f"nas-{args.searcher}-{args.search_space}-{args.task_spec.name}-seed{args.seed}"


@dataclass
class RowMaker:
    """Turns a trial's reported epoch into a results row (costs computed here, from the config)."""

    space: SearchSpace
    run_id: str
    task: str  # the registered task name
    model: str
    searcher: str
    search_space: str
    seed: int
    size_objective: str
    seq_len: int
    metrics: tuple[str, ...] = ()  # the task's metrics, reported per split as ``valid_NAME``/``test_NAME``
    precision: str = ""  # the trials' (resolved) precision
    latency: LatencyTable | None = None  # predicted latency of every row

    def __call__(self, config: Mapping[str, Any], result: Mapping[str, Any], runtime_s: float) -> ResultRow:
        config = plain_config({key: config[key] for key in self.space.keys})
        cost = config_cost(self.space, config, seq_len=self.seq_len, latency=self.latency)
        return ResultRow(
            run_id=self.run_id,
            kind=KIND,
            method=self.searcher,
            searcher=self.searcher,
            search_space=self.search_space,
            strategy="",
            task=self.task,
            model=str(self.model),
            seed=self.seed,
            config=config,
            valid_error=float(result["valid_error"]),
            test_error=float(result["test_error"]),
            runtime_s=float(runtime_s),
            size_objective=self.size_objective,
            epoch=float(result[RESOURCE_ATTR]),
            valid_metrics=metrics_of_fields(result, "valid", self.metrics),
            test_metrics=metrics_of_fields(result, "test", self.metrics),
            precision=self.precision,
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


@dataclass
class NasSetup:
    """What both backends build from the arguments: trial settings, search space, scheduler, row maker."""

    settings: TrialSettings
    space: SearchSpace
    scheduler: TrialScheduler  # without the trial limit (the local backend adds it, Ray counts trials itself)
    row_maker: RowMaker


def build_setup(args: NasSettings, output_dir: Path, threads: int | None = None,
                device: str | None = None) -> NasSetup:
    """Check the arguments, write the trial settings, and build the searcher's scheduler and the row maker."""
    from baselines.searchers import make_scheduler
    from search_spaces import get_search_space
    from search_spaces.shape import ModelShape
    from supernet.loading import load_config

    task = args.task_spec
    settings = trial_settings(args)
    if threads is not None or device is not None:
        settings = replace(settings, threads=threads or settings.threads, device=device or settings.device)
    shape = ModelShape.from_config(load_config(settings.model, num_labels=task.num_labels), head=task.head)
    space = get_search_space(args.search_space, shape)
    latency = None
    if settings.latency_table is not None:
        latency = LatencyTable.read(settings.latency_table)
        latency.check_shape(shape)
    settings.write(output_dir / SETTINGS_FILE)
    scheduler = make_scheduler(
        args.searcher,
        space.config_space,
        metrics=objective_names(args.size_objective),
        points_to_evaluate=initial_design(space),
        random_seed=args.seed,
        max_t=args.protocol.epochs,
        resource_attr=RESOURCE_ATTR,
        mode="standard",
    )
    row_maker = RowMaker(space=space, run_id=args.run_id or default_run_id(args), task=task.name,
                         model=str(args.model), searcher=args.searcher, search_space=args.search_space,
                         seed=args.seed, size_objective=args.size_objective, seq_len=settings.seq_len,
                         metrics=tuple(task.metrics), precision=settings.protocol.precision, latency=latency)
    return NasSetup(settings, space, scheduler, row_maker)
