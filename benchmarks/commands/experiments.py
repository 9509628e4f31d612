"""Experiment grids (the paper's, a CPU smoke grid, the CPU study) and a resumable runner.

A grid (:mod:`benchmarks.grids`) expands to steps (fine-tune, prune, train a super-network, search it, run a
standard NAS), each a ``plm-nas`` command with its own output folder. A step whose folder holds a ``DONE`` marker
is skipped, and an unfinished step is resumed where its command can resume, so a long grid can be stopped and
restarted. Steps run as subprocesses: each gets a clean interpreter, its own thread settings and a log file, and
leaves ``timing.json`` (wall-clock seconds over all its attempts). ``--export-results DEST`` copies the small
files of finished steps (tables, metrics, logs; never weights) to DEST with the same layout, for committing.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Sequence

from tqdm.auto import tqdm

from benchmarks.commands.options import DEVICES, add_precision_argument, resolve_precision_option
from benchmarks.errors import UsageError
from benchmarks.files import write_json_atomic
from benchmarks.grids import (
    CPU_GRID,
    CPU_STUDY,
    DONE_MARKER,
    GRIDS,
    KINDS,
    MANIFEST_FILE,
    PAPER_GRID,
    Step,
    expand,
    get_grid,
    manifest,
    restrict,
)
from benchmarks.grids.runner import LOG_FILE, StepBusy, export_results, iter_pending, run_step

__all__ = ["CPU_GRID", "CPU_STUDY", "DONE_MARKER", "PAPER_GRID", "Step", "expand", "export_results", "get_grid",
           "restrict", "run_step"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--grid", default="cpu", choices=tuple(GRIDS), help="which grid (default: cpu)")
    parser.add_argument("--output-dir", required=True, type=Path, help="root folder of all runs of the grid")
    parser.add_argument("--data-dir", default=None, help="local GLUE copy (default: $GLUE_DIR, else the hub)")
    parser.add_argument("--kinds", nargs="+", default=None, choices=KINDS,
                        help="weight-sharing (ws), standard NAS (nas) and/or pruning baselines with their fine-tuning "
                             "(prune) steps (default: all the grid has)")
    for name in ("tasks", "models", "search-spaces", "strategies", "ws-searchers", "nas-searchers"):
        parser.add_argument(f"--{name}", nargs="+", default=None, help=f"override the grid's {name.replace('-', ' ')}")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="override the grid's seeds")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads of every step (standard NAS: of every trial), overriding the grid's")
    add_precision_argument(parser, "forward passes of every step (decided once for the grid and recorded in "
                                   "grid.json; a grid started without this option ran in fp32)")
    parser.add_argument("--device", default="auto", choices=DEVICES,
                        help="the device the grid's steps run on, for --precision auto (default: CUDA when present)")
    parser.add_argument("--export-results", type=Path, default=None, metavar="DEST",
                        help="copy the tables, metrics and logs of finished steps to DEST (no weights); run nothing")
    parser.add_argument("--list", action="store_true", help="print the steps and whether each is done; run nothing")
    parser.add_argument("--keep-going", action="store_true", help="go on after a failed step (default: stop)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def progress_summary(steps: Sequence[Step]) -> str:
    """How much of a grid is done, per kind of step, and how many steps were started and will resume."""
    kinds: dict[str, list[Step]] = {}
    for step in steps:
        kinds.setdefault(step.key.split()[0], []).append(step)
    counts = ", ".join(f"{kind} {sum(s.done for s in group)}/{len(group)}" for kind, group in kinds.items())
    started = sum(step.started for step in steps)
    return (f"{sum(s.done for s in steps)} of {len(steps)} steps done ({counts}); {started} started "
            "([part]: resumed or restarted by the next run)")


def step_precision(step: Step) -> str:
    """The precision a begun step ran in, from its ``run.json`` (``fp32`` where none is recorded: a step run
    before mixed precision)."""
    path = step.output_dir / "run.json"
    try:
        recorded = json.loads(path.read_text()).get("precision") if path.is_file() else None
    except (OSError, ValueError):
        recorded = None
    return str(recorded or "fp32")


def recorded_grid_precision(root: Path, steps: Sequence[Step]) -> str | None:
    """The precision a grid's earlier steps ran in: ``grid.json``'s; without it, the one the begun steps record
    (``fp32`` for steps run before mixed precision; steps put there from another grid keep theirs); None for a grid
    not started yet. Begun steps that disagree are refused: a grid runs in one precision."""
    path = root / MANIFEST_FILE
    if path.is_file():
        recorded = json.loads(path.read_text()).get("precision")
        if recorded:
            return str(recorded)
    begun: dict[str, list[str]] = {}
    for step in steps:
        if step.done or step.started:
            begun.setdefault(step_precision(step), []).append(step.key)
    if len(begun) > 1:
        found = "; ".join(f"{name}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                          for name, keys in sorted(begun.items()))
        raise UsageError(f"the begun steps in {root} ran in different precisions ({found}); a grid runs in one "
                         "precision: move the odd steps out, or give each precision its own --output-dir")
    return next(iter(begun), None)


def grid_precision(args: argparse.Namespace, steps: Sequence[Step]) -> str:
    """The one precision of every step of the grid: the recorded one when the grid was started before (``auto``
    keeps it, another explicit one is refused), else ``--precision`` resolved for ``--device``."""
    recorded = recorded_grid_precision(Path(args.output_dir), steps)
    return resolve_precision_option(args.precision, args.device, recorded, where="this grid").name


def check_grid_arguments(args: argparse.Namespace) -> None:
    """Refuse, before any folder is made, factor values no step could run: an unknown task (neither registered nor
    one of the grid's own), searcher (weight-sharing searches take no multi-fidelity one), strategy or search space,
    a model that names a folder without a model, a negative seed or thread count."""
    from benchmarks.commands.names import SEARCH_SPACE_NAMES, SEARCHER_NAMES, STRATEGY_NAMES
    from benchmarks.commands.options import check_model_argument
    from benchmarks.errors import UsageError
    from benchmarks.tasks.registry import TASK_NAMES

    grid = get_grid(args.grid)
    own_tasks = {task for part in (grid, *grid.parts) for task in part.tasks}
    known = {
        "--tasks": (args.tasks, (*TASK_NAMES, *sorted(own_tasks - set(TASK_NAMES)))),
        "--ws-searchers": (args.ws_searchers, tuple(name for name in SEARCHER_NAMES if name != "moasha")),
        "--nas-searchers": (args.nas_searchers, SEARCHER_NAMES),
        "--strategies": (args.strategies, STRATEGY_NAMES),
        "--search-spaces": (args.search_spaces, SEARCH_SPACE_NAMES),
    }
    for flag, (values, allowed) in known.items():
        unknown = [value for value in values or () if value not in allowed]
        if unknown:
            raise UsageError(f"{flag} {' '.join(unknown)}: not one of {', '.join(allowed)}")
    for model in args.models or ():
        check_model_argument(model)
    if any(seed < 0 for seed in args.seeds or ()):
        raise UsageError(f"--seeds must be 0 or more, got {' '.join(map(str, args.seeds))}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    if args.export_results is not None and args.export_results.is_file():
        raise UsageError(f"--export-results {args.export_results} is a file; pass a folder")
    if Path(args.output_dir).is_file():
        raise UsageError(f"--output-dir {args.output_dir} is a file; pass a folder")


def run(args: argparse.Namespace) -> int:
    check_grid_arguments(args)
    grid = restrict(
        get_grid(args.grid), tasks=args.tasks, models=args.models, search_spaces=args.search_spaces,
        strategies=args.strategies, ws_searchers=args.ws_searchers, nas_searchers=args.nas_searchers,
        seeds=args.seeds,
    )
    data_args = ("--data-dir", args.data_dir) if args.data_dir else ()
    steps = expand(grid, Path(args.output_dir), data_args=data_args, kinds=args.kinds)
    # the whole grid's manifest (not the restricted one): which runs are main and which compare a factor
    grid_manifest = manifest(get_grid(args.grid))
    if args.export_results is not None:
        recorded = recorded_grid_precision(Path(args.output_dir), steps)
        if recorded is not None:
            grid_manifest["precision"] = recorded
        copied = export_results(steps, Path(args.output_dir), args.export_results)
        if copied:
            copied.append(write_json_atomic(grid_manifest, Path(args.export_results) / MANIFEST_FILE))
        print(f"copied {len(copied)} files of {sum(s.done for s in steps)} finished steps to {args.export_results}")
        return 0
    if args.list:
        for step in steps:
            state = "done" if step.done else ("part" if step.started else "    ")
            print(f"[{state}] {step.key}  ->  {step.output_dir}")
        print(progress_summary(steps))
        return 0
    pending = list(iter_pending(steps))
    precision = grid_precision(args, steps)
    grid_manifest["precision"] = precision
    if pending:
        write_json_atomic(grid_manifest, Path(args.output_dir) / MANIFEST_FILE)
    print(f"grid {grid.name}: {len(steps)} steps, {len(steps) - len(pending)} already done")
    failed: list[str] = []
    elsewhere: list[str] = []  # steps another grid process is running: not failures of this one
    env = dict(os.environ, MPLBACKEND="Agg")
    threads = ("--threads", str(args.threads)) if args.threads else ()
    threads = (*threads, "--precision", precision)
    with tqdm(pending, desc=f"grid {grid.name}", unit="step", disable=args.no_progress) as bar:
        for step in bar:
            bar.set_postfix_str(step.key)
            if step.needs is not None and not (step.needs / DONE_MARKER).is_file():
                failed.append(f"{step.key} (skipped: {step.needs} unfinished)")
                continue
            if step.done:
                tqdm.write(f"done {step.key} (finished meanwhile by another process)")
                continue
            started = time.time()
            try:
                code = run_step(step, env=env, extra_args=threads)
            except StepBusy:
                elsewhere.append(step.key)
                tqdm.write(f"busy {step.key} (another process is running it; skipped)")
                continue
            tqdm.write(f"{'ok ' if code == 0 else 'FAILED'} {step.key} ({time.time() - started:.0f} s)")
            if code != 0:
                failed.append(f"{step.key} (exit {code}; log: {step.output_dir / LOG_FILE})")
                if not args.keep_going:
                    break
    for key in elsewhere:
        print(f"left to another process: {key} (it was running it)", file=sys.stderr)
    for line in failed:
        print(f"failed: {line}", file=sys.stderr)
    return 1 if failed else 0
