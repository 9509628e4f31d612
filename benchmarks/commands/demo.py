"""``plm-nas demo``: the main job, end to end on the embedded MiniLM in about ten minutes on a laptop CPU.

1. train a weight-sharing super-network on a training subset (``train-supernet``),
2. run a weight-sharing multi-objective search on it (``search``),
3. extract the Pareto-optimal sub-networks as standalone models (``export``),
4. measure each extracted model's parameters, MACs and CPU latency on the test split,
5. write the report (``report``).
Every stage is the same command a user can run alone; the demo only chains them with small budgets.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmarks.cli import run_command as cli_main
from benchmarks.commands.names import SEARCH_SPACE_NAMES, SEARCHER_NAMES, STRATEGY_NAMES
from benchmarks.commands.options import (
    add_custom_data_arguments,
    check_option_ranges,
    custom_data_argv,
    custom_data_given,
    task_spec,
)
from benchmarks.errors import UsageError
from benchmarks.results import SIZE_OBJECTIVES, write_atomic
from benchmarks.tasks.definition import read_task_file
from benchmarks.tasks.registry import TaskSpec
from plotting.document import Cell, Paragraph, Section, Table

STAGES = ("train-supernet", "search", "export", "latency", "report")


@dataclass(frozen=True)
class DemoSettings:
    """Everything ``plm-nas demo`` does, parsed once from its (checked) options."""

    output_dir: Path
    model: str = "minilm"
    task: str = "sst2"
    custom_data: tuple[str, ...] = ()  # the options of your own data, passed on to the stages
    data_dir: str | None = None
    search_space: str = "small"
    strategy: str = "sandwich"
    searcher: str = "nsga2"
    size_objective: str = "mac_fraction"
    epochs: int = 1
    max_train_samples: int = 2000
    max_valid_samples: int = 512
    num_samples: int = 100
    latency_examples: int = 256
    seed: int = 0
    threads: int | None = None
    device: str = "auto"
    no_progress: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "DemoSettings":
        custom = tuple(custom_data_argv(args)) if custom_data_given(args) else ()
        return cls(output_dir=Path(args.output_dir), model=args.model, task=args.task, custom_data=custom,
                   data_dir=args.data_dir, search_space=args.search_space, strategy=args.strategy,
                   searcher=args.searcher, size_objective=args.size_objective, epochs=args.epochs,
                   max_train_samples=args.max_train_samples, max_valid_samples=args.max_valid_samples,
                   num_samples=args.num_samples, latency_examples=args.latency_examples, seed=args.seed,
                   threads=args.threads, device=args.device, no_progress=args.no_progress)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="minilm", help="hub name or local folder (default: embedded MiniLM-L6)")
    parser.add_argument("--task", default="sst2", help="task (default sst2: short sentences, clear signal on CPU)")
    parser.add_argument("--data-dir", default=None, help="local GLUE copy (default: $GLUE_DIR, else the hub)")
    parser.add_argument("--output-dir", type=Path, default=Path("runs/demo"), help="default runs/demo")
    parser.add_argument("--search-space", default="small")
    parser.add_argument("--strategy", default="sandwich")
    parser.add_argument("--searcher", default="nsga2",
                        help="default nsga2: it fills the front between 20%% and 80%% of the MACs, "
                             "where random search leaves gaps")
    parser.add_argument("--size-objective", default="mac_fraction",
                        help="mac_fraction suits MiniLM, whose embeddings are half of its parameters")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-train-samples", type=int, default=2000)
    parser.add_argument("--max-valid-samples", type=int, default=512)
    parser.add_argument("--num-samples", type=int, default=100, help="sub-networks the search evaluates (default 100)")
    parser.add_argument("--latency-examples", type=int, default=256, help="test examples timed per model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_custom_data_arguments(parser.add_argument_group(
        "your own data instead of --task's (then the task is named after the data's folder)"))


def _stage(name: str, argv: list[str]) -> None:
    print(f"\n== {name}: plm-nas {' '.join(argv)}", flush=True)
    code = cli_main(argv)
    if code != 0:
        raise SystemExit(f"demo stage {name!r} failed with exit code {code}")


def measure_exported(models_dir: Path, task: str | TaskSpec, data_dir: str | None, examples: int,
                     batch_size: int = 32, device: str = "auto") -> pd.DataFrame:
    """Latency of each exported model on the first ``examples`` test examples, beside its size and errors."""
    from benchmarks.perf.latency import measure_latency
    from benchmarks.tasks.loaders import make_dataloaders
    from benchmarks.tasks.registry import get_task
    from benchmarks.tasks.sources import load_official_splits
    from supernet.extract import load_extracted
    from supernet.loading import load_tokenizer, resolve_device

    export = json.loads((models_dir / "export.json").read_text())
    records = export["models"]
    if not records:
        raise RuntimeError(f"{models_dir} holds no exported models")
    first = models_dir / records[0]["name"]
    tokenizer = load_tokenizer(str(first))
    spec = get_task(task)
    test = load_official_splits(spec, data_dir)["test"]
    test = test.select(range(min(examples, len(test))))
    loader = make_dataloaders(spec, {"test": test}, tokenizer, batch_size=batch_size)["test"]
    batches = list(loader)
    rows = []
    for record in records:
        model = load_extracted(models_dir / record["name"], device=resolve_device(device))
        latency = measure_latency(model, batches)
        rows.append({
            "name": record["name"],
            "params": sum(p.numel() for p in model.parameters()),
            "macs": record["macs"],
            "mac_fraction": record["mac_fraction"],
            "param_fraction": record["param_fraction"],
            "valid_error": record["valid_error"],
            "test_error": record["test_error"],
            "examples_per_s": latency.examples_per_s,
            "ms_per_example": latency.ms_per_example,
        })
    frame = pd.DataFrame(rows).sort_values("mac_fraction", ascending=False, ignore_index=True)
    full = frame["ms_per_example"].iloc[0] if frame["mac_fraction"].iloc[0] >= 0.999 else None
    if full is not None:
        frame["speed_up"] = full / frame["ms_per_example"]
    return frame


def check_demo_options(args: argparse.Namespace) -> None:
    """Refuse a bad choice before the first stage trains anything (the stages would find it only later)."""
    from benchmarks.tasks.registry import get_task

    check_option_ranges(args)
    if custom_data_given(args):
        task_spec(argparse.Namespace(**{**vars(args), "task": None, "data_dir": args.data_dir}))
    else:
        get_task(args.task)
    choices = {"--search-space": (args.search_space, SEARCH_SPACE_NAMES),
               "--strategy": (args.strategy, STRATEGY_NAMES),
               "--searcher": (args.searcher, tuple(name for name in SEARCHER_NAMES if name != "moasha")),
               "--size-objective": (args.size_objective, SIZE_OBJECTIVES),
               "--device": (args.device, ("auto", "cpu", "cuda"))}
    for flag, (value, allowed) in choices.items():
        if value not in allowed:
            raise UsageError(f"{flag} {value!r} is not one of {', '.join(allowed)}")
    if args.latency_examples < 1:
        raise UsageError(f"--latency-examples must be at least 1, got {args.latency_examples}")


def run(args: argparse.Namespace) -> int:
    """Train a super-network, search it, export the front, time the models and write the report."""
    check_demo_options(args)
    return run_demo(DemoSettings.from_args(args))


def run_demo(settings: DemoSettings) -> int:
    """The demo's stages, each the ``plm-nas`` command a user can run alone."""
    from plotting.report import write_report

    out = settings.output_dir
    started = time.time()
    common = ["--seed", str(settings.seed), "--device", settings.device]
    data = ["--data-dir", settings.data_dir] if settings.data_dir else []
    task = list(settings.custom_data) if settings.custom_data else ["--task", settings.task]
    threads = ["--threads", str(settings.threads)] if settings.threads else []
    quiet = ["--no-progress"] if settings.no_progress else []
    train_dir, search_dir, models_dir, report_dir = out / "train", out / "search", out / "models", out / "report"
    resume = ["--resume"] if (train_dir / "checkpoint").exists() else []

    _stage("train-supernet", [
        "train-supernet", "--model", settings.model, *task, *data, "--output-dir", str(train_dir),
        "--search-space", settings.search_space, "--strategy", settings.strategy, "--epochs", str(settings.epochs),
        "--max-train-samples", str(settings.max_train_samples), "--max-valid-samples", str(settings.max_valid_samples),
        "--lr", "5e-5", *common, *threads, *quiet, *resume,
    ])
    search_resume = ["--resume"] if (search_dir / "results.csv").exists() else []
    _stage("search", [
        "search", "--supernet", str(train_dir / "supernet"), "--output-dir", str(search_dir),
        "--searcher", settings.searcher, "--num-samples", str(settings.num_samples),
        "--max-valid-samples", str(settings.max_valid_samples), "--size-objective", settings.size_objective,
        *common, *threads, *quiet, *search_resume,
    ])
    _stage("export", ["export", "--results", str(search_dir), "--pick", "pareto", "--supernet",
                      str(train_dir / "supernet"), "--out", str(models_dir)])

    print("\n== latency: extracted Pareto-optimal models on the test split", flush=True)
    task_of_run = read_task_file(train_dir) or settings.task  # your own data: the stored definition
    latency = measure_exported(models_dir, task_of_run, settings.data_dir, settings.latency_examples,
                               device=settings.device)
    write_atomic(latency, models_dir / "latency.csv")
    table = latency_table(latency)
    (models_dir / "latency.md").write_text(table.to_markdown() + "\n")
    print(latency.to_string(index=False))

    print(f"\n== report: plm-nas report {search_dir} --out {report_dir}  (+ the extracted models)", flush=True)
    write_report(search_dir, report_dir, sections=[latency_section(table)])
    print(f"\ndemo finished in {time.time() - started:.0f} s; report: {report_dir / 'report.md'}; "
          f"models: {models_dir}")
    return 0


def _speed_up(value: float | None) -> str:
    """``1.53x``; a dash when the full model is not among the measured ones (it was not on the front)."""
    return "—" if value is None or value != value else f"{value:.2f}x"


def latency_table(latency: pd.DataFrame) -> Table:
    """The measured models as a report table, largest first."""
    header = ["model", "parameters", "fraction of params", "fraction of MACs", "valid error", "test error",
              "examples/s", "ms/example", "speed-up"]
    rows = [[Cell(r.name), Cell(f"{r.params:,}"), Cell(f"{r.param_fraction:.3f}"), Cell(f"{r.mac_fraction:.3f}"),
             Cell(f"{r.valid_error:.4f}"), Cell(f"{r.test_error:.4f}"), Cell(f"{r.examples_per_s:.1f}"),
             Cell(f"{r.ms_per_example:.2f}"), Cell(_speed_up(getattr(r, "speed_up", None)))]
            for r in latency.itertuples()]
    return Table(header=header, rows=rows)


def latency_section(table: Table) -> Section:
    """The measured extracted models as a report section."""
    intro = ("Pareto-optimal sub-networks extracted as standalone models; latency measured on pre-tokenised "
             "test batches of 32 after one warm-up pass (median of 3 passes).")
    return Section("Extracted models", [Paragraph(intro), table])
