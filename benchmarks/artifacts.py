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
    """The ``supernet.json`` of a saved super-network folder (``OUTPUT/supernet``)."""
    path = Path(folder) / SUPERNET_INFO_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {folder} is not a super-network saved by train-supernet")
    return json.loads(path.read_text())


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

        folder = Path(path)
        if not (folder / SUPERNET_INFO_FILE).is_file() and (folder / SUPERNET_DIR / SUPERNET_INFO_FILE).is_file():
            folder = folder / SUPERNET_DIR
        info = read_supernet_info(folder)
        model = load_model(str(folder), head=info["head"], num_labels=info["num_labels"],
                           problem_type=info["problem_type"], device=device)
        return cls(folder=folder, info=info, model=model, tokenizer=load_tokenizer(str(folder)),
                   shape=model_shape(model))


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
    """The split seed of the fine-tuned model (from its ``run.json``), so its training examples stay out of
    validation; a model without ``run.json`` (fine-tuned elsewhere) uses ``requested`` or 0."""
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
