"""What a pruning baseline works on: its settings, the fine-tuned model, the task's loaders; its candidates."""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from benchmarks.artifacts import base_model_name, check_model_task, finetuned_dataset_seed, finetuned_model_dir
from benchmarks.tasks.loaders import DataSettings, make_dataloaders, subsample, task_splits
from benchmarks.tasks.metrics import metrics_fn
from benchmarks.tasks.registry import TaskSpec, get_task
from search_spaces.latency import LatencyTable
from search_spaces.masks import SubNetworkMasks
from search_spaces.shape import ModelShape
from supernet.precision import Precision

DEFAULT_BUDGETS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class PruneSettings:
    """Everything ``plm-nas prune`` does, parsed once from its options."""

    method: str
    finetuned: Path
    task: str | None  # None: the task stored with the fine-tuned model
    output_dir: Path
    data_dir: str | None = None
    run_id: str | None = None
    size_objective: str = "param_fraction"
    seed: int = 0
    dataset_seed: int | None = None  # None: the fine-tuned model's
    force: bool = False
    max_length: int = 128
    seq_len: int | None = None
    eval_batch_size: int = 32
    max_valid_samples: int | None = None
    max_test_samples: int | None = None
    device: str = "auto"
    threads: int | None = None
    save_models: bool = False
    no_progress: bool = False
    layers_dropped: tuple[int, ...] | None = None
    epochs: int = 5
    lr: float = 5e-5
    batch_size: int = 8
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    max_train_samples: int | None = None
    min_train_words: int | None = None
    step_fraction: float = 0.1
    budgets: tuple[float, ...] = DEFAULT_BUDGETS
    num_samples: int = 1024
    sample_batch_size: int = 32
    teacher: str = "full"
    no_rearrange: bool = False
    no_rescale: bool = False
    max_scale: float = 10.0
    precision: str = "fp32"  # resolved (fp32, bf16, fp16)
    latency_table: Path | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "PruneSettings":
        values = {f.name: getattr(args, f.name) for f in fields(cls)}
        values["layers_dropped"] = tuple(args.layers_dropped) if args.layers_dropped is not None else None
        return cls(**{**values, "finetuned": Path(args.finetuned), "output_dir": Path(args.output_dir),
                      "budgets": tuple(args.budgets)})

    def data(self, dataset_seed: int) -> DataSettings:
        """The examples the run reads (validation and test, and training examples for layer-drop and rfp)."""
        return DataSettings(data_dir=self.data_dir, dataset_seed=dataset_seed,
                            max_train_samples=self.max_train_samples, max_valid_samples=self.max_valid_samples,
                            max_test_samples=self.max_test_samples, max_length=self.max_length,
                            batch_size=self.batch_size, eval_batch_size=self.eval_batch_size,
                            min_train_words=self.min_train_words)


def check_settings(args: PruneSettings) -> None:
    """Raise a ValueError naming the option for settings that cannot work."""
    positive = ("max_length", "eval_batch_size", "epochs", "batch_size", "num_samples", "sample_batch_size")
    for name in positive:
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.seq_len is not None and args.seq_len < 1:
        raise ValueError(f"--seq-len must be >= 1, got {args.seq_len}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    bad = [b for b in args.budgets if not 0.0 < b <= 1.0]
    if bad:
        raise ValueError(f"--budgets are fractions of the full model's MACs in (0, 1], got {bad}")
    if not 0.0 < args.step_fraction <= 1.0:
        raise ValueError(f"--step-fraction must be in (0, 1], got {args.step_fraction}")



@dataclass
class PruneContext:
    """Everything a method needs: the fine-tuned model, the task, the loaders and the settings."""

    settings: PruneSettings
    dataset_seed: int  # the fine-tuned model's split seed (or the one forced)
    task: TaskSpec
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    shape: ModelShape
    loaders: dict[str, DataLoader]
    device: torch.device
    model_name: str  # the pre-trained model the fine-tuned one came from, for the results' model column
    precision: Precision = Precision()
    latency: LatencyTable | None = None

    @property
    def progress(self) -> bool:
        return not self.settings.no_progress

    @property
    def seq_len(self) -> int:
        return self.settings.seq_len or self.settings.max_length


@dataclass
class Candidate:
    """One pruned model of a method; errors (and task metrics) are set when the method chose an epoch by
    validation itself."""

    masks: SubNetworkMasks
    model: PreTrainedModel
    details: dict[str, Any] = field(default_factory=dict)
    valid_error: float | None = None
    test_error: float | None = None
    epoch: float = math.nan
    valid_metrics: dict[str, float] = field(default_factory=dict)
    test_metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class FinetunedModel:
    """The fine-tuned model a pruning run starts from, checked against the task before anything is loaded."""

    model_dir: Path
    task: TaskSpec
    dataset_seed: int  # the split seed it was fine-tuned with (or the one forced)


def locate_finetuned(settings: PruneSettings, task: TaskSpec | None = None) -> FinetunedModel:
    """Find the model folder, its task and split seed, and check its head against the task (small JSON files only).

    ``task`` (else ``--task``, else the one ``plm-nas finetune`` stored with the model) is the task to prune on.
    """
    from benchmarks.errors import UsageError
    from benchmarks.tasks.definition import read_task_file

    model_dir = finetuned_model_dir(settings.finetuned)
    stored = read_task_file(model_dir)
    if task is None:
        task = get_task(settings.task) if settings.task else stored
    if task is None:
        raise UsageError(f"{model_dir} records no task (fine-tuned elsewhere); pass --task or your own data files")
    if stored is not None and stored.name != task.name:
        raise UsageError(f"{model_dir} was fine-tuned on task {stored.name!r}, not {task.name!r}; drop --task, or "
                         f"pass a model fine-tuned on {task.name!r}")
    check_model_task(model_dir, task)
    dataset_seed = finetuned_dataset_seed(settings.finetuned, settings.dataset_seed, settings.force)
    return FinetunedModel(model_dir=model_dir, task=task, dataset_seed=dataset_seed)


def prepare(settings: PruneSettings, extra_splits: tuple[str, ...] = (),
            finetuned: FinetunedModel | None = None) -> PruneContext:
    """Load the fine-tuned model, its tokenizer, the task's splits and loaders (validation, test, ``extra_splits``)."""
    from supernet.loading import load_model, load_tokenizer, model_shape, resolve_device
    from supernet.training import seed_everything

    finetuned = finetuned or locate_finetuned(settings)
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    task, model_dir, dataset_seed = finetuned.task, finetuned.model_dir, finetuned.dataset_seed
    device = resolve_device(settings.device)
    seed_everything(settings.seed)
    model = load_model(str(model_dir), head=task.head, num_labels=task.num_labels,
                       problem_type=task.problem_type, device=device).eval()
    tokenizer = load_tokenizer(str(model_dir))
    splits = task_splits(task, settings.data(dataset_seed))
    # rfp's seeded subset of the (capped) training split, batched by --sample-batch-size
    splits["sample"] = subsample(splits["train"], settings.num_samples, settings.seed)
    batch_sizes = {"train": settings.batch_size, "validation": settings.eval_batch_size,
                   "test": settings.eval_batch_size, "sample": settings.sample_batch_size}
    loaders = {
        split: make_dataloaders(task, {split: splits[split]}, tokenizer, max_length=settings.max_length,
                                seed=settings.seed, batch_size=batch_sizes[split])[split]
        for split in ("validation", "test", *extra_splits)
    }
    return PruneContext(settings=settings, dataset_seed=dataset_seed, task=task, model=model, tokenizer=tokenizer,
                        shape=model_shape(model), loaders=loaders, device=device,
                        model_name=base_model_name(settings.finetuned, model_dir),
                        precision=Precision(settings.precision, device.type), latency=latency_table(settings, model))


def latency_table(settings: PruneSettings, model: PreTrainedModel) -> LatencyTable | None:
    """The ``--latency-table`` (None without one), checked against the model's shape."""
    from supernet.loading import model_shape

    if settings.latency_table is None:
        return None
    table = LatencyTable.read(settings.latency_table)
    table.check_shape(model_shape(model))
    return table


def evaluate_scores(ctx: PruneContext, model: PreTrainedModel, split: str) -> dict[str, float]:
    """Every task metric of ``model`` on a split, with ``main`` and ``error`` (1 - main metric)."""
    from supernet.evaluation import evaluate

    return dict(evaluate(model, ctx.loaders[split], metrics_fn=metrics_fn(ctx.task), precision=ctx.precision).metrics)
