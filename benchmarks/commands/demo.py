"""``plm-nas demo``: the main job, end to end on the embedded MiniLM in about ten minutes on a laptop CPU.

1. fine-tune the model on a training subset, then train a weight-sharing super-network from it, distilled from
   it (``train-supernet``'s default recipe),
2. run a weight-sharing multi-objective search on it (``search``),
3. measure a quick latency table of the model (``latency-table``: one sequence of 128 tokens, in the run's
   precision), so every searched sub-network has a predicted latency,
4. extract the Pareto-optimal sub-networks as standalone models and time each of them beside the full
   network in the table's setting, beside its prediction (``export --latency-table``),
5. write the report (``report``) with the extracted models' table.
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
from benchmarks.commands.names import DEFAULT_PRECISION, SEARCH_SPACE_NAMES, SEARCHER_NAMES, STRATEGY_NAMES
from benchmarks.commands.options import (
    add_custom_data_arguments,
    add_precision_argument,
    check_option_ranges,
    custom_data_argv,
    custom_data_given,
    task_spec,
)
from benchmarks.errors import UsageError
from benchmarks.results import SIZE_OBJECTIVES
from plotting.document import Cell, Paragraph, Section, Table

STAGES = ("train-supernet", "latency-table", "search", "export", "report")


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
    finetune_epochs: int = 1
    max_train_samples: int = 2000
    max_valid_samples: int = 512
    num_samples: int = 100
    latency_batch_size: int = 1
    seed: int = 0
    threads: int | None = None
    device: str = "auto"
    precision: str = DEFAULT_PRECISION
    no_progress: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "DemoSettings":
        custom = tuple(custom_data_argv(args)) if custom_data_given(args) else ()
        return cls(output_dir=Path(args.output_dir), model=args.model, task=args.task, custom_data=custom,
                   data_dir=args.data_dir, search_space=args.search_space, strategy=args.strategy,
                   searcher=args.searcher, size_objective=args.size_objective, epochs=args.epochs,
                   finetune_epochs=args.finetune_epochs,
                   max_train_samples=args.max_train_samples, max_valid_samples=args.max_valid_samples,
                   num_samples=args.num_samples, latency_batch_size=args.latency_batch_size, seed=args.seed,
                   threads=args.threads, device=args.device, precision=args.precision,
                   no_progress=args.no_progress)


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
    parser.add_argument("--epochs", type=int, default=1, help="super-network epochs (default 1)")
    parser.add_argument("--finetune-epochs", type=int, default=1,
                        help="plain fine-tuning epochs before the super-network (default 1)")
    parser.add_argument("--max-train-samples", type=int, default=2000)
    parser.add_argument("--max-valid-samples", type=int, default=512)
    parser.add_argument("--num-samples", type=int, default=100, help="sub-networks the search evaluates (default 100)")
    parser.add_argument("--latency-batch-size", type=int, default=1,
                        help="sequences (of 128 tokens) per timed batch of the extracted models (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    parser.add_argument("--device", default="auto")
    add_precision_argument(parser, "forward passes of every stage (training, search, timing)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_custom_data_arguments(parser.add_argument_group(
        "your own data instead of --task's (then the task is named after the data's folder)"))


def _stage(name: str, argv: list[str]) -> None:
    print(f"\n== {name}: plm-nas {' '.join(argv)}", flush=True)
    code = cli_main(argv)
    if code != 0:
        raise SystemExit(f"demo stage {name!r} failed with exit code {code}")


def check_demo_options(args: argparse.Namespace) -> None:
    """Refuse a bad choice before the first stage trains anything (the stages would find it only later)."""
    from benchmarks.tasks.registry import get_task

    check_option_ranges(args)
    if args.num_samples < 1:  # the search stage has no other budget: it would refuse only after the training
        raise UsageError(f"--num-samples must be at least 1, got {args.num_samples}")
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
    precision = ["--precision", settings.precision]
    data = ["--data-dir", settings.data_dir] if settings.data_dir else []
    task = list(settings.custom_data) if settings.custom_data else ["--task", settings.task]
    threads = ["--threads", str(settings.threads)] if settings.threads else []
    quiet = ["--no-progress"] if settings.no_progress else []
    train_dir, search_dir, models_dir, report_dir = out / "train", out / "search", out / "models", out / "report"
    resume = ["--resume"] if (train_dir / "checkpoint").exists() else []

    _stage("train-supernet", [
        "train-supernet", "--model", settings.model, *task, *data, "--output-dir", str(train_dir),
        "--search-space", settings.search_space, "--strategy", settings.strategy, "--epochs", str(settings.epochs),
        "--init-from", "finetune", "--finetune-epochs", str(settings.finetune_epochs),
        "--max-train-samples", str(settings.max_train_samples), "--max-valid-samples", str(settings.max_valid_samples),
        *common, *precision, *threads, *quiet, *resume,
    ])
    table_path = out / "latency-table.json"
    if not table_path.is_file():  # a quick table (coarse unit grid, few rounds): predictions for every row
        from supernet.loading import resolve_device

        _stage("latency-table", [
            "latency-table", "--model", settings.model, "--out", str(table_path), "--device",
            resolve_device(settings.device).type, "--batch-size", str(settings.latency_batch_size), "--unit-step",
            "128", "--repeats", "5", "--warmup", "1", *precision, *threads,
        ])
    search_resume = ["--resume"] if (search_dir / "results.csv").exists() else []
    _stage("search", [
        "search", "--supernet", str(train_dir / "supernet"), "--output-dir", str(search_dir),
        "--searcher", settings.searcher, "--num-samples", str(settings.num_samples),
        "--max-valid-samples", str(settings.max_valid_samples), "--size-objective", settings.size_objective,
        "--latency-table", str(table_path), *common, *precision, *threads, *quiet, *search_resume,
    ])
    _stage("export", ["export", "--results", str(search_dir), "--pick", "pareto", "--supernet",
                      str(train_dir / "supernet"), "--out", str(models_dir), "--latency-table", str(table_path)])
    latency = pd.read_csv(models_dir / "latency.csv")
    setting = json.loads((models_dir / "export.json").read_text())["latency_setting"]
    table = latency_table(latency)
    (models_dir / "latency.md").write_text(table.to_markdown() + "\n")

    print(f"\n== report: plm-nas report {search_dir} --out {report_dir}  (+ the extracted models)", flush=True)
    write_report(search_dir, report_dir, sections=[latency_section(table, setting)])
    print(f"\ndemo finished in {time.time() - started:.0f} s; report: {report_dir / 'report.md'}; "
          f"models: {models_dir}")
    return 0


def _number(value: float | None, spec: str) -> str:
    return "—" if value is None or pd.isna(value) else format(value, spec)


def _speed_up(fraction: float | None) -> str:
    """``1.53x`` from a latency fraction; a dash where the full network's latency is unknown."""
    return "—" if fraction is None or fraction != fraction or fraction <= 0 else f"{1 / fraction:.2f}x"


def latency_table(latency: pd.DataFrame) -> Table:
    """The measured models as a report table, largest first."""
    header = ["model", "parameters", "fraction of params", "fraction of MACs", "valid error", "test error",
              "latency (ms)", "predicted (ms)", "fraction of full latency", "speed-up"]
    rows = [[Cell(r.name), Cell(f"{int(r.params):,}"), Cell(f"{r.param_fraction:.3f}"), Cell(f"{r.mac_fraction:.3f}"),
             Cell(f"{r.valid_error:.4f}"), Cell(f"{r.test_error:.4f}"), Cell(f"{r.measured_latency_ms:.2f}"),
             Cell(_number(getattr(r, "predicted_latency_ms", None), ".2f")),
             Cell(_number(r.measured_latency_fraction, ".3f")), Cell(_speed_up(r.measured_latency_fraction))]
            for r in latency.itertuples()]
    return Table(header=header, rows=rows)


def latency_section(table: Table, setting: dict) -> Section:
    """The measured extracted models as a report section."""
    threads = setting.get("threads") or "all"
    intro = (f"Pareto-optimal sub-networks extracted as standalone models, each timed beside the full network "
             f"({setting['full_network_ms']:.2f} ms) on {setting['device_name']}: {setting['device']}, {threads} "
             f"thread(s), {setting['precision']}, one batch of {setting['batch_size']} x {setting['seq_len']} tokens, "
             f"median of {setting['repeats']} passes after {setting['warmup']} warm-up.")
    return Section("Extracted models", [Paragraph(intro), table])
