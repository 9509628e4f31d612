"""``plm-nas finetune``: fine-tune the full model on a task (the ``standard`` strategy with the Trainer).

Writes to ``--output-dir``: ``best_model/`` (the epoch with the best validation metric, ``save_pretrained``
with its tokenizer), ``metrics.json`` (per-epoch history, best epoch, its validation and test metrics),
``checkpoint/`` (the per-epoch training checkpoint that ``--resume`` continues from) and ``run.json``.
The data, model and argument set-up here is shared with ``plm-nas train-supernet``.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from benchmarks.tasks.data import AUTO, DEFAULT_MAX_LENGTH, load_splits, make_dataloaders
from benchmarks.tasks.metrics import metrics_fn
from benchmarks.files import write_folder_atomic, write_json_atomic
from benchmarks.runinfo import write_run_info
from benchmarks.tasks.registry import TaskSpec, get_task
from supernet.evaluation import EvaluationResult, evaluate
from supernet.loading import DEFAULT_MODEL, load_model, load_tokenizer, resolve_device
from supernet.model import SuperNetwork
from supernet.strategies import get_strategy
from supernet.training import Trainer, TrainerCallback, TrainerConfig, seed_everything

METRICS_FILE = "metrics.json"
BEST_MODEL_DIR = "best_model"
CHECKPOINT_DIR = "checkpoint"
DEVICES = ("auto", "cpu", "cuda")


# ------------------------------------------------------------------------------------------ shared set-up


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


@dataclass
class Setup:
    """A task's model, tokenizer and loaders as built from the common arguments."""

    task: TaskSpec
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    loaders: dict[str, DataLoader]
    device: torch.device


def prepare(args: argparse.Namespace) -> Setup:
    """Seed, then load the task's splits, the model (with a freshly initialised head) and the loaders."""
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    task = get_task(args.task)
    device = resolve_device(args.device)
    seed_everything(args.seed)
    model = load_model(
        args.model, head=task.head, num_labels=task.num_labels, problem_type=task.problem_type, device=device
    )
    tokenizer = load_tokenizer(args.model)
    splits = load_splits(
        task,
        data_dir=args.data_dir,
        seed=args.dataset_seed,
        max_valid_samples=AUTO if args.max_valid_samples is None else args.max_valid_samples,
        max_train_samples=args.max_train_samples,
    )
    loaders = make_dataloaders(
        task, splits, tokenizer, batch_size=args.batch_size, eval_batch_size=args.eval_batch_size,
        max_length=args.max_length, seed=args.seed,
    )
    return Setup(task=task, model=model, tokenizer=tokenizer, loaders=loaders, device=device)


def trainer_config(args: argparse.Namespace) -> TrainerConfig:
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


def data_identity(args: argparse.Namespace) -> dict[str, Any]:
    """The settings that decide the training data; a resumed run must use the checkpointed run's."""
    return {
        "model": str(args.model), "task": args.task, "dataset_seed": args.dataset_seed,
        "data_dir": str(Path(args.data_dir).resolve()) if args.data_dir else None,
        "max_train_samples": args.max_train_samples, "max_valid_samples": args.max_valid_samples,
        "max_length": args.max_length,
    }


def prefixed(prefix: str, result: EvaluationResult) -> dict[str, float]:
    return {f"{prefix}_{name}": float(value) for name, value in result.metrics.items()}


# ----------------------------------------------------------------------------------------------- finetune


class BestModelCallback(TrainerCallback):
    """Validate every epoch; on a new best validation error save the model and score the test split."""

    def __init__(self, setup: Setup, output_dir: Path) -> None:
        self.setup = setup
        self.output_dir = output_dir
        self.best_error = math.inf
        self.best_epoch: int | None = None

    def on_train_begin(self, trainer: Trainer) -> None:
        """Recover the best epoch so far from a resumed history."""
        for record in trainer.history:
            if record["valid_error"] < self.best_error:
                self.best_error, self.best_epoch = record["valid_error"], record["epoch"]

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> dict[str, Any]:
        score = metrics_fn(self.setup.task)
        record = prefixed("valid", evaluate(trainer.supernet, self.setup.loaders["validation"], metrics_fn=score))
        if record["valid_error"] < self.best_error:
            self.best_error, self.best_epoch = record["valid_error"], epoch
            model, tokenizer = trainer.supernet.model, self.setup.tokenizer
            write_folder_atomic(self.output_dir / BEST_MODEL_DIR,
                                lambda folder: (model.save_pretrained(folder), tokenizer.save_pretrained(folder)))
            record.update(prefixed("test", evaluate(trainer.supernet, self.setup.loaders["test"], metrics_fn=score)))
            record["best"] = True
        else:
            record["best"] = False
        print(_epoch_line(epoch, trainer.config.epochs, record), flush=True)
        return record


def _epoch_line(epoch: int, epochs: int, record: dict[str, Any]) -> str:
    parts = [f"epoch {epoch}/{epochs}"]
    parts += [f"{key}={value:.4f}" for key, value in record.items() if key.endswith("_error")]
    return "  ".join(parts) + ("  (best)" if record.get("best") else "")


def summarise(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Best epoch by validation error, with its validation and test metrics."""
    best = min(history, key=lambda record: record["valid_error"])
    pick = lambda prefix: {k[len(prefix) + 1:]: v for k, v in best.items() if k.startswith(prefix + "_")}  # noqa: E731
    return {"best_epoch": best["epoch"], "valid": pick("valid"), "test": pick("test")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Fine-tune, keep the best epoch's model, and write metrics.json and run.json."""
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_run_info(output_dir, args, seed=args.seed, keep_previous=args.resume, command_name="finetune")
    setup = prepare(args)
    callback = BestModelCallback(setup, output_dir)
    trainer = Trainer(
        SuperNetwork(setup.model),
        get_strategy("standard"),
        setup.loaders["train"],
        trainer_config(args),
        checkpoint_dir=output_dir / CHECKPOINT_DIR,
        callbacks=[callback],
        data_identity=data_identity(args),
    )
    history = trainer.fit(resume=args.resume)
    summary = {"task": setup.task.name, "model": args.model, **summarise(history), "history": history}
    write_json_atomic(summary, output_dir / METRICS_FILE)
    main = setup.task.main_metric
    print(
        f"best epoch {summary['best_epoch']}: validation {main} {summary['valid']['main']:.4f}, "
        f"test {main} {summary['test']['main']:.4f}; model in {output_dir / BEST_MODEL_DIR}",
        flush=True,
    )
    return 0
