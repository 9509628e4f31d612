"""Experiment grids (the paper's and a CPU-sized one) and a resumable runner.

A grid expands to steps (train a super-network, search it, run a standard NAS), each a ``plm-nas``
command with its own output folder. A step whose folder holds a ``DONE`` marker is skipped, and an
unfinished step is resumed where its command can resume, so a long grid can be stopped and restarted.
Steps run as subprocesses: each gets a clean interpreter, its own thread settings and a log file.
"""
from __future__ import annotations

import argparse
import itertools
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator, Sequence

from tqdm.auto import tqdm

DONE_MARKER = "DONE"
LOG_FILE = "log.txt"


@dataclass(frozen=True)
class GridSpec:
    """The factors of a grid and the fixed options each kind of step gets."""

    name: str
    description: str
    tasks: tuple[str, ...]
    models: tuple[str, ...]
    search_spaces: tuple[str, ...]
    strategies: tuple[str, ...]
    ws_searchers: tuple[str, ...]
    nas_searchers: tuple[str, ...]
    seeds: tuple[int, ...]
    supernet_args: tuple[str, ...] = ()
    search_args: tuple[str, ...] = ()
    nas_args: tuple[str, ...] = ()
    nas_budget_s: dict[str, float] = field(default_factory=dict)  # per task; "default" for the rest


# Budgets and protocol of the paper (method.md sections 4-6), for GPU clusters.
PAPER_GRID = GridSpec(
    name="paper",
    description="the paper's grid: 8 tasks x BERT/RoBERTa-base x 4 search spaces x 6 strategies x searchers",
    tasks=("rte", "mrpc", "cola", "stsb", "sst2", "qnli", "imdb", "swag"),
    models=("bert-base-cased", "roberta-base"),
    search_spaces=("small", "layer", "medium", "large"),
    strategies=("standard", "random", "linear_random", "sandwich", "kd", "full"),
    ws_searchers=("random_search", "morea", "local_search", "nsga2", "ehvi", "lsbo", "rsbo"),
    nas_searchers=("random_search", "morea", "local_search", "nsga2", "ehvi", "lsbo", "rsbo", "moasha"),
    seeds=tuple(range(10)),
    supernet_args=("--epochs", "5", "--lr", "2e-5", "--batch-size", "8", "--warmup-ratio", "0"),
    search_args=("--num-samples", "100"),
    nas_args=("--epochs", "5", "--lr", "2e-5", "--batch-size", "8", "--workers", "4", "--device", "auto"),
    nas_budget_s={"rte": 7200, "mrpc": 7200, "cola": 7200, "stsb": 7200, "default": 14400},
)

# What a 2-core CPU finishes in a few hours: MiniLM, tasks with signal at this budget (cpu-protocol.md),
# training subsets, MAC fraction as size objective (MiniLM's embeddings are half its parameters).
CPU_GRID = GridSpec(
    name="cpu",
    description="CPU-sized grid: MiniLM on MRPC and RTE, small space, sandwich, 3 searchers x 3 seeds each kind",
    tasks=("mrpc", "rte"),
    models=("minilm",),
    search_spaces=("small",),
    strategies=("sandwich",),
    ws_searchers=("random_search", "morea", "local_search"),
    nas_searchers=("random_search", "moasha", "local_search"),
    seeds=(0, 1, 2),
    supernet_args=("--epochs", "1", "--max-train-samples", "480", "--max-valid-samples", "128",
                   "--batch-size", "16", "--lr", "5e-5", "--threads", "2"),
    search_args=("--num-samples", "30", "--max-valid-samples", "128", "--max-test-samples", "128",
                 "--size-objective", "mac_fraction", "--threads", "2"),
    # the same validation and test subsets as the searches, so errors of both kinds are comparable
    nas_args=("--epochs", "2", "--max-train-samples", "96", "--max-valid-samples", "128",
              "--max-test-samples", "128", "--batch-size", "16", "--lr", "5e-5", "--workers", "2",
              "--threads", "2", "--size-objective", "mac_fraction"),
    nas_budget_s={"default": 90},
)

GRIDS: dict[str, GridSpec] = {grid.name: grid for grid in (PAPER_GRID, CPU_GRID)}


@dataclass(frozen=True)
class Step:
    """One ``plm-nas`` command of a grid with its output folder."""

    key: str
    command: tuple[str, ...]
    output_dir: Path
    resumable: bool
    needs: Path | None = None  # a folder that an earlier step must have finished

    @property
    def done(self) -> bool:
        return (self.output_dir / DONE_MARKER).is_file()


def _model_tag(model: str) -> str:
    """Folder name of a model: a local folder's name, or the hub name with its organisation ("org-name")."""
    if not model:
        return "minilm"
    return Path(model).name if Path(model).exists() else model.replace("/", "-")


def get_grid(name: str) -> GridSpec:
    if name not in GRIDS:
        raise ValueError(f"unknown grid {name!r}; choose from {', '.join(GRIDS)}")
    return GRIDS[name]


def restrict(grid: GridSpec, **factors: Sequence | None) -> GridSpec:
    """The grid with some factors replaced (``None`` keeps the grid's); unknown values are kept as given."""
    changes = {name: tuple(values) for name, values in factors.items() if values}
    return replace(grid, **changes)


def expand(grid: GridSpec, root: Path, data_args: Sequence[str] = (), kinds: Sequence[str] = ("ws", "nas")) -> list[Step]:
    """All steps of a grid in run order: each super-network before its searches, then standard NAS."""
    steps: list[Step] = []
    data_args = tuple(data_args)
    if "ws" in kinds:
        for task, model, space, strategy, seed in itertools.product(
            grid.tasks, grid.models, grid.search_spaces, grid.strategies, grid.seeds
        ):
            base = f"{task}/{_model_tag(model)}/{space}"
            supernet_dir = root / "supernets" / base / strategy / f"seed{seed}"
            steps.append(Step(
                key=f"supernet {base}/{strategy}/seed{seed}",
                command=("train-supernet", "--model", model, "--task", task, "--search-space", space,
                         "--strategy", strategy, "--seed", str(seed), "--output-dir", str(supernet_dir),
                         *data_args, *grid.supernet_args),
                output_dir=supernet_dir, resumable=True,
            ))
            for searcher in grid.ws_searchers:
                out = root / "weight-sharing" / base / strategy / searcher / f"seed{seed}"
                steps.append(Step(
                    key=f"search {base}/{strategy}/{searcher}/seed{seed}",
                    command=("search", "--supernet", str(supernet_dir / "supernet"), "--searcher", searcher,
                             "--seed", str(seed), "--output-dir", str(out), *grid.search_args),
                    output_dir=out, resumable=True, needs=supernet_dir,
                ))
    if "nas" in kinds:
        for task, model, space, searcher, seed in itertools.product(
            grid.tasks, grid.models, grid.search_spaces, grid.nas_searchers, grid.seeds
        ):
            base = f"{task}/{_model_tag(model)}/{space}"
            out = root / "standard" / base / searcher / f"seed{seed}"
            budget = grid.nas_budget_s.get(task, grid.nas_budget_s.get("default", 3600))
            steps.append(Step(
                key=f"nas {base}/{searcher}/seed{seed}",
                command=("nas", "--model", model, "--task", task, "--search-space", space, "--searcher", searcher,
                         "--seed", str(seed), "--output-dir", str(out), "--max-wallclock", f"{budget:g}",
                         *data_args, *grid.nas_args),
                output_dir=out, resumable=True,
            ))
    return steps


def run_step(step: Step, env: dict[str, str] | None = None) -> int:
    """Run one step as a subprocess (resuming or restarting an unfinished one); mark it done on success."""
    if step.needs is not None and not (step.needs / DONE_MARKER).is_file():
        raise RuntimeError(f"step {step.key!r} needs {step.needs}, which has not finished")
    command = list(step.command)
    if step.output_dir.exists():
        if step.resumable:
            command.append("--resume")
        else:
            shutil.rmtree(step.output_dir)
    step.output_dir.mkdir(parents=True, exist_ok=True)
    with open(step.output_dir / LOG_FILE, "a") as log:
        log.write(f"$ plm-nas {' '.join(command)}\n")
        log.flush()
        code = subprocess.call([sys.executable, "-m", "benchmarks.cli", *command, "--no-progress"],
                               stdout=log, stderr=subprocess.STDOUT, env=env)
    if code == 0:
        (step.output_dir / DONE_MARKER).write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
    return code


def iter_pending(steps: Sequence[Step]) -> Iterator[Step]:
    return (step for step in steps if not step.done)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--grid", default="cpu", choices=tuple(GRIDS), help="which grid (default: cpu)")
    parser.add_argument("--output-dir", required=True, type=Path, help="root folder of all runs of the grid")
    parser.add_argument("--data-dir", default=None, help="local GLUE copy (default: $GLUE_DIR, else the hub)")
    parser.add_argument("--kinds", nargs="+", default=["ws", "nas"], choices=("ws", "nas"),
                        help="weight-sharing (ws) and/or standard NAS (nas) steps")
    for name in ("tasks", "models", "search-spaces", "strategies", "ws-searchers", "nas-searchers"):
        parser.add_argument(f"--{name}", nargs="+", default=None, help=f"override the grid's {name.replace('-', ' ')}")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="override the grid's seeds")
    parser.add_argument("--list", action="store_true", help="print the steps and whether each is done; run nothing")
    parser.add_argument("--keep-going", action="store_true", help="go on after a failed step (default: stop)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    grid = restrict(
        get_grid(args.grid), tasks=args.tasks, models=args.models, search_spaces=args.search_spaces,
        strategies=args.strategies, ws_searchers=args.ws_searchers, nas_searchers=args.nas_searchers,
        seeds=args.seeds,
    )
    data_args = ("--data-dir", args.data_dir) if args.data_dir else ()
    steps = expand(grid, Path(args.output_dir), data_args=data_args, kinds=args.kinds)
    if args.list:
        for step in steps:
            print(f"[{'done' if step.done else '    '}] {step.key}  ->  {step.output_dir}")
        return 0
    pending = list(iter_pending(steps))
    print(f"grid {grid.name}: {len(steps)} steps, {len(steps) - len(pending)} already done")
    failed: list[str] = []
    env = dict(os.environ, MPLBACKEND="Agg")
    with tqdm(pending, desc=f"grid {grid.name}", unit="step", disable=args.no_progress) as bar:
        for step in bar:
            bar.set_postfix_str(step.key)
            if step.needs is not None and not (step.needs / DONE_MARKER).is_file():
                failed.append(f"{step.key} (skipped: {step.needs} unfinished)")
                continue
            started = time.time()
            code = run_step(step, env=env)
            tqdm.write(f"{'ok ' if code == 0 else 'FAILED'} {step.key} ({time.time() - started:.0f} s)")
            if code != 0:
                failed.append(f"{step.key} (exit {code}; log: {step.output_dir / LOG_FILE})")
                if not args.keep_going:
                    break
    for line in failed:
        print(f"failed: {line}", file=sys.stderr)
    return 1 if failed else 0
