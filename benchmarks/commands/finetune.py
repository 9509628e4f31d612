"""``plm-nas finetune``: fine-tune the full model on a task (the shared fine-tuning protocol, on the whole model).

Writes to ``--output-dir``: ``best_model/`` (the epoch with the best validation metric, ``save_pretrained``
with its tokenizer), ``metrics.json`` (per-epoch history, best epoch, its validation and test metrics),
``checkpoint/`` (the per-epoch training checkpoint that ``--resume`` continues from) and ``run.json``.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.artifacts import BEST_MODEL_DIR, CHECKPOINT_DIR, METRICS_FILE
from benchmarks.commands.options import add_common_arguments, check_option_ranges, model_run
from benchmarks.files import write_folder_atomic, write_json_atomic
from benchmarks.runinfo import write_run_info
from benchmarks.tasks.definition import TASK_FILE, write_task_file

if TYPE_CHECKING:  # torch loads only when the command runs, so --help answers fast
    from benchmarks.finetuning import BestEpoch, ModelRun, Setup
    from supernet.training import Trainer


@dataclass(frozen=True)
class FinetuneSettings:
    """Everything ``plm-nas finetune`` does, parsed once from its options."""

    run: ModelRun
    output_dir: Path
    resume: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "FinetuneSettings":
        return cls(run=model_run(args), output_dir=Path(args.output_dir), resume=args.resume)


def best_model_epoch(setup: Setup, output_dir: Path, dataset_seed: int = 0) -> BestEpoch:
    """Validate every epoch; on a new best validation error save the model and score the test split."""
    from benchmarks.finetuning import BestEpoch, prefixed
    from benchmarks.tasks.definition import task_definition
    from benchmarks.tasks.metrics import metrics_fn
    from supernet.evaluation import evaluate

    model_record = {**task_definition(setup.task), "dataset_seed": dataset_seed}
    score = metrics_fn(setup.task)

    def validate(trainer: Trainer, epoch: int) -> dict[str, Any]:
        return prefixed("valid", evaluate(trainer.supernet, setup.loaders["validation"], metrics_fn=score,
                                          precision=setup.precision))

    def keep(trainer: Trainer, epoch: int, record: dict[str, Any]) -> dict[str, Any]:
        model, tokenizer = trainer.supernet.model, setup.tokenizer

        def save(folder: Path) -> None:
            model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            write_json_atomic(model_record, folder / TASK_FILE)  # the model's own task and split seed

        write_folder_atomic(output_dir / BEST_MODEL_DIR, save)
        return prefixed("test", evaluate(trainer.supernet, setup.loaders["test"], metrics_fn=score,
                                         precision=setup.precision))

    def show(trainer: Trainer, epoch: int, record: dict[str, Any]) -> None:
        print(_epoch_line(epoch, trainer.config.epochs, record), flush=True)

    return BestEpoch(validate, on_best=keep, on_saved=show, mark_best=True)


def _epoch_line(epoch: int, epochs: int, record: dict[str, Any]) -> str:
    parts = [f"epoch {epoch}/{epochs}"]
    parts += [f"{key}={value:.4f}" for key, value in record.items() if key.endswith("_error")]
    return "  ".join(parts) + ("  (best)" if record.get("best") else "")


def summarise(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Best epoch by validation error, with its validation and test metrics."""
    from benchmarks.finetuning import best_record

    best = best_record(history)
    pick = lambda prefix: {k[len(prefix) + 1:]: v for k, v in best.items() if k.startswith(prefix + "_")}  # noqa: E731
    return {"best_epoch": best["epoch"], "valid": pick("valid"), "test": pick("test")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)


def finetune(settings: FinetuneSettings, setup: Setup | None = None) -> dict[str, Any]:
    """Fine-tune, keep the best epoch's model, and write metrics.json; returns its summary."""
    from benchmarks.finetuning import fine_tune, prepare
    from supernet.model import SuperNetwork

    output_dir, run = settings.output_dir, settings.run
    setup = setup or prepare(run)
    best = best_model_epoch(setup, output_dir, run.data.dataset_seed)
    history = fine_tune(SuperNetwork(setup.model), setup.loaders["train"], run.trainer, best,
                        checkpoint_dir=output_dir / CHECKPOINT_DIR, resume=settings.resume,
                        data_identity=run.data_identity())
    summary = {"task": setup.task.name, "model": run.model, "dataset_seed": run.data.dataset_seed,
               "precision": run.trainer.precision, **summarise(history), "history": history}
    write_json_atomic(summary, output_dir / METRICS_FILE)
    return summary


def run(args: argparse.Namespace) -> int:
    """Fine-tune, keep the best epoch's model, and write metrics.json and run.json."""
    check_option_ranges(args)
    settings = FinetuneSettings.from_args(args)
    if settings.resume:
        from supernet.training import check_resume

        check_resume(settings.output_dir / CHECKPOINT_DIR, settings.run.trainer, "standard",
                     settings.run.data_identity())
    from benchmarks.finetuning import prepare

    setup = prepare(settings.run)  # model, tokenizer and data load (or fail) before anything is written
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    write_run_info(settings.output_dir, args, seed=args.seed, keep_previous=args.resume, command_name="finetune",
                   precision=settings.run.trainer.precision)
    write_task_file(settings.run.task, settings.output_dir)
    summary = finetune(settings, setup)
    main = settings.run.task.main_metric
    print(
        f"best epoch {summary['best_epoch']}: validation {main} {summary['valid']['main']:.4f}, "
        f"test {main} {summary['test']['main']:.4f}; model in {settings.output_dir / BEST_MODEL_DIR}",
        flush=True,
    )
    return 0
