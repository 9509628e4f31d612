"""``plm-nas finetune``: fine-tune the full model on a task (the shared fine-tuning protocol, on the whole model).

Writes to ``--output-dir``: ``best_model/`` (the epoch with the best validation metric, ``save_pretrained``
with its tokenizer), ``metrics.json`` (per-epoch history, best epoch, its validation and test metrics),
``checkpoint/`` (the per-epoch training checkpoint that ``--resume`` continues from) and ``run.json``.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.artifacts import BEST_MODEL_DIR, CHECKPOINT_DIR
from benchmarks.commands.options import add_common_arguments, check_option_ranges, model_run
from benchmarks.runinfo import write_run_info
from benchmarks.tasks.definition import write_task_file

if TYPE_CHECKING:  # torch loads only when the command runs, so --help answers fast
    from benchmarks.finetuning import ModelRun


@dataclass(frozen=True)
class FinetuneSettings:
    """Everything ``plm-nas finetune`` does, parsed once from its options."""

    run: ModelRun
    output_dir: Path
    resume: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "FinetuneSettings":
        return cls(run=model_run(args), output_dir=Path(args.output_dir), resume=args.resume)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Fine-tune, keep the best epoch's model, and write metrics.json and run.json."""
    check_option_ranges(args)
    settings = FinetuneSettings.from_args(args)
    if settings.resume:
        from supernet.training import check_resume

        check_resume(settings.output_dir / CHECKPOINT_DIR, settings.run.trainer, "standard",
                     settings.run.data_identity())
    from benchmarks.finetuning import fine_tune_run, prepare

    setup = prepare(settings.run)  # model, tokenizer and data load (or fail) before anything is written
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    write_run_info(settings.output_dir, args, seed=args.seed, keep_previous=args.resume, command_name="finetune",
                   precision=settings.run.trainer.precision)
    write_task_file(settings.run.task, settings.output_dir)
    summary = fine_tune_run(settings.run, settings.output_dir, resume=settings.resume, setup=setup)
    main = settings.run.task.main_metric
    print(
        f"best epoch {summary['best_epoch']}: validation {main} {summary['valid']['main']:.4f}, "
        f"test {main} {summary['test']['main']:.4f}; model in {settings.output_dir / BEST_MODEL_DIR}",
        flush=True,
    )
    return 0
