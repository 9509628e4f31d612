"""What each command leaves on disk, and how the next command reads it back (one place for folder and file names).

``finetune`` and ``train-supernet`` write ``metrics.json``, ``checkpoint/`` and their model (``best_model/`` or
``supernet/`` with ``supernet.json``); standard-NAS trials with ``--save-models`` keep ``best_model/`` with
``trial.json``. ``search``, ``prune`` and ``export`` read these through the functions here, not through
another command's module.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.files import RUN_INFO_FILE

if TYPE_CHECKING:  # torch and transformers load only where a model is read
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from search_spaces.shape import ModelShape

METRICS_FILE = "metrics.json"
BEST_MODEL_DIR = "best_model"
CHECKPOINT_DIR = "checkpoint"
SUPERNET_DIR = "supernet"
SUPERNET_INFO_FILE = "supernet.json"
TRIAL_INFO_FILE = "trial.json"


def read_supernet_info(folder: str | Path) -> dict[str, Any]:
    """The ``supernet.json`` of a saved super-network folder (``OUTPUT/supernet``), checked against its config."""
    from benchmarks.errors import UsageError, reading

    path = Path(folder) / SUPERNET_INFO_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {folder} is not a super-network saved by train-supernet")
    info = reading(path, lambda p: json.loads(p.read_text()), "super-network record")
    missing = [key for key in ("task", "head", "num_labels", "problem_type", "search_space", "strategy",
                               "dataset_seed") if key not in info]
    if not isinstance(info, dict) or missing:
        raise UsageError(f"{path} lacks {missing}: it was edited or not written by train-supernet; retrain, or "
                         "restore the file")
    config = reading(Path(folder) / "config.json", lambda p: json.loads(p.read_text()), "model config")
    if "config_sha256" in info:
        from benchmarks.tasks.definition import file_sha256

        if file_sha256(Path(folder) / "config.json") != info["config_sha256"]:
            raise UsageError(f"{Path(folder) / 'config.json'} was edited since train-supernet saved it beside its "
                             "weights (SHA-256 differs); restore it, or retrain the super-network")
    if not isinstance(info["num_labels"], int) or isinstance(info["num_labels"], bool):
        raise UsageError(f"{path}: num_labels {info['num_labels']!r} is not a number of labels; it was edited: "
                         "restore the file, or retrain the super-network")
    labels = len(config.get("id2label") or {}) or None
    if labels is not None and labels != int(info["num_labels"]):
        raise UsageError(f"{path} says {info['num_labels']} label(s) but {Path(folder) / 'config.json'} has a head "
                         f"for {labels}; one of them was edited: restore it, or retrain the super-network")
    check_recorded_task(info, path, config)
    return info


def check_recorded_task(info: dict[str, Any], path: Path, config: dict[str, Any]) -> None:
    """Refuse a ``supernet.json`` whose task no longer matches the rest of the record (its task definition, the
    head, labels and problem type that task needs) or the training run's own records beside it (``metrics.json``
    and ``task.json`` of the ``train-supernet`` folder), or whose model ``config`` names other classes than the
    task's: one of them was edited after the fact, and the search would score the network on data it was not
    trained for."""
    from benchmarks.errors import UsageError
    from benchmarks.tasks.registry import get_task

    def edited(what: str) -> UsageError:
        return UsageError(f"{path} says task {info['task']!r} but {what}; one of them was edited: restore it, or "
                          "retrain the super-network")

    definition = info.get("task_definition") or {"name": info["task"], "registered": True}
    if definition.get("name") != info["task"]:
        raise edited(f"its task definition is of task {definition.get('name')!r}")
    if definition.get("registered", True):
        spec = get_task(str(info["task"]))
        needs, classes = (spec.head, spec.num_labels, spec.is_regression), tuple(spec.label_names)
    else:
        regression = definition.get("task_type") == "regression"
        classes = tuple(map(str, definition.get("label_names") or ()))
        needs = ("sequence-classification", 1 if regression else len(classes), regression)
    id2label = config.get("id2label") or {}
    named = tuple(str(id2label[key]) for key in sorted(id2label, key=lambda key: int(key)))
    if classes and named and not all(name.startswith("LABEL_") for name in named) and named != classes:
        raise edited(f"its model config names the classes {', '.join(named)}, and that task's are {', '.join(classes)}")
    recorded = (info["head"], info["num_labels"], info["problem_type"] == "regression")
    if recorded != needs:
        raise edited(f"it records a {recorded[0]} head for {recorded[1]} output(s){' (regression)' * recorded[2]}, "
                     f"and that task needs a {needs[0]} head for {needs[1]}{' (regression)' * needs[2]}")
    run_folder = path.parent.parent if path.parent.name == SUPERNET_DIR else None
    if run_folder is None:
        return
    records = {METRICS_FILE: ("task", "strategy", "search_space"), "task.json": ("name",)}
    for name, keys in records.items():
        other = run_folder / name
        try:
            saved = json.loads(other.read_text()) if other.is_file() else {}
        except (OSError, ValueError):
            continue  # an unreadable record of the run is not this file's business
        for key in keys:
            mine = info["task"] if key == "name" else info.get(key)
            if isinstance(saved, dict) and key in saved and saved[key] != mine:
                raise UsageError(f"{path} says {'task' if key == 'name' else key} {mine!r} but {other} says "
                                 f"{saved[key]!r}; one of them was edited: restore it, or retrain the super-network")


def supernet_folder(path: str | Path) -> Path:
    """A ``train-supernet`` output folder's ``supernet/``, or ``path`` itself when it is that folder."""
    folder = Path(path)
    if not (folder / SUPERNET_INFO_FILE).is_file() and (folder / SUPERNET_DIR / SUPERNET_INFO_FILE).is_file():
        return folder / SUPERNET_DIR
    return folder


@dataclass
class SuperNetSource:
    """A trained super-network to extract weight-sharing sub-networks from."""

    folder: Path
    info: dict[str, Any]
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    shape: ModelShape

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "SuperNetSource":
        """``path`` is a ``train-supernet`` output folder or its ``supernet/`` subfolder."""
        from supernet.loading import load_model, load_tokenizer, model_shape

        folder = supernet_folder(path)
        info = read_supernet_info(folder)
        model = load_model(str(folder), head=info["head"], num_labels=info["num_labels"],
                           problem_type=info["problem_type"], device=device)
        return cls(folder=folder, info=info, model=model, tokenizer=load_tokenizer(str(folder)),
                   shape=model_shape(model))


def supernet_task(info: dict[str, Any], folder: str | Path) -> Any:
    """The task a super-network was trained on, rebuilt from its ``supernet.json`` (your own files checked)."""
    from benchmarks.tasks.definition import task_from_definition

    return task_from_definition(info.get("task_definition") or {"name": info["task"]}, where=str(folder))


def check_dataset_seed(requested: int | None, trained: int, force: bool) -> int:
    """The dataset seed to use: the super-network's, unless another one is forced."""
    if requested is None or requested == trained:
        return trained
    if not force:
        raise ValueError(
            f"the super-network was trained with --dataset-seed {trained}; searching with {requested} would put "
            "its training examples into the validation split. Drop --dataset-seed, or pass --force"
        )
    return requested


def finetuned_dataset_seed(finetuned: Path, requested: int | None, force: bool) -> int:
    """The split seed of the fine-tuned model, so its training examples stay out of validation.

    Read from the model's own record (``best_model/task.json``, written with its weights), else from the run's
    ``run.json``; a model fine-tuned elsewhere uses ``requested`` or 0.
    """
    from benchmarks.tasks.definition import TASK_FILE

    for folder in (finetuned, finetuned / BEST_MODEL_DIR):
        record = folder / TASK_FILE
        if record.is_file() and (folder / "config.json").is_file():
            seed = json.loads(record.read_text()).get("dataset_seed")
            if seed is not None:
                return check_dataset_seed(requested, int(seed), force)
    info = finetuned / RUN_INFO_FILE
    if not info.is_file():
        return 0 if requested is None else requested
    trained = json.loads(info.read_text()).get("arguments", {}).get("dataset_seed")
    if trained is None:
        return 0 if requested is None else requested
    return check_dataset_seed(requested, int(trained), force)


def finetuned_model_dir(path: Path) -> Path:
    """The model folder of a ``plm-nas finetune`` output folder, or ``path`` itself when it holds a model."""
    for candidate in (path / BEST_MODEL_DIR, path):
        if (candidate / "config.json").is_file():
            return candidate
    raise FileNotFoundError(
        f"{path} holds no fine-tuned model: pass the output folder of `plm-nas finetune` or its {BEST_MODEL_DIR}/"
    )


def base_model_name(finetuned: Path, model_dir: Path) -> str:
    """The pre-trained model's name as ``plm-nas finetune`` recorded it, else the fine-tuned folder."""
    for folder in (finetuned, model_dir.parent):
        metrics = folder / METRICS_FILE
        if metrics.is_file():
            name = json.loads(metrics.read_text()).get("model")
            if name:
                return str(name)
    return str(model_dir)


def check_model_task(model_dir: Path, task: Any) -> None:
    """Refuse a model whose classification head (label count, recorded task) does not fit ``task``."""
    import json

    from benchmarks.errors import UsageError, reading

    config = reading(model_dir / "config.json", lambda path: json.loads(path.read_text()), "model config")
    labels = config.get("num_labels") or len(config.get("id2label") or {}) or None
    if labels is not None and int(labels) != task.num_labels:
        raise UsageError(f"{model_dir} has a head for {labels} label(s) but task {task.name!r} has {task.num_labels}; "
                         "pass the model fine-tuned on this task, or the task it was fine-tuned on")
    for folder in (model_dir, model_dir.parent):
        metrics = folder / "metrics.json"
        if metrics.is_file():
            recorded = reading(metrics, lambda path: json.loads(path.read_text()), "metrics file").get("task")
            if recorded and recorded != task.name:
                raise UsageError(f"{model_dir} was fine-tuned on task {recorded!r}, not {task.name!r}; pass "
                                 f"--task {recorded} or a model fine-tuned on {task.name!r}")
            break
