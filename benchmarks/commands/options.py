"""Options several commands share, and their parsing into typed settings (the only place that sees argparse).

Only light modules are imported at the top, so that ``--help`` and argument errors answer fast; the settings
classes (torch, transformers) are imported by the functions that build them.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.commands.names import DEFAULT_MAX_LENGTH, DEFAULT_MODEL
from benchmarks.results import SIZE_OBJECTIVES

if TYPE_CHECKING:
    from benchmarks.finetuning import ModelRun
    from benchmarks.tasks.loaders import DataSettings
    from supernet.training import TrainerConfig

DEFAULT_SIZE_OBJECTIVE = "param_fraction"  # as benchmarks.objectives.DEFAULT_SIZE_OBJECTIVE

DEVICES = ("auto", "cpu", "cuda")


def add_common_arguments(parser: argparse.ArgumentParser, default_lr: float = 2e-5) -> None:
    """Model, data and optimisation options shared by ``finetune`` and ``train-supernet``."""
    parser.add_argument("--model", default=DEFAULT_MODEL, help="hub name or local folder (default: embedded MiniLM-L6)")
    parser.add_argument("--task", required=True, help="task name, e.g. rte, mrpc, stsb")
    parser.add_argument(
        "--data-dir", default=None, help="local copy of the data (default: $GLUE_DIR for GLUE tasks, else the hub)"
    )
    parser.add_argument("--output-dir", required=True, type=Path, help="folder for models, metrics and run.json")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (default 3)")
    parser.add_argument("--lr", type=float, default=default_lr, help=f"AdamW learning rate (default {default_lr:g})")
    parser.add_argument("--batch-size", type=int, default=16, help="training batch size (default 16)")
    parser.add_argument("--eval-batch-size", type=int, default=32, help="evaluation batch size (default 32)")
    parser.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (default 0.01)")
    parser.add_argument("--warmup-ratio", type=float, default=0.1, help="share of steps warming up (default 0.1)")
    parser.add_argument("--max-grad-norm", type=float, default=None, help="clip gradients to this norm (default: off)")
    parser.add_argument(
        "--max-length", type=int, default=DEFAULT_MAX_LENGTH,
        help=f"maximum tokens per example (default {DEFAULT_MAX_LENGTH})",
    )
    parser.add_argument("--max-train-samples", type=int, default=None, help="seeded subset of the training split")
    parser.add_argument(
        "--max-valid-samples", type=int, default=None,
        help="seeded subset of the validation split (default: 2,048 for large tasks, else all)",
    )
    parser.add_argument("--dataset-seed", type=int, default=0, help="seed of the 70/30 train/validation split")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialisation, shuffling, dropout, sampling")
    parser.add_argument("--device", default="auto", choices=DEVICES, help="auto: CUDA when available, else CPU")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--resume", action="store_true", help="continue from the last epoch checkpoint in --output-dir")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def add_size_objective_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--size-objective`` option of ``nas``, ``search`` and ``prune``."""
    parser.add_argument(
        "--size-objective",
        default=DEFAULT_SIZE_OBJECTIVE,
        choices=SIZE_OBJECTIVES,
        help="size objective minimised beside the validation error (default: param_fraction, the paper's; "
        "mac_fraction or encoder_param_fraction suit small models whose embeddings dominate, like MiniLM)",
    )


def data_settings(args: argparse.Namespace, **overrides: object) -> DataSettings:
    """The data options of a command (those it lacks keep their defaults)."""
    from benchmarks.tasks.loaders import DataSettings

    names = ("data_dir", "dataset_seed", "max_train_samples", "max_valid_samples", "max_test_samples", "max_length",
             "batch_size", "eval_batch_size")
    values = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    return DataSettings(**{**values, **overrides})


def trainer_config(args: argparse.Namespace) -> TrainerConfig:
    """The training protocol of the common options."""
    from supernet.loading import resolve_device
    from supernet.training import TrainerConfig

    return TrainerConfig(
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        weight_decay=args.weight_decay,
        warmup_ratio=args.warmup_ratio,
        max_grad_norm=args.max_grad_norm,
        seed=args.seed,
        device=str(resolve_device(args.device)),
        progress=not args.no_progress,
    )


def model_run(args: argparse.Namespace) -> ModelRun:
    """The common options of ``finetune`` and ``train-supernet`` as typed settings."""
    from benchmarks.finetuning import ModelRun
    from benchmarks.tasks.registry import get_task

    return ModelRun(model=args.model, task=get_task(args.task), data=data_settings(args), trainer=trainer_config(args),
                    device=args.device, threads=args.threads)


# ------------------------------------------------------------------------------- checks before any work

POSITIVE_INTS = ("epochs", "batch_size", "eval_batch_size", "max_length", "seq_len", "threads", "max_train_samples",
                 "max_valid_samples", "max_test_samples", "num_random", "rewire_examples", "workers", "max_trials",
                 "cpus_per_worker", "cpus_per_trial", "sample_batch_size")
NON_NEGATIVE = ("weight_decay", "max_failures", "num_samples")
POSITIVE_FLOATS = ("lr", "max_grad_norm", "temperature", "max_wallclock", "poll_interval", "step_fraction", "max_scale")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_option_ranges(args: argparse.Namespace) -> None:
    """Refuse out-of-range numbers before anything is loaded or written (only the options a command has)."""
    from benchmarks.errors import UsageError

    given = {name: value for name, value in vars(args).items() if value is not None and not name.startswith("_")}
    for name in POSITIVE_INTS:
        if name in given and given[name] < 1:
            raise UsageError(f"{_flag(name)} must be at least 1, got {given[name]}")
    for name in NON_NEGATIVE:
        if name in given and given[name] < 0:
            raise UsageError(f"{_flag(name)} must be 0 or more, got {given[name]}")
    for name in POSITIVE_FLOATS:
        if name in given and not given[name] > 0:
            raise UsageError(f"{_flag(name)} must be positive, got {given[name]}")
    for name in ("warmup_ratio", "full_warmup"):
        if name in given and not 0 <= given[name] < 1:
            raise UsageError(f"{_flag(name)} must lie in [0, 1), got {given[name]}")
    if "data_dir" in given and not Path(given["data_dir"]).is_dir():
        raise UsageError(f"--data-dir {given['data_dir']}: no such folder; pass the folder that holds the task's "
                         "data (for GLUE: RTE/, MRPC/, ...)")
    check_model_argument(given.get("model"))
    for name in ("output_dir", "out"):
        if name in given and Path(given[name]).exists() and not Path(given[name]).is_dir():
            raise UsageError(f"{_flag(name)} {given[name]} is a file; pass a folder")


def check_model_argument(model: str | None) -> None:
    """A ``--model`` that looks like a path must be a folder holding config.json (hub names pass)."""
    from benchmarks.errors import UsageError

    if model is None or model == DEFAULT_MODEL:
        return
    path = Path(model)
    looks_local = path.exists() or model.startswith((".", "/", "~")) or model.count("/") > 1
    if looks_local and not (path / "config.json").is_file():
        raise UsageError(f"--model {model}: no model there (a local model is a folder with config.json); pass "
                         f"such a folder, a hub name, or {DEFAULT_MODEL}")
