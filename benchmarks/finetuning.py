"""One fine-tuning protocol for every model that is trained on its own: finetune, standard-NAS trials, layer-drop.

The ``standard`` strategy trains the whole network; after every epoch :class:`BestEpoch` scores it, and a
strictly lower validation error than every earlier epoch makes a new best (so ties keep the earliest epoch).
A resumed run recovers the best so far from the trainer's history, so resuming never changes which epoch wins.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch.utils.data import DataLoader
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from benchmarks.tasks.loaders import DataSettings, task_loaders
from benchmarks.tasks.registry import TaskSpec
from search_spaces.shape import ModelShape
from supernet.evaluation import EvaluationResult
from supernet.loading import load_model, load_tokenizer, resolve_device
from supernet.precision import Precision
from supernet.strategies import get_strategy
from supernet.training import Trainer, TrainerCallback, TrainerConfig, seed_everything

Record = dict[str, Any]


class FixedNetwork(torch.nn.Module):
    """A standalone model behind the super-network interface the Trainer drives, with only its full network.

    The ``standard`` strategy asks for the full network (``masks=None``) on every step; this is that network.
    """

    def __init__(self, model: torch.nn.Module, shape: ModelShape | None) -> None:
        super().__init__()
        self.model = model
        self.shape = shape
        self.active_masks = None

    def set_sub_network(self, masks: Any) -> None:
        if masks is not None:
            raise ValueError("a fixed (extracted) network has no sub-networks; train it with the 'standard' strategy")

    def reset(self) -> None:
        """Nothing to reset: the network is always whole."""

    def forward(self, **batch: Any) -> Any:
        return self.model(**batch)


class BestEpoch(TrainerCallback):
    """Score every epoch; on a strictly lower validation error call ``on_best`` (ties keep the earliest epoch).

    ``score(trainer, epoch)`` returns the epoch's record (with ``valid_error``); ``on_best(trainer, epoch, record)``
    may return fields to add to it (e.g. test metrics scored only for a new best). ``on_saved(trainer, epoch,
    record)`` runs once the epoch's checkpoint exists, ``on_restored(trainer)`` once after a checkpoint was restored.
    With ``mark_best`` each record gets a ``best`` flag.
    """

    def __init__(
        self,
        score: Callable[[Trainer, int], Record],
        on_best: Callable[[Trainer, int, Record], Mapping[str, Any] | None] | None = None,
        on_saved: Callable[[Trainer, int, Record], None] | None = None,
        mark_best: bool = False,
        on_restored: Callable[[Trainer], None] | None = None,
    ) -> None:
        self.score = score
        self.on_restored = on_restored
        self.on_best = on_best
        self.on_saved = on_saved
        self.mark_best = mark_best
        self.best_error = math.inf
        self.best_epoch: int | None = None
        self.last: Record = {}

    def on_train_begin(self, trainer: Trainer) -> None:
        """Recover the best epoch so far from a resumed history."""
        for record in trainer.history:
            if float(record["valid_error"]) < self.best_error:
                self.best_error, self.best_epoch = float(record["valid_error"]), record["epoch"]
        if trainer.history and self.on_restored is not None:
            self.on_restored(trainer)

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> Record:
        record = dict(self.score(trainer, epoch))
        is_best = float(record["valid_error"]) < self.best_error
        if is_best:
            self.best_error, self.best_epoch = float(record["valid_error"]), epoch
            if self.on_best is not None:
                record.update(self.on_best(trainer, epoch, record) or {})
        if self.mark_best:
            record["best"] = is_best
        self.last = record
        return record

    def on_epoch_saved(self, trainer: Trainer, epoch: int) -> None:
        if self.on_saved is not None:
            self.on_saved(trainer, epoch, self.last)


def fine_tune(
    network: torch.nn.Module,
    train_loader: DataLoader,
    config: TrainerConfig,
    best: BestEpoch,
    checkpoint_dir: Any = None,
    resume: bool = False,
    data_identity: Mapping[str, Any] | None = None,
) -> list[Record]:
    """Train ``network`` (a SuperNetwork or a :class:`FixedNetwork`) with the standard strategy; returns the history."""
    trainer = Trainer(network, get_strategy("standard"), train_loader, config, checkpoint_dir=checkpoint_dir,
                      callbacks=[best], data_identity=dict(data_identity) if data_identity is not None else None)
    return trainer.fit(resume=resume)


def prefixed(prefix: str, result: EvaluationResult) -> dict[str, float]:
    """An evaluation's metrics keyed ``PREFIX_NAME`` (e.g. ``valid_error``), as histories record them."""
    return {f"{prefix}_{name}": float(value) for name, value in result.metrics.items()}


def best_record(history: list[Record]) -> Record:
    """The history's best epoch by validation error (ties: the earliest), as :class:`BestEpoch` chose it."""
    return min(history, key=lambda record: record["valid_error"])


# ------------------------------------------------------------------------------- training a task's model


@dataclass(frozen=True)
class ModelRun:
    """What ``finetune`` and ``train-supernet`` train: a model on a task's data, with a training protocol."""

    model: str
    task: TaskSpec
    data: DataSettings
    trainer: TrainerConfig
    device: str = "auto"
    threads: int | None = None

    def data_identity(self) -> dict[str, Any]:
        """The settings that decide the training data; a resumed run must use the checkpointed run's."""
        identity = {"model": self.model, "task": self.task.name, **self.data.identity()}
        if self.task.files is not None:  # your own data: the files' contents, not only their names
            from benchmarks.tasks.definition import task_definition

            identity["task_files"] = {split: entry["sha256"]
                                      for split, entry in task_definition(self.task)["files"].items()}
        return identity


@dataclass
class Setup:
    """A task's model, tokenizer and loaders as a :class:`ModelRun` describes them, and the run's precision."""

    task: TaskSpec
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    loaders: dict[str, DataLoader]
    device: torch.device
    precision: Precision = Precision()


def name_labels(model: PreTrainedModel, task: TaskSpec) -> None:
    """Give the model's config the task's real class names (``id2label``/``label2id``), saved with the model."""
    from benchmarks.tasks.definition import label_mappings

    for key, value in label_mappings(task).items():
        setattr(model.config, key, value)


def prepare(run: ModelRun) -> Setup:
    """Seed, then load the model (with a freshly initialised head), its tokenizer and the task's loaders."""
    if run.threads is not None:
        if run.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {run.threads}")
        torch.set_num_threads(run.threads)
    task = run.task
    device = resolve_device(run.device)
    seed_everything(run.trainer.seed)
    model = load_model(run.model, head=task.head, num_labels=task.num_labels, problem_type=task.problem_type,
                       device=device)
    name_labels(model, task)
    tokenizer = load_tokenizer(run.model)
    loaders = task_loaders(task, tokenizer, run.data, seed=run.trainer.seed)
    return Setup(task=task, model=model, tokenizer=tokenizer, loaders=loaders, device=device,
                 precision=Precision(run.trainer.precision, device.type))


# ------------------------------------------------------------------------ plain fine-tuning of a task's model


def best_model_epoch(setup: Setup, output_dir: Path, dataset_seed: int = 0) -> BestEpoch:
    """Validate every epoch; on a new best validation error save the model (``best_model/`` with the tokenizer
    and its task record) and score the test split."""
    from benchmarks.artifacts import BEST_MODEL_DIR
    from benchmarks.files import write_folder_atomic, write_json_atomic
    from benchmarks.tasks.definition import TASK_FILE, task_definition
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
        print(epoch_line(epoch, trainer.config.epochs, record), flush=True)

    return BestEpoch(validate, on_best=keep, on_saved=show, mark_best=True)


def epoch_line(epoch: int, epochs: int, record: Mapping[str, Any]) -> str:
    """``epoch 2/3  valid_error=0.1234  test_error=0.2345  (best)``."""
    parts = [f"epoch {epoch}/{epochs}"]
    parts += [f"{key}={value:.4f}" for key, value in record.items() if key.endswith("_error")]
    return "  ".join(parts) + ("  (best)" if record.get("best") else "")


def summarise(history: list[Record]) -> dict[str, Any]:
    """Best epoch by validation error, with its validation and test metrics."""
    best = best_record(history)
    pick = lambda prefix: {k[len(prefix) + 1:]: v for k, v in best.items() if k.startswith(prefix + "_")}  # noqa: E731
    return {"best_epoch": best["epoch"], "valid": pick("valid"), "test": pick("test")}


def fine_tune_run(run: ModelRun, output_dir: Path, resume: bool = False, setup: Setup | None = None) -> dict[str, Any]:
    """Plain fine-tuning of ``run`` into ``output_dir`` (what ``plm-nas finetune`` does after its checks): the best
    epoch's model in ``best_model/``, per-epoch checkpoints in ``checkpoint/`` (``resume`` continues from them),
    and ``metrics.json`` with the history and the best epoch's metrics, whose summary it returns."""
    from benchmarks.artifacts import CHECKPOINT_DIR, METRICS_FILE
    from benchmarks.files import write_json_atomic
    from supernet.model import SuperNetwork

    setup = setup or prepare(run)
    best = best_model_epoch(setup, output_dir, run.data.dataset_seed)
    history = fine_tune(SuperNetwork(setup.model), setup.loaders["train"], run.trainer, best,
                        checkpoint_dir=output_dir / CHECKPOINT_DIR, resume=resume, data_identity=run.data_identity())
    summary = {"task": setup.task.name, "model": run.model, "dataset_seed": run.data.dataset_seed,
               "precision": run.trainer.precision, **summarise(history), "history": history}
    write_json_atomic(summary, output_dir / METRICS_FILE)
    return summary
