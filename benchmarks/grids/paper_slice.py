"""A slice of the paper's experiments at the paper's budgets, on one GPU in minutes (``benchmarks/gpu_slice.sh``).

``python -m benchmarks.grids.paper_slice --output-dir runs/slice [--data-dir ../shared/data/glue]`` runs, on one GPU:

- weight-sharing NAS of MiniLM (``minilm``) on RTE, MRPC, STS-B and SST-2 with seeds 0, 1, 2: a super-network
  (sandwich, ``small`` space, the full training split of the 70/30 split, 5 epochs) searched by NSGA-II and by
  random search, 100 sub-networks each, scored on the full validation split (SST-2: 2,048 examples) with the
  Pareto set scored on the test split (GLUE dev);
- the retraining-free pruning baseline (``rfp``) on a fine-tuned model (5 epochs, full split) per task and seed;
- standard NAS (MO-ASHA, 5 epochs per trial, full split) on RTE and MRPC, 90 s of wall clock per seed: what fits;
- the 12-layer model ``e5-small-l12`` (when its optional package is installed, see ``supernet.loading``):
  weight-sharing NAS (NSGA-II) on RTE, MRPC and STS-B, seeds 0, 1, 2;
- inference speed of sliced, extracted and masked sub-networks in fp32 and bf16 (``benchmarks.perf.speed``).

Every step is a ``plm-nas`` command (or ``python -m benchmarks.perf.speed``) with its own folder, a log and a
``DONE`` marker, like ``plm-nas experiments``: the steps come from ``benchmarks.commands.experiments.expand``
and run through its ``run_step``, so an interrupted slice continues where it stopped. Unlike the sequential grid
runner, up to ``--jobs`` steps run at once (a step waits for the super-network or fine-tuned model it needs):
one process cannot keep a GPU busy with MiniLM, which spends its time launching kernels. The speed
measurements run first and alone (on the GPU). Outputs under ``--output-dir``:

- ``weight-sharing/``, ``standard/``, ``baselines/``: each step's tidy ``results.csv`` (``benchmarks.results``);
- ``all_results.csv``: all of them in one tidy table;
- ``speed/{model}-{dtype}.csv`` (tidy: one row per sub-network and way) and ``.md``;
- ``report/MODEL/``: ``plm-nas report`` of each model's results (hypervolume, ranks, relative performance, LaTeX);
- ``steps.csv``: every step with its status and wall-clock seconds.

``--dry-run`` runs the same steps on the CPU with tiny budgets (a few dozen examples, 1 epoch, a handful of
sub-networks, seed 0), so the whole pipeline and the shape of every table can be checked without a GPU.

Expected GPU time (H200-class GPU; an estimate from known numbers, not yet measured; see the README's
"Scale-out on a GPU"): MiniLM-L6 (22.7M parameters, 11M in the encoder) is launch-bound at these batch sizes
(a forward and backward pass of 32 x 64 tokens is 135 GFLOP, about 0.5 ms in TF32, which the slice allows on the
GPU), about 10 ms per pass in eager PyTorch, 4 passes per sandwich step (1 during the 30% full-network warm-up):
about 31 ms per step. SST-2 (47,144 training examples, batch 64, 5 epochs: 3,685
steps) takes about 2 min per super-network, RTE/MRPC/STS-B (1,743/2,568/4,024 examples, batch 32) 9-20 s; a
100-sample search about 15 s; process start and tokenisation about 20 s per step. With 12 steps at a time the
slice's steps add up to about 3,600 step-seconds (contention included: x1.5), so about 5-6 minutes in all; the
critical path is an SST-2 super-network and its search (about 4 minutes).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from benchmarks.grids.runner import LOG_FILE, run_step
from benchmarks.grids.spec import DONE_MARKER, GridSpec, Step, _model_tag, expand
from benchmarks.results import read_results

L12_MODEL = "e5-small-l12"
SPEED_MODULE = "benchmarks.perf.speed"
KINDS = ("ws", "baselines", "nas", "speed")


@dataclass(frozen=True)
class SliceSpec:
    """What the slice runs: a grid of MiniLM, one of the 12-layer model, baselines and speed measurements."""

    name: str
    grid: GridSpec  # weight-sharing and standard NAS of MiniLM
    l12_grid: GridSpec  # weight-sharing NAS of the 12-layer model (when installed)
    nas_tasks: tuple[str, ...]  # standard NAS runs on these tasks only
    task_args: dict[str, tuple[str, ...]]  # per task, appended to super-network and fine-tuning options
    finetune_args: tuple[str, ...]
    prune_args: tuple[str, ...]
    speed_args: tuple[str, ...]
    speed_dtypes: tuple[str, ...] = ("float32", "bfloat16")
    jobs: int = 12
    device: str = "cuda"
    report: bool = True


_TASKS = ("sst2", "stsb", "mrpc", "rte")  # most expensive first: the scheduler starts steps in list order
_SEEDS = (0, 1, 2)
# The paper's budgets (5 epochs, full training splits, 100 sub-networks) at GPU-friendly batch sizes: the paper's
# batch 8 would make SST-2 alone take about 15 minutes per super-network (29,465 steps).
_TRAIN = ("--epochs", "5", "--lr", "5e-5", "--batch-size", "32", "--eval-batch-size", "128", "--device", "cuda",
          "--threads", "1", "--precision", "auto")
_MAC = ("--size-objective", "mac_fraction")

PAPER_SLICE = SliceSpec(
    name="paper-slice",
    grid=GridSpec(
        name="paper-slice",
        description="the paper's budgets on one GPU: MiniLM on RTE, MRPC, STS-B and SST-2, 3 seeds",
        tasks=_TASKS, models=("minilm",), search_spaces=("small",), strategies=("sandwich",),
        ws_searchers=("nsga2", "random_search"), nas_searchers=("moasha",), seeds=_SEEDS,
        supernet_args=_TRAIN,
        search_args=("--num-samples", "100", "--batch-size", "128", "--device", "cuda", "--threads", "1",
                     "--precision", "auto", *_MAC),
        nas_args=("--epochs", "5", "--lr", "5e-5", "--batch-size", "32", "--eval-batch-size", "128", "--workers", "2",
                  "--threads", "2", "--device", "cuda", "--precision", "auto", *_MAC),
        nas_budget_s={"default": 90},
    ),
    l12_grid=GridSpec(
        name="paper-slice-l12",
        description="the 12-layer model on RTE, MRPC and STS-B, 3 seeds, weight-sharing NAS",
        tasks=("stsb", "mrpc", "rte"), models=(L12_MODEL,), search_spaces=("small",), strategies=("sandwich",),
        ws_searchers=("nsga2",), nas_searchers=(), seeds=_SEEDS,
        supernet_args=_TRAIN,
        search_args=("--num-samples", "100", "--batch-size", "128", "--device", "cuda", "--threads", "1",
                     "--precision", "auto", *_MAC),
    ),
    nas_tasks=("rte", "mrpc"),
    task_args={"sst2": ("--batch-size", "64")},
    finetune_args=_TRAIN,
    prune_args=("--method", "rfp", "--eval-batch-size", "128", "--device", "cuda", "--threads", "1", "--precision",
                "auto", *_MAC),
    speed_args=("--device", "cuda", "--batch-size", "128", "--seq-len", "128", "--batches", "20", "--warmup", "3"),
)

# The same steps on the CPU with tiny budgets: checks the pipeline and the tables' shape in a few minutes.
_DRY_TRAIN = ("--epochs", "1", "--max-train-samples", "48", "--max-valid-samples", "24", "--max-test-samples", "24",
              "--batch-size", "16", "--lr", "5e-5", "--device", "cpu", "--threads", "1")
_DRY_SEARCH = ("--num-samples", "4", "--max-valid-samples", "24", "--max-test-samples", "24", "--device", "cpu",
               "--threads", "1", *_MAC)
DRY_RUN = SliceSpec(
    name="paper-slice-dry-run",
    grid=replace(
        PAPER_SLICE.grid, name="paper-slice-dry-run", seeds=(0,), supernet_args=(*_DRY_TRAIN, "--rewire-examples", "16"),
        search_args=_DRY_SEARCH,
        nas_args=("--epochs", "1", "--max-train-samples", "24", "--max-valid-samples", "24", "--max-test-samples",
                  "24", "--batch-size", "16", "--workers", "1", "--max-trials", "2", "--threads", "1", "--device",
                  "cpu", *_MAC),
        nas_budget_s={"default": 120},
    ),
    l12_grid=replace(PAPER_SLICE.l12_grid, tasks=("rte",), seeds=(0,),
                     supernet_args=(*_DRY_TRAIN, "--rewire-examples", "16"), search_args=_DRY_SEARCH),
    nas_tasks=("rte",),
    task_args={},
    finetune_args=_DRY_TRAIN,
    prune_args=("--method", "rfp", "--budgets", "0.5", "0.75", "--num-samples", "16", "--max-valid-samples", "24",
                "--max-test-samples", "24", "--device", "cpu", "--threads", "1", *_MAC),
    speed_args=("--device", "cpu", "--batch-size", "2", "--seq-len", "16", "--batches", "1", "--warmup", "0",
                "--threads", "1"),
    jobs=2,
    device="cpu",
)


@dataclass(frozen=True)
class ModuleStep(Step):
    """A step that runs ``python -m MODULE COMMAND...`` instead of a ``plm-nas`` command."""

    module: str = SPEED_MODULE


@dataclass
class Outcome:
    step: Step
    status: str  # "done" (earlier), "ok", "failed", "skipped"
    seconds: float = 0.0
    note: str = ""


def with_model(spec: SliceSpec, model: str) -> SliceSpec:
    """The slice with another model in MiniLM's place (a folder or hub name; the tests use a tiny one)."""
    return replace(spec, grid=replace(spec.grid, models=(model,)))


def l12_available() -> bool:
    """Whether the 12-layer model's package is installed (``supernet.loading``)."""
    from supernet.loading import optional_model_available

    return optional_model_available(L12_MODEL)


def _with_task_args(grid: GridSpec, task: str, task_args: dict[str, tuple[str, ...]]) -> GridSpec:
    extra = task_args.get(task, ())
    return replace(grid, tasks=(task,), supernet_args=(*grid.supernet_args, *extra))


def plan(
    spec: SliceSpec,
    root: Path,
    data_args: Sequence[str] = (),
    kinds: Sequence[str] = KINDS,
    tasks: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    with_l12: bool = True,
) -> list[Step]:
    """All steps of the slice in priority order (speed first; then the most expensive tasks' steps)."""
    tasks = tuple(t for t in spec.grid.tasks if tasks is None or t in tasks) + tuple(
        t for t in (tasks or ()) if t not in spec.grid.tasks)
    seeds = tuple(seeds) if seeds else spec.grid.seeds
    data_args = tuple(data_args)
    steps: list[Step] = []
    models = [spec.grid.models[0], *([L12_MODEL] if with_l12 else [])]
    if "speed" in kinds:
        for model in models:
            for dtype in spec.speed_dtypes:
                out = root / "speed"
                name = f"{_model_tag(model)}-{dtype}"
                steps.append(ModuleStep(
                    key=f"speed {name}",
                    command=("--model", model, "--dtype", dtype, *spec.speed_args,
                             "--out", str(out / f"{name}.md"), "--csv", str(out / f"{name}.csv")),
                    output_dir=out / name, resumable=False,
                ))
    for task in tasks:
        grid = replace(_with_task_args(spec.grid, task, spec.task_args), seeds=seeds)
        if "ws" in kinds:
            steps += expand(grid, root, data_args=data_args, kinds=("ws",))
        if "baselines" in kinds:
            model = grid.models[0]
            for seed in seeds:
                base = root / "baselines" / task / _model_tag(model)
                finetuned = base / "finetuned" / f"seed{seed}"
                steps.append(Step(
                    key=f"finetune {task}/{_model_tag(model)}/seed{seed}",
                    command=("finetune", "--model", model, "--task", task, "--seed", str(seed),
                             "--output-dir", str(finetuned), *data_args, *spec.finetune_args,
                             *spec.task_args.get(task, ())),
                    output_dir=finetuned, resumable=True,
                ))
                out = base / "rfp" / f"seed{seed}"
                steps.append(Step(
                    key=f"prune rfp {task}/{_model_tag(model)}/seed{seed}",
                    command=("prune", "--finetuned", str(finetuned), "--seed", str(seed), "--output-dir", str(out),
                             *data_args, *spec.prune_args),
                    output_dir=out, resumable=False, needs=finetuned,
                ))
        if "nas" in kinds and task in spec.nas_tasks:
            steps += expand(grid, root, data_args=data_args, kinds=("nas",))
    if with_l12 and "ws" in kinds:
        for task in spec.l12_grid.tasks:
            if task in tasks:
                grid = replace(_with_task_args(spec.l12_grid, task, spec.task_args),
                               seeds=tuple(s for s in spec.l12_grid.seeds if s in seeds) or seeds[:1])
                steps += expand(grid, root, data_args=data_args, kinds=("ws",))
    return steps


def run_module_step(step: ModuleStep, env: dict[str, str] | None = None) -> int:
    """Like ``run_step``, for a ``python -m`` step: its own log and ``DONE`` marker."""
    step.output_dir.mkdir(parents=True, exist_ok=True)
    with open(step.output_dir / LOG_FILE, "a") as log:
        log.write(f"$ python -m {step.module} {' '.join(step.command)}\n")
        log.flush()
        code = subprocess.call([sys.executable, "-m", step.module, *step.command], stdout=log,
                               stderr=subprocess.STDOUT, env=env)
    if code == 0:
        (step.output_dir / DONE_MARKER).write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
    return code


def run_any(step: Step, env: dict[str, str] | None = None) -> int:
    return run_module_step(step, env) if isinstance(step, ModuleStep) else run_step(step, env)


def run_parallel(
    steps: Sequence[Step], jobs: int, env: dict[str, str] | None = None,
    runner: Callable[[Step, dict[str, str] | None], int] = run_any, echo: Callable[[str], None] = print,
) -> list[Outcome]:
    """Run the unfinished steps, up to ``jobs`` at once, each as soon as the step it needs has finished.

    Steps start in list order. A step whose prerequisite failed (or is neither done nor among the steps) is
    skipped. Returns one outcome per step, in list order.
    """
    outcomes = {id(step): Outcome(step, "done") for step in steps if step.done}
    pending = [step for step in steps if not step.done]
    producers = {step.output_dir for step in steps}
    running: dict[Future, tuple[Step, float]] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        while pending or running:
            for step in list(pending):
                if len(running) >= jobs:
                    break
                if step.needs is not None and not (step.needs / DONE_MARKER).is_file():
                    blocked = step.needs not in producers or any(
                        o.step.output_dir == step.needs and o.status in ("failed", "skipped") for o in outcomes.values())
                    if blocked:
                        pending.remove(step)
                        outcomes[id(step)] = Outcome(step, "skipped", note=f"{step.needs} unfinished")
                        echo(f"skipped {step.key} ({step.needs} unfinished)")
                    continue
                pending.remove(step)
                running[pool.submit(runner, step, env)] = (step, time.time())
            if not running:
                continue  # everything left was skipped just now
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                step, started = running.pop(future)
                try:
                    code = future.result()
                except Exception as err:  # noqa: BLE001 - a step that cannot even start fails alone
                    code, note = -1, f"{type(err).__name__}: {err}"
                else:
                    note = "" if code == 0 else f"exit {code}; log: {step.output_dir / LOG_FILE}"
                seconds = time.time() - started
                outcomes[id(step)] = Outcome(step, "ok" if code == 0 else "failed", seconds, note)
                echo(f"{'ok    ' if code == 0 else 'FAILED'} {step.key} ({seconds:.0f} s){' ' + note if note else ''}")
    return [outcomes[id(step)] for step in steps]


def combine_results(root: Path) -> pd.DataFrame | None:
    """All results tables under the slice's result folders, as one tidy table (``None`` when there are none)."""
    frames = []
    for name in ("weight-sharing", "standard", "baselines"):
        folder = root / name
        if folder.is_dir() and any(folder.rglob("results.csv")):
            frames.append(read_results(folder))
    return pd.concat(frames, ignore_index=True) if frames else None


def report_steps(root: Path) -> list[Step]:
    """One ``plm-nas report`` per model (a report tells methods apart, not models), into ``report/MODEL/``."""
    steps: list[Step] = []
    kinds = ("weight-sharing", "standard", "baselines")
    tags = sorted({folder.name for kind in kinds for folder in (root / kind).glob("*/*") if folder.is_dir()})
    for tag in tags:
        sources = [str(folder) for kind in kinds for folder in sorted((root / kind).glob(f"*/{tag}"))
                   if any(folder.rglob("results.csv"))]
        if sources:
            out = root / "report" / tag
            steps.append(ModuleStep(key=f"report {tag}", command=("report", *sources, "--out", str(out)),
                                    output_dir=out, resumable=False, module="benchmarks.cli"))
    return steps


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-dir", required=True, type=Path, help="root folder of the slice's runs")
    parser.add_argument("--data-dir", default=None, help="local GLUE copy (default: $GLUE_DIR, else the hub)")
    parser.add_argument("--dry-run", action="store_true",
                        help="the same steps on the CPU with tiny budgets (seed 0), a few minutes in all")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS,
                        help="weight-sharing NAS (ws), pruning baselines, standard NAS (nas), speed measurements")
    parser.add_argument("--tasks", nargs="+", default=None, help="restrict to these tasks")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="override the seeds")
    parser.add_argument("--jobs", type=int, default=None, help="steps run at once (default: 12; dry run: 2)")
    parser.add_argument("--model", default=None, help="another model in MiniLM's place (default: minilm)")
    parser.add_argument("--no-l12", action="store_true", help=f"leave out the 12-layer model {L12_MODEL!r}")
    parser.add_argument("--no-report", action="store_true", help="skip plm-nas report at the end")
    parser.add_argument("--list", action="store_true", help="print the steps and whether each is done; run nothing")


def run(args: argparse.Namespace, runner: Callable[[Step, dict[str, str] | None], int] = run_any) -> int:
    """Run the slice (``runner`` runs one step; the tests run ``plm-nas`` steps in their own process)."""
    spec = DRY_RUN if args.dry_run else PAPER_SLICE
    if args.model:
        spec = with_model(spec, args.model)
    root: Path = args.output_dir
    with_l12 = not args.no_l12 and l12_available()
    if not args.no_l12 and not with_l12:
        print(f"note: the 12-layer model {L12_MODEL!r} is not installed (pip install -e '.[l12]'); leaving it out")
    data_args = ("--data-dir", args.data_dir) if args.data_dir else ()
    steps = plan(spec, root, data_args=data_args, kinds=args.kinds, tasks=args.tasks, seeds=args.seeds,
                 with_l12=with_l12)
    if args.list:
        for step in steps:
            print(f"[{'done' if step.done else '    '}] {step.key}  ->  {step.output_dir}")
        return 0
    root.mkdir(parents=True, exist_ok=True)
    if with_l12:
        from supernet.loading import resolve_model_name

        resolve_model_name(L12_MODEL)  # convert it once here, not in every step at the same time
    env = dict(os.environ, MPLBACKEND="Agg", TOKENIZERS_PARALLELISM="false")
    jobs = args.jobs or spec.jobs
    started = time.time()
    print(f"{spec.name}: {len(steps)} steps, {sum(step.done for step in steps)} already done, {jobs} at a time")
    if spec.device == "cuda":  # the speed measurements first, alone on the GPU: clean timings
        speed = [step for step in steps if isinstance(step, ModuleStep)]
        outcomes = run_parallel(speed, 1, env, runner)
        # TF32 matrix products for training and search; the speed steps above time plain fp32 and bf16
        env = {"TORCH_ALLOW_TF32_CUBLAS_OVERRIDE": "1", **env}
        outcomes += run_parallel([step for step in steps if not isinstance(step, ModuleStep)], jobs, env, runner)
        outcomes = [outcomes[[o.step for o in outcomes].index(step)] for step in steps]  # in plan order
    else:  # a dry run checks the pipeline, not the timings
        outcomes = run_parallel(steps, jobs, env, runner)
    combined = combine_results(root)
    if combined is not None:
        combined.to_csv(root / "all_results.csv", index=False)
    if spec.report and not args.no_report and combined is not None:
        outcomes += run_parallel(report_steps(root), 1, env, runner)
    pd.DataFrame.from_records(
        [{"step": o.step.key, "status": o.status, "seconds": round(o.seconds, 1), "output_dir": str(o.step.output_dir),
          "note": o.note} for o in outcomes]
    ).to_csv(root / "steps.csv", index=False)
    failed = [o for o in outcomes if o.status in ("failed", "skipped")]
    print(f"{spec.name}: {len(outcomes) - len(failed)} of {len(outcomes)} steps finished in "
          f"{time.time() - started:.0f} s; tables in {root}")
    for outcome in failed:
        print(f"{outcome.status}: {outcome.step.key} ({outcome.note})", file=sys.stderr)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
