"""``plm-nas search``: weight-sharing multi-objective search on a trained super-network, resumable.

A searcher (any of :data:`baselines.searchers.SEARCHERS` but MO-ASHA, which needs per-epoch trials) proposes
configs in an ask/tell loop in this process. Each new config is scored by one no-gradient pass of the sliced
sub-network over the validation split, which comes from the super-network's own dataset seed (another seed
would put training examples into it; ``--force`` overrides the check). A config proposed again is not
re-evaluated: the searcher is told its cached result and no row is added. The budget counts evaluated
(distinct) sub-networks, ``--num-samples`` (default 100, as in the paper), and/or seconds (``--max-wallclock``).
At the end the Pareto set (validation error, size objective) is scored on the test split, each test error in
its own row. Every row also records all of the task's metrics on validation (``valid_metrics``), and every
front row those on test (``test_metrics``). ``--backend ray --eval-workers N`` scores on N Ray actors
(:mod:`benchmarks.ws.ray_actors`); the searcher then proposes ``--search-batch`` sub-networks (default N) before
it is told their results, and the run equals a single-process run with the same seed and search batch.

``OUTPUT/results.csv`` (one row per evaluated sub-network, ``epoch`` empty) is rewritten atomically after every
evaluation (less often when rewriting would take over a tenth of the run, see :class:`ResultsTable`), so a
killed search loses at most the last few evaluations, which ``--resume`` evaluates again.
``--resume`` replays the rows to a fresh searcher and continues
to the budget: the searcher is asked again with the same seed, and every config it re-proposes from the file
is told its recorded result instead of being evaluated, so a seeded searcher continues exactly as an
uninterrupted run would. If it proposes something else before all rows are replayed, the replay starts over
with the file's configs as the initial design (every row is then told, in order, and the continuation is
the searcher's own but no longer that of an uninterrupted run).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from benchmarks.artifacts import check_dataset_seed
from benchmarks.commands.names import DEFAULT_PRECISION, SEARCH_SPACE_NAMES, SEARCHER_NAMES
from benchmarks.commands.options import (
    DEVICES,
    add_latency_table_argument,
    add_precision_argument,
    add_size_objective_argument,
    check_option_ranges,
    read_latency_table,
    resolve_precision_option,
)
from benchmarks.files import write_json_atomic
from benchmarks.results import RESULTS_FILE
from benchmarks.runinfo import write_run_info

if TYPE_CHECKING:  # torch and syne_tune load only when the command runs, so --help answers fast
    from baselines.searchers.ask_tell import AskTellSearch
    from baselines.searchers.loop import Config, Evaluation
    from benchmarks.ws.scoring import ScorerSpec, SubNetworkScorer

DEFAULT_NUM_SAMPLES = 100  # as baselines.searchers.loop.DEFAULT_NUM_SAMPLES, the paper's budget
SCORING_FILE = "scoring.json"  # how the rows were scored; a resumed search must match it
DEFAULT_SEARCHER = "random_search"


@dataclass(frozen=True)
class SearchSettings:
    """Everything ``plm-nas search`` does, parsed once from its options (``None``: the super-network's)."""

    supernet: Path
    output_dir: Path
    searcher: str = DEFAULT_SEARCHER
    search_space: str | None = None
    size_objective: str = "param_fraction"
    num_samples: int | None = DEFAULT_NUM_SAMPLES
    max_wallclock: float | None = None
    seed: int = 0
    dataset_seed: int | None = None
    force: bool = False
    resume: bool = False
    run_id: str | None = None
    data_dir: str | None = None
    batch_size: int = 32
    max_length: int | None = None
    seq_len: int | None = None
    max_valid_samples: int | None = None
    max_test_samples: int | None = None
    threads: int | None = None
    device: str = "cpu"
    precision: str = DEFAULT_PRECISION
    latency_table: Path | None = None
    objectives: tuple[str, ...] | None = None  # more than two: valid_error and several size objectives
    no_progress: bool = False
    backend: str = "local"
    eval_workers: int = 1
    search_batch: int | None = None
    ray_address: str | None = None
    cpus_per_worker: int = 1
    gpus_per_worker: float | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "SearchSettings":
        values = {f.name: getattr(args, f.name) for f in fields(cls)}
        if args.objectives is not None:
            objectives = check_objectives(args.objectives)
            values.update(objectives=objectives, size_objective=objectives[1])
        return cls(**values)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--supernet", required=True, type=Path,
                        help="train-supernet output folder (or its supernet/ subfolder)")
    parser.add_argument("--output-dir", required=True, type=Path, help="folder for results.csv and run.json")
    parser.add_argument("--searcher", default=DEFAULT_SEARCHER, choices=SEARCHER_NAMES,
                        help="any searcher but moasha (default: random_search)")
    parser.add_argument("--search-space", default=None, choices=SEARCH_SPACE_NAMES,
                        help="default: the one the super-network was trained on")
    add_size_objective_argument(parser)
    add_latency_table_argument(parser)
    parser.add_argument("--objectives", nargs="+", default=None, metavar="NAME",
                        help="more than two objectives: valid_error, then size objectives (e.g. valid_error "
                             "latency_fraction param_fraction); random_search, morea, local_search, nsga2 and ehvi "
                             "take any number; the first size objective is the rows' size_objective")
    parser.add_argument("--num-samples", type=int, default=DEFAULT_NUM_SAMPLES,
                        help="sub-networks to evaluate (repeated proposals do not count); 0 for no limit")
    parser.add_argument("--max-wallclock", type=float, default=None, help="seconds (from the run's start)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the searcher")
    parser.add_argument("--dataset-seed", type=int, default=None,
                        help="default and required: the super-network's (a different one needs --force)")
    parser.add_argument("--force", action="store_true",
                        help="allow a dataset seed other than the super-network's, or resuming a different run")
    parser.add_argument("--resume", action="store_true", help="continue the search in --output-dir")
    parser.add_argument("--run-id", default=None, help="run identifier in the results (default: from the settings)")
    parser.add_argument("--data-dir", default=None, help="default: the super-network's")
    parser.add_argument("--batch-size", type=int, default=32, help="evaluation batch size")
    parser.add_argument("--max-length", type=int, default=None, help="default: the super-network's")
    parser.add_argument("--seq-len", type=int, default=None, help="sequence length of MAC counts (default: --max-length)")
    parser.add_argument("--max-valid-samples", type=int, default=None,
                        help="seeded subset of the validation split (default: the super-network's)")
    parser.add_argument("--max-test-samples", type=int, default=None, help="seeded subset of the test split")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    parser.add_argument("--device", default="cpu", choices=DEVICES)
    add_precision_argument(parser, "scoring passes")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    backend = parser.add_argument_group("backend (where sub-networks are scored)")
    backend.add_argument("--backend", default="local", choices=tuple(EVALUATION_BACKENDS),
                         help="local: in this process; ray: on --eval-workers Ray actors")
    backend.add_argument("--eval-workers", type=int, default=1,
                         help="Ray actors, each holding one copy of the super-network; the searcher proposes "
                              "this many sub-networks per batch")
    backend.add_argument("--search-batch", type=int, default=None,
                         help="sub-networks the searcher proposes before it is told their results (default: "
                              "--eval-workers); runs with the same seed and search batch give the same results "
                              "on either backend")
    backend.add_argument("--ray-address", default=None,
                         help="HOST:PORT of a running Ray cluster (default: start a loopback-only Ray on this machine)")
    backend.add_argument("--cpus-per-worker", type=int, default=1, help="Ray: CPUs (torch threads) of each actor")
    backend.add_argument("--gpus-per-worker", type=float, default=None,
                         help="Ray: GPUs of each actor, >0: device cuda (default: 1 when the cluster has a GPU per "
                              "actor, else 0)")


# ------------------------------------------------------------------------------------- evaluation backends

# (configs, split) -> their scores, in order: every task metric with ``main`` and ``error`` (1 - main)
Scores = Callable[[list[Any], str], list[dict[str, float]]]


@contextlib.contextmanager
def local_evaluation(settings: SearchSettings, spec: ScorerSpec, scorer: SubNetworkScorer) -> Iterator[Scores]:
    """Score sub-networks one after another with this process's super-network."""
    yield lambda configs, split: [scorer.scores(config, split) for config in configs]


@contextlib.contextmanager
def ray_evaluation(settings: SearchSettings, spec: ScorerSpec, scorer: SubNetworkScorer) -> Iterator[Scores]:
    """Score each batch of sub-networks on ``--eval-workers`` Ray actors."""
    from benchmarks.ws.ray_actors import EvaluatorPool

    with EvaluatorPool.session(spec, settings.eval_workers, address=settings.ray_address,
                               cpus=settings.cpus_per_worker, gpus=settings.gpus_per_worker) as pool:
        yield pool.scores


EVALUATION_BACKENDS: dict[str, Callable[..., contextlib.AbstractContextManager[Scores]]] = {
    "local": local_evaluation, "ray": ray_evaluation,
}


def check_searcher(name: str) -> None:
    """Fail before loading anything when ``name`` cannot drive a weight-sharing search."""
    from baselines.searchers import SEARCHERS, searcher_names

    usable = ", ".join(searcher_names("weight-sharing"))
    if name not in SEARCHERS:
        raise ValueError(f"unknown searcher {name!r}; choose from {usable}")
    if SEARCHERS[name].standard_nas_only:
        raise ValueError(
            f"searcher {name!r} is multi-fidelity: it stops trials early on per-epoch results, and a weight-sharing "
            f"evaluation has no epochs; it works with `plm-nas nas` only. For `plm-nas search` choose from {usable}"
        )


def recorded_scoring_precision(path: Path) -> str | None:
    """The precision an earlier search in this folder scored in (``fp32`` before mixed precision existed), or None."""
    if not path.is_file():
        return None
    return str(json.loads(path.read_text()).get("precision", "fp32"))


MULTI_OBJECTIVE_SEARCHERS = ("random_search", "morea", "local_search", "nsga2", "ehvi")


def check_objectives(names: Sequence[str]) -> tuple[str, ...]:
    """``--objectives``: valid_error first, then distinct size objectives (at least one)."""
    from benchmarks.results import SIZE_OBJECTIVES

    names = tuple(names)
    if len(names) < 2 or names[0] != "valid_error":
        raise ValueError(f"--objectives starts with valid_error and names at least one size objective, got "
                         f"{' '.join(names)}")
    unknown = [name for name in names[1:] if name not in SIZE_OBJECTIVES]
    if unknown:
        raise ValueError(f"--objectives: unknown size objective(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(SIZE_OBJECTIVES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"--objectives names an objective twice: {' '.join(names)}")
    return names


def check_same_scoring(path: Path, spec: ScorerSpec, force: bool) -> None:
    """A resumed search must score as the earlier one did: same super-network, data, subsets, size objective and
    precision."""
    if not path.is_file():
        return
    stored, current = {"precision": "fp32", **json.loads(path.read_text())}, spec.scoring()
    changed = {key: (stored.get(key), value) for key, value in current.items() if stored.get(key) != value}
    if changed and not force:
        raise ValueError(f"cannot resume: the earlier rows were scored differently {changed} (earlier, now); "
                         "use the earlier settings, another --output-dir, or --force")


def default_run_id(searcher: str, search_space: str, strategy: str, task: str, seed: int) -> str:
    return f"ws-{strategy}-{searcher}-{search_space}-{task}-seed{seed}"


def run(args: argparse.Namespace) -> int:
    """``plm-nas search``: parse the options once, then search."""
    return search(SearchSettings.from_args(args), args)


def search(settings: SearchSettings, args: argparse.Namespace | None = None) -> int:
    """Load the super-network and data, search (or resume), score the Pareto set on test; write results.

    ``args`` (the parsed options, if any) are only recorded in ``run.json``.
    """
    from tqdm.auto import tqdm

    from baselines.searchers import make_scheduler
    from baselines.searchers.ask_tell import AskTellSearch, config_key
    from baselines.searchers.loop import Budget, SearchLoop
    from benchmarks.artifacts import SuperNetSource, read_supernet_info, supernet_folder, supernet_task
    from benchmarks.objectives import check_latency_objective, initial_design, objective_names
    from benchmarks.results import read_results, task_metrics
    from benchmarks.ws.scoring import ScorerSpec
    from benchmarks.ws.table import Measured, ResultsTable, RunIdentity, previous_evaluations

    if args is not None:
        check_option_ranges(args)
    check_searcher(settings.searcher)
    objectives = settings.objectives or ("valid_error", settings.size_objective)
    for name in objectives[1:]:
        check_latency_objective(name, settings.latency_table)
    if len(objectives) > 2 and settings.searcher not in MULTI_OBJECTIVE_SEARCHERS:
        raise ValueError(f"searcher {settings.searcher!r} takes two objectives; with --objectives choose from "
                         f"{', '.join(MULTI_OBJECTIVE_SEARCHERS)}")
    latency_table = read_latency_table(settings.latency_table)
    evaluation_backend = EVALUATION_BACKENDS[settings.backend]
    if settings.eval_workers < 1 or (settings.backend == "local" and settings.eval_workers != 1):
        raise ValueError(f"--eval-workers must be 1 for the local backend and >= 1 for ray, got {settings.eval_workers}")
    search_batch = settings.search_batch or settings.eval_workers
    budget = Budget(num_samples=settings.num_samples or None, max_wallclock=settings.max_wallclock)
    output_dir = Path(settings.output_dir)
    results_path = output_dir / RESULTS_FILE
    if results_path.exists() and not settings.resume:
        raise ValueError(f"{results_path} exists: pass --resume to continue that search, or use another --output-dir")
    folder = supernet_folder(settings.supernet)  # its record, task and data checked before anything is loaded
    supernet_task(read_supernet_info(folder), folder)
    recorded = recorded_scoring_precision(output_dir / SCORING_FILE) if settings.resume else None
    precision = resolve_precision_option(settings.precision, settings.device, recorded, where="the earlier search")
    torch_threads = settings.threads or os.cpu_count() or 1
    import torch

    torch.set_num_threads(torch_threads)
    source = SuperNetSource.load(settings.supernet, device=settings.device)
    info = source.info
    task = supernet_task(info, source.folder)
    dataset_seed = check_dataset_seed(settings.dataset_seed, int(info["dataset_seed"]), settings.force)
    search_space = settings.search_space or info["search_space"]
    max_length = settings.max_length or int(info.get("max_length") or 128)
    max_valid = settings.max_valid_samples if settings.max_valid_samples is not None else info.get("max_valid_samples")
    data_dir = settings.data_dir or info.get("data_dir")
    spec = ScorerSpec(
        supernet=str(source.folder), device=settings.device, search_space=search_space,
        data_dir=str(Path(data_dir).resolve()) if data_dir else None, dataset_seed=dataset_seed,
        max_length=max_length, max_valid_samples=max_valid, max_test_samples=settings.max_test_samples,
        batch_size=settings.batch_size, seq_len=settings.seq_len or max_length, size_objective=settings.size_objective,
        precision=precision.name,
        latency_table=str(Path(settings.latency_table).resolve()) if latency_table is not None else None,
    )
    scorer = spec.build(source)
    space = scorer.space
    identity = RunIdentity(
        run_id=settings.run_id
        or default_run_id(settings.searcher, search_space, info["strategy"], task.name, settings.seed),
        searcher=settings.searcher, search_space=search_space, strategy=str(info["strategy"]), task=task.name,
        model=str(info["model"]), seed=settings.seed, size_objective=settings.size_objective,
        precision=precision.name, objectives=",".join(objectives) if len(objectives) > 2 else "",
    )
    previous: list[Evaluation] = []
    measured = Measured()
    if settings.resume and results_path.exists():
        previous, measured = previous_evaluations(read_results(results_path), identity, settings.force)
        check_same_scoring(output_dir / SCORING_FILE, spec, settings.force)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(spec.scoring(), output_dir / SCORING_FILE)
    write_run_info(output_dir, args if args is not None else vars(settings), seed=settings.seed,
                   keep_previous=settings.resume, command_name="search",
                   dataset_seed=dataset_seed, supernet=str(source.folder), precision=precision.name)
    metrics = list(objectives) if len(objectives) > 2 else objective_names(settings.size_objective)
    design = initial_design(space)

    def make_search(recorded: Sequence[Config] | None) -> AskTellSearch:
        """A fresh seeded searcher; ``recorded`` configs (a replay fallback) go before the initial design."""
        done = {config_key(config) for config in recorded or ()}
        points = [*(recorded or ()), *(config for config in design if config_key(config) not in done)]
        scheduler = make_scheduler(settings.searcher, space.config_space, metrics=metrics, points_to_evaluate=points,
                                   random_seed=settings.seed, mode="weight-sharing")
        return AskTellSearch(scheduler)

    table = ResultsTable(identity, scorer.cost, results_path)
    with evaluation_backend(settings, spec, scorer) as scores:

        def validation_errors(configs: list[Config]) -> list[float]:
            """Score on validation, keep every metric for the table, and give the loop the errors."""
            results = scores(configs, "validation")
            for config, result in zip(configs, results):
                measured.valid_metrics[config_key(config)] = task_metrics(result)
            return [result["error"] for result in results]

        loop = SearchLoop(make_search, score=lambda config: validation_errors([config])[0], size=scorer.size,
                          metrics=metrics, evaluations=list(previous), batch_size=search_batch,
                          score_batch=validation_errors,
                          sizes=lambda config: {name: scorer.cost(config).size(name) for name in metrics[1:]})
        bar = tqdm(total=budget.num_samples, initial=len(previous), desc="search", unit="subnet",
                   disable=settings.no_progress, dynamic_ncols=True)

        def on_evaluation(evaluation: Evaluation) -> None:
            frame = table.write(loop.evaluations, measured)
            bar.update(1)
            if frame is not None:
                bar.set_postfix(pareto=int(frame["pareto"].sum()), error=f"{evaluation.valid_error:.3f}",
                                refresh=False)

        started = time.perf_counter()
        offset = max((e.runtime_s for e in previous), default=0.0)
        loop.run(budget, runtime_offset=offset, on_evaluation=on_evaluation)
        bar.close()
        if previous and not loop.exact_replay:
            print("note: the searcher did not re-propose the recorded configs in order; they were replayed as its "
                  "initial design, so this continuation differs from an uninterrupted run", flush=True)
        frame = table.frame(loop.evaluations, measured)
        untested = [json.loads(config) for config in frame.loc[frame["pareto"], "config"]
                    if config_key(json.loads(config)) not in measured.test_errors]
        for config, result in zip(untested, scores(untested, "test")):
            measured.test_errors[config_key(config)] = float(result["error"])
            measured.test_metrics[config_key(config)] = task_metrics(result)
    frame = table.write(loop.evaluations, measured, force=True)
    print(f"weight-sharing search: {len(frame)} sub-networks ({len(frame) - len(previous)} new, "
          f"{loop.num_repeats} repeated proposals not re-evaluated), {int(frame['pareto'].sum())} on the front, "
          f"{time.perf_counter() - started:.0f} s; results in {results_path}", flush=True)
    return 0
