"""A task's train / validation / test splits, and padded tensor batches of them.

As in the method, the official train set is split 70/30 into train and validation by a dataset seed, and
the official dev set is the test set. The data come from the Hugging Face hub by default, from a local
copy in the original layout when ``data_dir`` (or, for GLUE, the ``GLUE_DIR`` environment variable) is
given, or from a custom task's own files.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import datasets
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from benchmarks.tasks.registry import GLUE_HUB_PATH, LABEL, LocalFormat, TaskSpec, get_task, read_table

SPLITS = ("train", "validation", "test")
AUTO: Literal["auto"] = "auto"
GLUE_DIR_ENV = "GLUE_DIR"
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
DEFAULT_MAX_LENGTH = 128

Columns = dict[str, list[Any]]


# ------------------------------------------------------------------------------------------------ features


def task_features(task: str | TaskSpec) -> datasets.Features:
    """The features of every normalised split: string text columns and a class or float label."""
    spec = get_task(task)
    label = datasets.Value("float32") if spec.is_regression else datasets.ClassLabel(names=list(spec.label_names))
    return datasets.Features(
        {**{col: datasets.Value("string") for col in (*spec.text_columns, *spec.choice_columns)}, LABEL: label}
    )


def _label_ids(spec: TaskSpec, values: list[Any], label_map: Mapping[str, int] | None, where: str) -> list[Any]:
    """Turn raw label values into floats (regression) or class ids, rejecting unknown labels."""
    if spec.is_regression:
        try:
            return [float(value) for value in values]
        except ValueError as err:
            raise ValueError(f"task {spec.name!r}: non-numeric score in {where}: {err}") from err
    if label_map is None:
        label_map = {str(k): k for k in range(spec.num_labels)}
    unknown = sorted({str(value) for value in values} - set(label_map))
    if unknown:
        raise ValueError(
            f"task {spec.name!r}: unknown labels {unknown[:5]} in {where}; expected {', '.join(label_map)}"
        )
    return [label_map[str(value)] for value in values]


def _dataset(spec: TaskSpec, columns: Columns) -> datasets.Dataset:
    """An in-memory dataset with the task's normalised columns and features."""
    return datasets.Dataset.from_dict({col: columns[col] for col in spec.columns}, features=task_features(spec))


# ---------------------------------------------------------------------------------------- local file readers


def _read_tsv(path: Path, fmt: LocalFormat) -> Columns:
    """A GLUE TSV file: quoting off, optional UTF-8 BOM, columns by header name or by position."""
    lines = path.read_text(encoding="utf-8-sig").split("\n")
    rows = [line.rstrip("\r").split("\t") for line in lines if line.rstrip("\r")]
    if fmt.header:
        header, rows = rows[0], rows[1:]
        missing = [src for src in fmt.columns.values() if src not in header]
        if missing:
            raise ValueError(f"{path}: no column {missing} in its header {header}")
        positions = {col: header.index(src) for col, src in fmt.columns.items()}
    else:
        positions = {col: int(src) for col, src in fmt.columns.items()}
    width = max(positions.values()) + 1
    short = sum(len(row) < width for row in rows)
    if short:
        # GLUE's QQP train file holds a few such rows; the usual GLUE processors skip them too.
        warnings.warn(f"{path}: skipped {short} of {len(rows)} rows with fewer than {width} fields", stacklevel=3)
        rows = [row for row in rows if len(row) >= width]
    return {col: [row[pos] for row in rows] for col, pos in positions.items()}


def _read_csv(path: Path, fmt: LocalFormat) -> Columns:
    """A quoted CSV file with a header (SWAG's train.csv / val.csv)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [src for src in fmt.columns.values() if src not in frame.columns]
    if missing:
        raise ValueError(f"{path}: no column {missing}; it has {', '.join(frame.columns)}")
    return {col: frame[src].tolist() for col, src in fmt.columns.items()}


def _read_aclimdb(path: Path, fmt: LocalFormat) -> Columns:
    """One split folder of the original IMDB release: one text file per review under ``neg/`` and ``pos/``."""
    texts: list[str] = []
    labels: list[str] = []
    for label in sorted(fmt.label_map or {}):
        folder = path / label
        if not folder.is_dir():
            raise FileNotFoundError(f"{path} lacks the folder {label}/ of the aclImdb layout")
        reviews = sorted(folder.glob("*.txt"))
        texts += [review.read_text(encoding="utf-8") for review in reviews]
        labels += [label] * len(reviews)
    text_column = next(col for col in fmt.columns if col != LABEL)
    return {text_column: texts, LABEL: labels}


_LOCAL_READERS: dict[str, Callable[[Path, LocalFormat], Columns]] = {
    "tsv": _read_tsv,
    "csv": _read_csv,
    "aclimdb": _read_aclimdb,
}


# ---------------------------------------------------------------------------------------------- data sources


def _local_hint(spec: TaskSpec) -> str:
    if spec.hub_path is None:
        return ""
    hub = spec.hub_path + (f" ({spec.hub_name})" if spec.hub_name else "")
    unset = "leave data_dir and GLUE_DIR unset" if spec.hub_path == GLUE_HUB_PATH else "leave data_dir unset"
    return f"; or {unset} to load {hub} from the Hugging Face hub"


def _load_local(spec: TaskSpec, root: Path | None) -> dict[str, datasets.Dataset]:
    """The official splits from a local copy in the task's original layout."""
    assert root is not None
    fmt = spec.local
    if fmt is None:
        raise ValueError(f"task {spec.name!r} has no local layout; it loads from the Hugging Face hub only")
    if not root.is_dir():
        raise FileNotFoundError(f"data_dir {root} does not exist (task {spec.name!r}){_local_hint(spec)}")
    folder = root / fmt.folder
    expected = ", ".join(f"{fmt.folder}/{name}" for name in fmt.files.values())
    if not folder.is_dir():
        raise FileNotFoundError(
            f"task {spec.name!r}: no folder {folder}; data_dir must hold {expected}{_local_hint(spec)}"
        )
    for split, name in fmt.files.items():
        if not (folder / name).exists():
            raise FileNotFoundError(
                f"task {spec.name!r}: the local copy lacks {folder / name} (the official {split} split); "
                f"data_dir must hold {expected}{_local_hint(spec)}"
            )
    splits = {}
    for split, name in fmt.files.items():
        columns = _LOCAL_READERS[fmt.reader](folder / name, fmt)
        columns[LABEL] = _label_ids(spec, columns[LABEL], fmt.label_map, str(folder / name))
        splits[split] = _dataset(spec, columns)
    return splits


def _load_files(spec: TaskSpec, root: Path | None) -> dict[str, datasets.Dataset]:
    """The splits of a custom task from its CSV/TSV/JSON(L) files."""
    assert spec.files is not None
    label_map = {name: i for i, name in enumerate(spec.label_names)}
    splits = {}
    for split, path in spec.files.items():
        frame = read_table(path)
        columns: Columns = {col: frame[col].astype(str).tolist() for col in spec.text_columns}
        columns[LABEL] = _label_ids(spec, frame[spec.label_column].tolist(), label_map, str(path))
        splits[split] = _dataset(spec, columns)
    return splits


def _normalise_hub_split(spec: TaskSpec, dataset: datasets.Dataset) -> datasets.Dataset:
    """Keep the task's columns, with the label column named ``label`` and the task's features."""
    if spec.label_column != LABEL:
        dataset = dataset.rename_column(spec.label_column, LABEL)
    dataset = dataset.select_columns(list(spec.columns))
    features = task_features(spec)
    return dataset if dataset.features == features else dataset.cast(features, keep_in_memory=True)


def _load_hub(spec: TaskSpec, root: Path | None) -> dict[str, datasets.Dataset]:
    """The official train split and dev split (our test set) from the Hugging Face hub."""
    assert spec.hub_path is not None
    try:
        hub = datasets.load_dataset(spec.hub_path, spec.hub_name)
    except ConnectionError as err:
        hint = " or set GLUE_DIR" if spec.hub_path == GLUE_HUB_PATH else ""
        raise ConnectionError(
            f"cannot load {spec.hub_path} ({spec.hub_name}) for task {spec.name!r} from the Hugging Face hub: "
            f"{err}. For a local copy in the original layout pass data_dir{hint}."
        ) from err
    return {
        "train": _normalise_hub_split(spec, hub["train"]),
        "test": _normalise_hub_split(spec, hub[spec.hub_test_split]),
    }


_SOURCES: dict[str, Callable[[TaskSpec, Path | None], dict[str, datasets.Dataset]]] = {
    "files": _load_files,
    "local": _load_local,
    "hub": _load_hub,
}


def local_data_dir(task: str | TaskSpec, data_dir: str | Path | None = None) -> Path | None:
    """The local copy to read: ``data_dir``, else ``$GLUE_DIR`` for GLUE tasks, else none (the hub)."""
    spec = get_task(task)
    if data_dir is not None:
        return Path(data_dir)
    if spec.hub_path == GLUE_HUB_PATH and os.environ.get(GLUE_DIR_ENV):
        return Path(os.environ[GLUE_DIR_ENV])
    return None


def data_source(task: str | TaskSpec, data_dir: str | Path | None = None) -> str:
    """Where the task's data come from: ``"files"`` (custom task), ``"local"`` or ``"hub"``."""
    spec = get_task(task)
    if spec.files is not None:
        return "files"
    return "local" if local_data_dir(spec, data_dir) is not None else "hub"


def load_official_splits(task: str | TaskSpec, data_dir: str | Path | None = None) -> datasets.DatasetDict:
    """The task's official splits, normalised: ``train`` and ``test`` (the official dev set).

    A custom task may also bring its own ``validation`` split.
    """
    spec = get_task(task)
    source = data_source(spec, data_dir)
    return datasets.DatasetDict(_SOURCES[source](spec, local_data_dir(spec, data_dir)))


# ----------------------------------------------------------------------------------------------------- splits


def split_train_validation(
    dataset: datasets.Dataset, seed: int, train_fraction: float = 0.7
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Split a dataset into train and validation parts by ``seed`` (same seed, same split; order kept)."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must lie strictly between 0 and 1, got {train_fraction}")
    permutation = np.random.default_rng(seed).permutation(len(dataset))
    num_train = int(round(train_fraction * len(dataset)))
    if not 0 < num_train < len(dataset):
        raise ValueError(f"cannot split {len(dataset)} examples {train_fraction:g}/{1 - train_fraction:g}")
    return (
        dataset.select(np.sort(permutation[:num_train])),
        dataset.select(np.sort(permutation[num_train:])),
    )


def subsample(dataset: datasets.Dataset, max_samples: int | None, seed: int) -> datasets.Dataset:
    """A seeded random subset of at most ``max_samples`` examples, in their original order."""
    if max_samples is None or max_samples >= len(dataset):
        return dataset
    if max_samples < 1:
        raise ValueError(f"a cap on the number of samples must be positive or None, got {max_samples}")
    chosen = np.random.default_rng(seed).permutation(len(dataset))[:max_samples]
    return dataset.select(np.sort(chosen))


def load_splits(
    task: str | TaskSpec,
    data_dir: str | Path | None = None,
    seed: int = 0,
    train_fraction: float = 0.7,
    max_valid_samples: int | None | Literal["auto"] = AUTO,
    max_train_samples: int | None = None,
) -> datasets.DatasetDict:
    """The ``train`` / ``validation`` / ``test`` splits of a task, as in the method.

    The official train split is split ``train_fraction`` / rest into train and validation by the dataset
    ``seed``; the official dev set is the test set. ``max_valid_samples="auto"`` caps validation at 2,048
    examples for large tasks and not otherwise. Caps take seeded random subsets; capping train leaves
    validation unchanged.
    """
    spec = get_task(task)
    if max_valid_samples == AUTO:
        max_valid_samples = spec.default_max_valid_samples
    elif isinstance(max_valid_samples, str):
        raise ValueError(f"max_valid_samples must be an int, None or {AUTO!r}, got {max_valid_samples!r}")
    official = load_official_splits(spec, data_dir)
    if "validation" in official:
        train, valid = official["train"], official["validation"]
    else:
        train, valid = split_train_validation(official["train"], seed, train_fraction)
    return datasets.DatasetDict(
        train=subsample(train, max_train_samples, seed),
        validation=subsample(valid, max_valid_samples, seed),
        test=official["test"],
    )


# ------------------------------------------------------------------------------------ tokenisation, batching


class TokenizedSplit(torch.utils.data.Dataset):
    """A split tokenised once, unpadded: one list of token ids per example (per choice for multiple choice)."""

    def __init__(self, columns: Mapping[str, list[Any]], labels: list[Any]) -> None:
        self.columns = dict(columns)
        self.labels = list(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {**{key: values[index] for key, values in self.columns.items()}, "labels": self.labels[index]}


def tokenize_split(
    task: str | TaskSpec,
    dataset: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int = DEFAULT_MAX_LENGTH,
) -> TokenizedSplit:
    """Tokenise a normalised split (truncated to ``max_length``; padding happens per batch)."""
    spec = get_task(task)
    if spec.choice_columns:
        # Multiple choice: (context, prefix + " " + ending) for every ending, as for SWAG.
        contexts = [str(text) for text in dataset[spec.text_columns[0]]]
        prefixes = [" ".join(parts) for parts in zip(*(dataset[col] for col in spec.text_columns[1:]))]
        prefixes = prefixes or [""] * len(contexts)
        endings = list(zip(*(dataset[col] for col in spec.choice_columns)))
        first = [context for context in contexts for _ in spec.choice_columns]
        second = [f"{prefix} {ending}".strip() for prefix, row in zip(prefixes, endings) for ending in row]
        encoded = tokenizer(first, second, truncation=True, max_length=max_length)
        n = spec.num_choices
        columns = {
            key: [values[i : i + n] for i in range(0, len(values), n)]
            for key, values in encoded.items()
            if key in MODEL_INPUTS
        }
    else:
        texts = [list(dataset[col]) for col in spec.text_columns]
        encoded = tokenizer(*texts, truncation=True, max_length=max_length)
        columns = {key: values for key, values in encoded.items() if key in MODEL_INPUTS}
    return TokenizedSplit(columns, list(dataset[LABEL]))


@dataclass(frozen=True)
class PaddingCollator:
    """Pad a batch to its longest sequence and stack it into tensors ([batch, choices, seq] for multiple choice)."""

    pad_token_id: int
    label_dtype: torch.dtype = torch.long
    pad_token_type_id: int = 0
    padding_side: str = "right"

    def _pad(self, sequences: list[list[int]], value: int, length: int) -> list[list[int]]:
        if self.padding_side == "left":
            return [[value] * (length - len(seq)) + list(seq) for seq in sequences]
        return [list(seq) + [value] * (length - len(seq)) for seq in sequences]

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        pad_values = {
            "input_ids": self.pad_token_id,
            "attention_mask": 0,
            "token_type_ids": self.pad_token_type_id,
        }
        multiple_choice = bool(examples[0]["input_ids"]) and isinstance(examples[0]["input_ids"][0], list)
        num_choices = len(examples[0]["input_ids"]) if multiple_choice else 0
        batch: dict[str, torch.Tensor] = {}
        for key in [key for key in examples[0] if key != "labels"]:
            sequences = [seq for ex in examples for seq in ex[key]] if multiple_choice else [ex[key] for ex in examples]
            length = max(len(seq) for seq in sequences)
            tensor = torch.tensor(self._pad(sequences, pad_values[key], length), dtype=torch.long)
            batch[key] = tensor.view(len(examples), num_choices, length) if multiple_choice else tensor
        batch["labels"] = torch.tensor([ex["labels"] for ex in examples], dtype=self.label_dtype)
        return batch


def make_collator(task: str | TaskSpec, tokenizer: PreTrainedTokenizerBase) -> PaddingCollator:
    """The dynamic-padding collator of a task for a tokenizer."""
    spec = get_task(task)
    if tokenizer.pad_token_id is None:
        raise ValueError(f"tokenizer {type(tokenizer).__name__} has no pad token; set tokenizer.pad_token first")
    return PaddingCollator(
        pad_token_id=tokenizer.pad_token_id,
        label_dtype=torch.float32 if spec.is_regression else torch.long,
        pad_token_type_id=getattr(tokenizer, "pad_token_type_id", 0) or 0,
        padding_side=tokenizer.padding_side,
    )


def make_dataloaders(
    task: str | TaskSpec,
    splits: Mapping[str, datasets.Dataset],
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int,
    eval_batch_size: int | None = None,
    max_length: int = DEFAULT_MAX_LENGTH,
    seed: int = 0,
    shuffle_train: bool = True,
) -> dict[str, DataLoader]:
    """One DataLoader per split, each tokenised once and padded per batch.

    The ``train`` loader shuffles (unless ``shuffle_train=False``) with a ``torch.Generator`` seeded by
    ``seed``: every epoch sees a new order, and a rerun with the same seed sees the same orders.
    """
    spec = get_task(task)
    collator = make_collator(spec, tokenizer)
    loaders = {}
    for split, dataset in splits.items():
        shuffle = split == "train" and shuffle_train
        loaders[split] = DataLoader(
            tokenize_split(spec, dataset, tokenizer, max_length),
            batch_size=batch_size if split == "train" else eval_batch_size or batch_size,
            shuffle=shuffle,
            generator=torch.Generator().manual_seed(seed) if shuffle else None,
            collate_fn=collator,
        )
    return loaders
