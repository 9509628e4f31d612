"""A task's train / validation / test splits as seeded subsets, tokenised once and padded per batch.

As in the method, the official train set is split 70/30 into train and validation by a dataset seed, and
the official dev set is the test set. :class:`DataSettings` is the one description of which examples a run
reads and how they are batched; :func:`task_loaders` turns it into loaders for every command.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import datasets
import numpy as np
import torch
from torch.utils.data import DataLoader
from transformers import DataCollatorForMultipleChoice, DataCollatorWithPadding, PreTrainedTokenizerBase

from benchmarks.tasks.registry import LABEL, TaskSpec
from benchmarks.tasks.sources import load_official_splits

SPLITS = ("train", "validation", "test")
AUTO: Literal["auto"] = "auto"
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
DEFAULT_MAX_LENGTH = 128


@dataclass(frozen=True)
class DataSettings:
    """Which examples a run reads and how they are batched (``max_valid_samples=None``: 2,048 for large tasks)."""

    data_dir: str | None = None
    dataset_seed: int = 0
    max_train_samples: int | None = None
    max_valid_samples: int | None = None
    max_test_samples: int | None = None
    max_length: int = DEFAULT_MAX_LENGTH
    batch_size: int = 16
    eval_batch_size: int = 32
    group_by_length: bool = False
    min_train_words: int | None = None

    def identity(self) -> dict[str, Any]:
        """The settings that decide which examples are read, and in which batches (a resumed run must keep them)."""
        identity = {"dataset_seed": self.dataset_seed,
                    "data_dir": str(Path(self.data_dir).resolve()) if self.data_dir else None,
                    "max_train_samples": self.max_train_samples, "max_valid_samples": self.max_valid_samples,
                    "max_length": self.max_length}
        if self.group_by_length:  # recorded only when on, so checkpoints from before the option still resume
            identity["group_by_length"] = True
        if self.min_train_words:  # likewise
            identity["min_train_words"] = self.min_train_words
        return identity

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


def example_words(spec: TaskSpec, dataset: datasets.Dataset) -> np.ndarray:
    """Whitespace-separated words of every example, summed over the task's text (and choice) columns."""
    counts = np.zeros(len(dataset), dtype=np.int64)
    for column in (*spec.text_columns, *spec.choice_columns):
        counts += np.array([len(str(text).split()) for text in dataset[column]], dtype=np.int64)
    return counts


def keep_min_words(spec: TaskSpec, dataset: datasets.Dataset, min_words: int | None) -> datasets.Dataset:
    """The examples of at least ``min_words`` words (None or 0: all), in their original order.

    SST-2's training split is mostly short phrases cut from its sentences while its test set is whole sentences;
    training on the sentence-like examples only is what this is for (docs/supernet-training.md).
    """
    if not min_words:
        return dataset
    if min_words < 0:
        raise ValueError(f"a minimum number of words must be positive or None, got {min_words}")
    kept = np.flatnonzero(example_words(spec, dataset) >= min_words)
    if len(kept) == 0:
        raise ValueError(f"no training example of task {spec.name!r} has {min_words} words or more; "
                         "lower --min-train-words")
    return dataset.select(kept)


def load_splits(
    spec: TaskSpec,
    data_dir: str | Path | None = None,
    seed: int = 0,
    train_fraction: float = 0.7,
    max_valid_samples: int | None | Literal["auto"] = AUTO,
    max_train_samples: int | None = None,
    min_train_words: int | None = None,
) -> datasets.DatasetDict:
    """The ``train`` / ``validation`` / ``test`` splits of a task, as in the method.

    The official train split is split ``train_fraction`` / rest into train and validation by the dataset
    ``seed``; the official dev set is the test set. ``max_valid_samples="auto"`` caps validation at 2,048
    examples for large tasks and not otherwise. Caps take seeded random subsets; capping train leaves
    validation unchanged. ``min_train_words`` keeps only training examples that long, before the cap
    (validation and test are never filtered).
    """
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
        train=subsample(keep_min_words(spec, train, min_train_words), max_train_samples, seed),
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
    spec: TaskSpec,
    dataset: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int = DEFAULT_MAX_LENGTH,
) -> TokenizedSplit:
    """Tokenise a normalised split (truncated to ``max_length``; padding happens per batch)."""
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


def example_lengths(split: TokenizedSplit) -> np.ndarray:
    """Tokens of every example (for multiple choice, of its longest choice): what padding a batch pads to."""
    ids = split.columns["input_ids"]
    if ids and ids[0] and isinstance(ids[0][0], list):
        return np.array([max(len(choice) for choice in example) for example in ids], dtype=np.int64)
    return np.array([len(example) for example in ids], dtype=np.int64)


class LengthSortedSampler(torch.utils.data.Sampler[int]):
    """Evaluation order by decreasing length, so each batch pads to about its own examples' length.

    ``order`` is the permutation it yields; :func:`supernet.evaluation.evaluate` uses it to return predictions
    in the dataset's order. Metrics over a split do not depend on the order (up to float summation noise).
    """

    def __init__(self, lengths: np.ndarray) -> None:
        self.order = np.argsort(-np.asarray(lengths), kind="stable")

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self):
        return iter(self.order.tolist())


# Examples per "mega-batch" (in batches) that are sorted by length before they are cut into batches.
LENGTH_GROUP_BATCHES = 50


class LengthGroupedSampler(torch.utils.data.Sampler[int]):
    """A shuffled training order whose batches hold examples of similar length (less padding, less compute).

    Every epoch: a random permutation (from ``generator``, so it checkpoints and resumes like a shuffled loader),
    cut into groups of ``LENGTH_GROUP_BATCHES`` batches, each group sorted by decreasing length. Batches stay
    random in which examples they hold across groups, but the examples within one batch have similar lengths,
    as with the ``group_by_length`` option of transformers' Trainer.
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, generator: torch.Generator) -> None:
        self.lengths = torch.as_tensor(np.asarray(lengths))
        self.group = max(1, batch_size * LENGTH_GROUP_BATCHES)
        self.generator = generator

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        permutation = torch.randperm(len(self.lengths), generator=self.generator)
        order: list[int] = []
        for start in range(0, len(permutation), self.group):
            chunk = permutation[start:start + self.group]
            chunk = chunk[torch.argsort(-self.lengths[chunk], stable=True)]
            order.extend(chunk.tolist())
        return iter(order)


Collator = Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]]


def make_collator(spec: TaskSpec, tokenizer: PreTrainedTokenizerBase) -> Collator:
    """transformers' dynamic-padding collator of the task's head (pads with the tokenizer's ids and side)."""
    if tokenizer.pad_token_id is None:
        raise ValueError(f"tokenizer {type(tokenizer).__name__} has no pad token; set tokenizer.pad_token first")
    if spec.choice_columns:
        return DataCollatorForMultipleChoice(tokenizer)
    return DataCollatorWithPadding(tokenizer)


def make_dataloaders(
    spec: TaskSpec,
    splits: Mapping[str, datasets.Dataset],
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int,
    eval_batch_size: int | None = None,
    max_length: int = DEFAULT_MAX_LENGTH,
    seed: int = 0,
    shuffle_train: bool = True,
    group_by_length: bool = False,
    sort_eval_by_length: bool = True,
) -> dict[str, DataLoader]:
    """One DataLoader per split, each tokenised once and padded per batch.

    The ``train`` loader shuffles (unless ``shuffle_train=False``) with a ``torch.Generator`` seeded by
    ``seed``: every epoch sees a new order, and a rerun with the same seed sees the same orders; with
    ``group_by_length`` each batch holds examples of similar length (:class:`LengthGroupedSampler`).
    Validation and test batches are ordered by length (:class:`LengthSortedSampler`): less padding, the same
    metrics (``sort_eval_by_length=False`` keeps the dataset's order, as before this existed).
    """
    collator = make_collator(spec, tokenizer)
    loaders = {}
    for split, dataset in splits.items():
        tokenized = tokenize_split(spec, dataset, tokenizer, max_length)
        if split != "train":
            sampler = LengthSortedSampler(example_lengths(tokenized)) if sort_eval_by_length else None
            loaders[split] = DataLoader(tokenized, batch_size=eval_batch_size or batch_size, sampler=sampler,
                                        collate_fn=collator)
        elif shuffle_train and group_by_length:
            sampler = LengthGroupedSampler(example_lengths(tokenized), batch_size, torch.Generator().manual_seed(seed))
            loaders[split] = DataLoader(tokenized, batch_size=batch_size, sampler=sampler, collate_fn=collator)
        else:
            loaders[split] = DataLoader(
                tokenized, batch_size=batch_size, shuffle=shuffle_train,
                generator=torch.Generator().manual_seed(seed) if shuffle_train else None, collate_fn=collator,
            )
    return loaders


def task_splits(spec: TaskSpec, data: DataSettings) -> datasets.DatasetDict:
    """The capped ``train`` / ``validation`` / ``test`` splits that ``data`` describes (test by the dataset seed)."""
    splits = load_splits(spec, data_dir=data.data_dir, seed=data.dataset_seed,
                         max_valid_samples=AUTO if data.max_valid_samples is None else data.max_valid_samples,
                         max_train_samples=data.max_train_samples, min_train_words=data.min_train_words)
    splits["test"] = subsample(splits["test"], data.max_test_samples, data.dataset_seed)
    return splits


def task_loaders(
    spec: TaskSpec,
    tokenizer: PreTrainedTokenizerBase,
    data: DataSettings,
    seed: int = 0,
    splits: Sequence[str] = SPLITS,
) -> dict[str, DataLoader]:
    """Loaders of the chosen splits as ``data`` describes them; ``seed`` orders the training batches."""
    chosen = {split: dataset for split, dataset in task_splits(spec, data).items() if split in splits}
    return make_dataloaders(spec, chosen, tokenizer, batch_size=data.batch_size,
                            eval_batch_size=data.eval_batch_size, max_length=data.max_length, seed=seed,
                            group_by_length=data.group_by_length)
