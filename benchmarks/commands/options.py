"""Options several commands share, and their parsing into typed settings (the only place that sees argparse)."""
from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.finetuning import ModelRun
from benchmarks.objectives import DEFAULT_SIZE_OBJECTIVE
from benchmarks.results import SIZE_OBJECTIVES
from benchmarks.tasks.loaders import DEFAULT_MAX_LENGTH, DataSettings
from benchmarks.tasks.registry import get_task
from supernet.loading import DEFAULT_MODEL, resolve_device
from supernet.training import TrainerConfig

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
    names = ("data_dir", "dataset_seed", "max_train_samples", "max_valid_samples", "max_test_samples", "max_length",
             "batch_size", "eval_batch_size")
    values = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    return DataSettings(**{**values, **overrides})


def trainer_config(args: argparse.Namespace) -> TrainerConfig:
    """The training protocol of the common options."""
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
    return ModelRun(model=args.model, task=get_task(args.task), data=data_settings(args), trainer=trainer_config(args),
                    device=args.device, threads=args.threads)
