"""``plm-nas search``: weight-sharing multi-objective search on a trained super-network, resumable.

A searcher (any of :data:`baselines.searchers.SEARCHERS` but MO-ASHA, which needs per-epoch trials) proposes
configs in an ask/tell loop in this process. Each new config is scored by one no-gradient pass of the sliced
sub-network over the validation split, which comes from the super-network's own dataset seed (another seed
would put training examples into it; ``--force`` overrides the check). A config proposed again is not
re-evaluated: the searcher is told its cached result and no row is added. The budget counts evaluated
(distinct) sub-networks, ``--num-samples`` (default 100, as in the paper), and/or seconds (``--max-wallclock``).
At the end the Pareto set (validation error, size objective) is scored on the test split, each test error in
its own row. ``--backend ray --eval-workers N`` scores on N Ray actors (:mod:`benchmarks.ws.ray_actors`); the
searcher then proposes ``--search-batch`` sub-networks (default N) before it is told their results, and the
run equals a single-process run with the same seed and search batch.

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
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import pandas as pd
from tqdm.auto import tqdm

from benchmarks.objectives import (
    CostFields,
    add_size_objective_argument,
    config_cost,
    config_key,
    initial_design,
    objective_names,
    plain_config,
)
from benchmarks.results import (
    COLUMNS,
    RESULTS_FILE,
    ResultRow,
    mark_pareto,
    read_results,
    write_atomic,
    write_json_atomic,
)
from benchmarks.runinfo import write_run_info

KIND = "weight-sharing"
SCORING_FILE = "scoring.json"  # how the rows were scored; a resumed search must match it
DEFAULT_SEARCHER = "random_search"
DEFAULT_NUM_SAMPLES = 100
MAX_REPEATS = 50  # consecutive re-proposals of evaluated configs before the search counts as exhausted
DEVICES = ("cpu", "cuda", "auto")
# Columns that must agree between a resumed run and its earlier rows.
RESUME_COLUMNS = ("run_id", "kind", "searcher", "search_space", "strategy", "task", "seed", "size_objective")

Config = dict[str, Any]


# ------------------------------------------------------------------------------------------------- budget


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


# -------------------------------------------------------------------------------------------- the loop


@dataclass
class Evaluation:
    """One evaluated sub-network: its config, validation error and when (seconds into the run) it finished."""

    config: Config
    valid_error: float
    runtime_s: float


SearchFactory = Callable[[Sequence[Config] | None], Any]  # initial design override -> AskTellSearch


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
    returns the validation error and ``size(config)`` the size objective. ``evaluations`` holds the rows of
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

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"the batch size (evaluation workers) must be >= 1, got {self.batch_size}")

    def result(self, config: Config, valid_error: float) -> dict[str, float]:
        return {self.metrics[0]: valid_error, self.metrics[1]: self.size(config)}

    def ask_batch(self, search: Any, room: int) -> Batch:
        """Ask until ``room`` new configs are pending; repeats of evaluated configs are told their cached result."""
        from baselines.searchers import SearchExhausted

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

    def tell_batch(self, search: Any, batch: Batch, errors: Sequence[float]) -> None:
        """Tell the batch's results in ask order, then the in-batch duplicates their config's result."""
        for (trial_id, config), error in zip(batch.new, errors):
            search.tell(trial_id, config, self.result(config, float(error)))
        for trial_id, config in batch.duplicates:
            search.tell(trial_id, config, search.result_of(config))

    def replay(self) -> Any:
        """A fresh searcher told every recorded evaluation in batches, as the run asked (see the module docstring)."""
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

    def _replay_recorded(self) -> Any:
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
    ) -> Any:
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


# ------------------------------------------------------------------------------------- super-network side


@dataclass
class SubNetworkScorer:
    """Scores sub-networks of a super-network on the validation and test loaders.

    Errors are memoised by the sub-network's masks, so configs that select the same sub-network (all
    ``num_layers=0`` configs of ``small`` are the empty network) are evaluated once per split.
    """

    supernet: Any
    space: Any
    loaders: Mapping[str, Any]
    metrics_fn: Callable[..., Mapping[str, float]]
    seq_len: int
    size_objective: str
    _costs: dict[str, CostFields] = field(default_factory=dict, repr=False)
    _errors: dict[tuple[str, bytes], float] = field(default_factory=dict, repr=False)

    def error(self, config: Mapping[str, Any], split: str) -> float:
        """Error of the sliced sub-network ``config`` on ``split`` (one pass without gradients)."""
        from supernet.evaluation import evaluate

        masks = self.space.to_masks(config)
        key = (split, masks.heads.numpy().tobytes() + masks.units.numpy().tobytes())
        if key not in self._errors:
            result = evaluate(self.supernet, self.loaders[split], masks=masks, metrics_fn=self.metrics_fn)
            self._errors[key] = float(result.metrics["error"])
        return self._errors[key]

    def cost(self, config: Mapping[str, Any]) -> CostFields:
        """Cost fields of a config (computed once per config)."""
        key = config_key(config)
        if key not in self._costs:
            self._costs[key] = config_cost(self.space, config, seq_len=self.seq_len)
        return self._costs[key]

    def size(self, config: Mapping[str, Any]) -> float:
        return self.cost(config).size(self.size_objective)


@dataclass(frozen=True)
class ScorerSpec:
    """How to build a :class:`SubNetworkScorer` from a super-network folder (in this process or a Ray actor)."""

    supernet: str
    device: str
    search_space: str
    data_dir: str | None
    dataset_seed: int
    max_length: int
    max_valid_samples: int | None
    max_test_samples: int | None
    batch_size: int
    seq_len: int
    size_objective: str

    def scoring(self) -> dict[str, Any]:
        """What decides a sub-network's recorded errors and size (device and batch size do not)."""
        return {key: value for key, value in asdict(self).items() if key not in ("device", "batch_size")}

    def build(self, source: Any = None) -> SubNetworkScorer:
        """Load the data (and the super-network unless ``source`` is given) and return the scorer."""
        from benchmarks.tasks.data import AUTO, load_splits, make_dataloaders, subsample
        from benchmarks.commands.export import SuperNetSource
        from benchmarks.tasks.metrics import metrics_fn
        from benchmarks.tasks.registry import get_task
        from search_spaces import get_search_space
        from supernet.model import SuperNetwork

        source = source or SuperNetSource.load(self.supernet, device=self.device)
        task = get_task(source.info["task"])
        splits = load_splits(task, data_dir=self.data_dir, seed=self.dataset_seed,
                             max_valid_samples=AUTO if self.max_valid_samples is None else self.max_valid_samples)
        splits = {"validation": splits["validation"],
                  "test": subsample(splits["test"], self.max_test_samples, self.dataset_seed)}
        loaders = make_dataloaders(task, splits, source.tokenizer, batch_size=self.batch_size,
                                   max_length=self.max_length)
        space = get_search_space(self.search_space, source.shape)
        return SubNetworkScorer(SuperNetwork(source.model), space, loaders, metrics_fn(task), seq_len=self.seq_len,
                                size_objective=self.size_objective)


@dataclass(frozen=True)
class RunIdentity:
    """The descriptive columns of every row of one search run."""

    run_id: str
    searcher: str
    search_space: str
    strategy: str
    task: str
    model: str
    seed: int
    size_objective: str

    def row(self, evaluation: Evaluation, cost: CostFields, test_error: float = math.nan) -> ResultRow:
        return ResultRow(
            run_id=self.run_id, kind=KIND, method=self.searcher, searcher=self.searcher,
            search_space=self.search_space, strategy=self.strategy, task=self.task, model=self.model,
            seed=self.seed, config=evaluation.config, valid_error=evaluation.valid_error, test_error=test_error,
            runtime_s=evaluation.runtime_s, size_objective=self.size_objective, **cost.as_row_fields(),
        )


@dataclass
class ResultsTable:
    """The run's results table, one record per evaluation (each config serialised once), written atomically.

    Only rows on the current front carry a test error, so a resumed run's table equals an uninterrupted one's.
    :meth:`write` skips a write while the time since the last one is under ``1 / max_overhead`` times what it
    took, so rewriting the table costs at most about that share of the run: every evaluation is written for
    small spaces, less often when rows are large (the ``large`` space has thousands of keys per config).
    """

    identity: RunIdentity
    cost: Callable[[Config], CostFields]
    path: Path
    max_overhead: float = 0.1
    _records: list[dict[str, Any]] = field(default_factory=list, repr=False)
    _keys: list[tuple] = field(default_factory=list, repr=False)
    _last_end: float = -math.inf
    _last_duration: float = 0.0

    def frame(self, evaluations: Sequence[Evaluation], test_errors: Mapping[Any, float]) -> pd.DataFrame:
        """The table of ``evaluations`` (which only ever grows): Pareto rows marked, with known test errors."""
        for evaluation in evaluations[len(self._records):]:
            self._records.append(self.identity.row(evaluation, self.cost(evaluation.config)).to_record())
            self._keys.append(config_key(evaluation.config))
        frame = mark_pareto(pd.DataFrame.from_records(self._records, columns=list(COLUMNS)))
        frame["test_error"] = [test_errors.get(key, math.nan) for key in self._keys]
        frame.loc[~frame["pareto"].astype(bool), "test_error"] = math.nan
        return frame

    def write(self, evaluations: Sequence[Evaluation], test_errors: Mapping[Any, float],
              force: bool = False) -> pd.DataFrame | None:
        """Write the table (always with ``force``); returns it, or None when the write was skipped."""
        started = time.perf_counter()
        if not force and started - self._last_end < self._last_duration / self.max_overhead:
            return None
        frame = self.frame(evaluations, test_errors)
        write_atomic(frame, self.path)
        self._last_end = time.perf_counter()
        self._last_duration = self._last_end - started
        return frame


def previous_evaluations(frame: pd.DataFrame, identity: RunIdentity, force: bool) -> tuple[list[Evaluation], dict[str, float]]:
    """Earlier rows of this run (in order) and their known test errors; checks they belong to this run."""
    expected = {"run_id": identity.run_id, "kind": KIND, "searcher": identity.searcher,
                "search_space": identity.search_space, "strategy": identity.strategy, "task": identity.task,
                "seed": identity.seed, "size_objective": identity.size_objective}
    mismatches = []
    for column in RESUME_COLUMNS:
        found = sorted({str(value) for value in frame[column]})
        if found != [str(expected[column])]:
            mismatches.append(f"{column}: file has {', '.join(found)}, this run {expected[column]}")
    if mismatches and not force:
        raise ValueError("cannot resume: the results file belongs to another run (" + "; ".join(mismatches)
                         + "); use another --output-dir, or --force")
    evaluations = [
        Evaluation(config=json.loads(row.config), valid_error=float(row.valid_error), runtime_s=float(row.runtime_s))
        for row in frame.itertuples()
    ]
    test_errors = {config_key(json.loads(row.config)): float(row.test_error)
                   for row in frame.itertuples() if not pd.isna(row.test_error)}
    return evaluations, test_errors


# ------------------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from baselines.searchers import SEARCHERS
    from search_spaces import SEARCH_SPACES

    parser.add_argument("--supernet", required=True, type=Path,
                        help="train-supernet output folder (or its supernet/ subfolder)")
    parser.add_argument("--output-dir", required=True, type=Path, help="folder for results.csv and run.json")
    parser.add_argument("--searcher", default=DEFAULT_SEARCHER, choices=tuple(SEARCHERS),
                        help="any searcher but moasha (default: random_search)")
    parser.add_argument("--search-space", default=None, choices=tuple(SEARCH_SPACES),
                        help="default: the one the super-network was trained on")
    add_size_objective_argument(parser)
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

Errors = Callable[[list[Config], str], list[float]]  # (configs, split) -> their errors, in order


@contextlib.contextmanager
def local_evaluation(args: argparse.Namespace, spec: "ScorerSpec", scorer: "SubNetworkScorer") -> Iterator[Errors]:
    """Score sub-networks one after another with this process's super-network."""
    yield lambda configs, split: [scorer.error(config, split) for config in configs]


@contextlib.contextmanager
def ray_evaluation(args: argparse.Namespace, spec: "ScorerSpec", scorer: "SubNetworkScorer") -> Iterator[Errors]:
    """Score each batch of sub-networks on ``--eval-workers`` Ray actors."""
    from benchmarks.ws.ray_actors import EvaluatorPool

    with EvaluatorPool.session(spec, args.eval_workers, address=args.ray_address, cpus=args.cpus_per_worker,
                               gpus=args.gpus_per_worker) as pool:
        yield pool.errors


EVALUATION_BACKENDS: dict[str, Callable[..., Any]] = {"local": local_evaluation, "ray": ray_evaluation}


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


def check_same_scoring(path: Path, spec: ScorerSpec, force: bool) -> None:
    """A resumed search must score as the earlier one did: same super-network, data, subsets and size objective."""
    if not path.is_file():
        return
    stored, current = json.loads(path.read_text()), spec.scoring()
    changed = {key: (stored.get(key), value) for key, value in current.items() if stored.get(key) != value}
    if changed and not force:
        raise ValueError(f"cannot resume: the earlier rows were scored differently {changed} (earlier, now); "
                         "use the earlier settings, another --output-dir, or --force")


def check_dataset_seed(requested: int | None, trained: int, force: bool) -> int:
    """The dataset seed to use: the super-network's, unless another one is forced."""
    if requested is None or requested == trained:
        return trained
    if not force:
        raise ValueError(
            f"the super-network was trained with --dataset-seed {trained}; searching with {requested} would put "
            "its training examples into the validation split. Drop --dataset-seed, or pass --force"
        )
    return requested


def default_run_id(searcher: str, search_space: str, strategy: str, task: str, seed: int) -> str:
    return f"ws-{strategy}-{searcher}-{search_space}-{task}-seed{seed}"


def run(args: argparse.Namespace) -> int:
    """Load the super-network and data, search (or resume), score the Pareto set on test; write results."""
    from baselines.searchers import AskTellSearch, make_scheduler
    from benchmarks.commands.export import SuperNetSource
    from benchmarks.tasks.registry import get_task

    check_searcher(args.searcher)
    evaluation_backend = EVALUATION_BACKENDS[args.backend]
    if args.eval_workers < 1 or (args.backend == "local" and args.eval_workers != 1):
        raise ValueError(f"--eval-workers must be 1 for the local backend and >= 1 for ray, got {args.eval_workers}")
    search_batch = args.search_batch or args.eval_workers
    budget = Budget(num_samples=args.num_samples or None, max_wallclock=args.max_wallclock)
    output_dir = Path(args.output_dir)
    results_path = output_dir / RESULTS_FILE
    if results_path.exists() and not args.resume:
        raise ValueError(f"{results_path} exists: pass --resume to continue that search, or use another --output-dir")
    torch_threads = args.threads or os.cpu_count() or 1
    import torch

    torch.set_num_threads(torch_threads)
    source = SuperNetSource.load(args.supernet, device=args.device)
    info = source.info
    task = get_task(info["task"])
    dataset_seed = check_dataset_seed(args.dataset_seed, int(info["dataset_seed"]), args.force)
    search_space = args.search_space or info["search_space"]
    max_length = args.max_length or int(info.get("max_length") or 128)
    max_valid = args.max_valid_samples if args.max_valid_samples is not None else info.get("max_valid_samples")
    data_dir = args.data_dir or info.get("data_dir")
    spec = ScorerSpec(
        supernet=str(source.folder), device=args.device, search_space=search_space,
        data_dir=str(Path(data_dir).resolve()) if data_dir else None, dataset_seed=dataset_seed,
        max_length=max_length, max_valid_samples=max_valid, max_test_samples=args.max_test_samples,
        batch_size=args.batch_size, seq_len=args.seq_len or max_length, size_objective=args.size_objective,
    )
    scorer = spec.build(source)
    space = scorer.space
    identity = RunIdentity(
        run_id=args.run_id or default_run_id(args.searcher, search_space, info["strategy"], task.name, args.seed),
        searcher=args.searcher, search_space=search_space, strategy=str(info["strategy"]), task=task.name,
        model=str(info["model"]), seed=args.seed, size_objective=args.size_objective,
    )
    previous: list[Evaluation] = []
    test_errors: dict[str, float] = {}
    if args.resume and results_path.exists():
        previous, test_errors = previous_evaluations(read_results(results_path), identity, args.force)
        check_same_scoring(output_dir / SCORING_FILE, spec, args.force)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(spec.scoring(), output_dir / SCORING_FILE)
    write_run_info(output_dir, args, seed=args.seed, keep_previous=args.resume, command_name="search",
                   dataset_seed=dataset_seed, supernet=str(source.folder))
    metrics = objective_names(args.size_objective)
    design = initial_design(space)

    def make_search(recorded: Sequence[Config] | None) -> AskTellSearch:
        """A fresh seeded searcher; ``recorded`` configs (a replay fallback) go before the initial design."""
        done = {config_key(config) for config in recorded or ()}
        points = [*(recorded or ()), *(config for config in design if config_key(config) not in done)]
        scheduler = make_scheduler(args.searcher, space.config_space, metrics=metrics, points_to_evaluate=points,
                                   random_seed=args.seed, mode="weight-sharing")
        return AskTellSearch(scheduler)

    table = ResultsTable(identity, scorer.cost, results_path)
    with evaluation_backend(args, spec, scorer) as errors:
        loop = SearchLoop(make_search, score=lambda config: scorer.error(config, "validation"), size=scorer.size,
                          metrics=metrics, evaluations=list(previous), batch_size=search_batch,
                          score_batch=lambda configs: errors(configs, "validation"))
        bar = tqdm(total=budget.num_samples, initial=len(previous), desc="search", unit="subnet",
                   disable=args.no_progress, dynamic_ncols=True)

        def on_evaluation(evaluation: Evaluation) -> None:
            frame = table.write(loop.evaluations, test_errors)
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
        frame = table.frame(loop.evaluations, test_errors)
        untested = [json.loads(config) for config in frame.loc[frame["pareto"], "config"]
                    if config_key(json.loads(config)) not in test_errors]
        for config, error in zip(untested, errors(untested, "test")):
            test_errors[config_key(config)] = float(error)
    frame = table.write(loop.evaluations, test_errors, force=True)
    print(f"weight-sharing search: {len(frame)} sub-networks ({len(frame) - len(previous)} new, "
          f"{loop.num_repeats} repeated proposals not re-evaluated), {int(frame['pareto'].sum())} on the front, "
          f"{time.perf_counter() - started:.0f} s; results in {results_path}", flush=True)
    return 0
