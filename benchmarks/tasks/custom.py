"""Your own data as a task: :func:`custom_task` reads CSV/TSV/JSON files, infers the task type and labels,
and returns a :class:`~benchmarks.tasks.registry.TaskSpec` like the registered tasks'."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.tasks.registry import TaskSpec


def _read_json(path: Path) -> pd.DataFrame:
    """A JSON array of records, or JSON lines."""
    try:
        return pd.read_json(path, orient="records", dtype=False)
    except ValueError:
        return pd.read_json(path, lines=True, dtype=False)


_FILE_READERS = {
    ".csv": lambda path: pd.read_csv(path, keep_default_na=False),
    ".tsv": lambda path: pd.read_csv(path, sep="\t", keep_default_na=False),
    ".json": _read_json,
    ".jsonl": lambda path: pd.read_json(path, lines=True, dtype=False),
    ".ndjson": lambda path: pd.read_json(path, lines=True, dtype=False),
}


def _blank(path: Path, head: int = 1 << 16) -> bool:
    """Whether a file holds nothing but white space (and a byte-order mark), reading at most ``head`` bytes."""
    with open(path, "rb") as handle:
        start = handle.read(head)
    return len(start) < head and not start.lstrip(b"\xef\xbb\xbf \t\r\n")


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV, TSV, JSON or JSON-lines file (chosen by suffix) into a data frame; errors name the file."""
    from benchmarks.errors import UsageError, one_line

    path = Path(path)
    reader = _FILE_READERS.get(path.suffix.lower())
    if reader is None:
        raise ValueError(f"cannot read {path}: unknown file type {path.suffix!r}; use {', '.join(_FILE_READERS)}")
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if _blank(path):  # pandas would say "No columns to parse from file"
        raise UsageError(f"{path} is empty; give a file with a header and at least one row")
    try:
        frame = reader(path)
    except Exception as err:  # noqa: BLE001 - pandas' parser, JSON and Unicode errors name no file
        raise UsageError(f"cannot read {path} as {path.suffix[1:].upper()}: {one_line(err)}") from err
    if len(frame) == 0:
        raise UsageError(f"{path} holds no examples; give a file with a header and at least one row")
    return frame


CUSTOM_SPLITS = ("train", "validation", "test")
TASK_TYPES = ("classification", "regression")
CLASSIFICATION_METRICS = ("accuracy", "f1", "mcc")
REGRESSION_METRICS = ("spearman", "pearson")


def _custom_files(files: Mapping[str, str | Path] | Sequence[str | Path]) -> dict[str, str]:
    """Normalise ``{"train": ..., "test": ...}`` (optionally ``"validation"``) or ``[train, test]`` paths."""
    if isinstance(files, (str, Path)):
        raise ValueError("files must name a train and a test file: {'train': ..., 'test': ...} or [train, test]")
    if not isinstance(files, Mapping):
        files = list(files)
        if len(files) != 2:
            raise ValueError(f"a list of files must be [train, test], got {len(files)} paths")
        files = dict(zip(("train", "test"), files))
    unknown = set(files) - set(CUSTOM_SPLITS)
    if unknown:
        raise ValueError(f"unknown splits {sorted(unknown)} in files; choose from {', '.join(CUSTOM_SPLITS)}")
    missing = {"train", "test"} - set(files)
    if missing:
        raise ValueError(f"files lacks the {' and '.join(sorted(missing))} split; give both train and test")
    return {split: str(path) for split, path in files.items()}


def label_text(value: Any) -> str:
    """The name of a raw label value: ``1``, ``1.0`` and ``"1"`` all name class ``"1"``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == ""


def _rows(positions: Sequence[int]) -> str:
    """1-based data-row numbers (header not counted), the first few of them."""
    shown = ", ".join(str(i + 1) for i in positions[:5])
    return shown + (f" and {len(positions) - 5} more" if len(positions) > 5 else "")


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def infer_task_type(values: Sequence[Any]) -> str:
    """``regression`` for numeric labels with fractions (scores), else ``classification``."""
    if values and all(_is_number(value) for value in values):
        if any(not float(value).is_integer() for value in values):
            return "regression"
    return "classification"


def _class_names(values: Sequence[Any]) -> tuple[str, ...]:
    """Distinct label names, in numeric order when all are numbers, else in string order."""
    names = {label_text(value) for value in values}
    if all(_is_number(name) for name in names):
        return tuple(sorted(names, key=float))
    return tuple(sorted(names))


def custom_task(
    name: str,
    files: Mapping[str, str | Path] | Sequence[str | Path],
    text_columns: str | Sequence[str],
    label_column: str,
    regression: bool | None = None,
    main_metric: str | None = None,
    large: bool = False,
    positive_label: str | None = None,
) -> TaskSpec:
    """A task from the user's own CSV/TSV/JSON(L) files; nothing is registered globally.

    ``files`` holds a train and a test file, and optionally a validation file (then the train file is not
    re-split). Classes are the training file's label values, in sorted order; a label seen only in another
    file, an empty label or a single class is refused, naming the file and rows. ``regression=None`` infers
    the type (numbers with fractions: regression). Default metrics: accuracy (plus F1 and MCC for two
    classes, F1 of ``positive_label``, default the second class); Spearman and Pearson for regression.
    """
    text_columns = (text_columns,) if isinstance(text_columns, str) else tuple(text_columns)
    files = _custom_files(files)
    frames = {split: read_table(path) for split, path in files.items()}
    for split, frame in frames.items():
        missing = [col for col in (*text_columns, label_column) if col not in frame.columns]
        if missing:
            raise ValueError(
                f"{files[split]} lacks the columns {missing}; it has "
                f"{', '.join(map(str, frame.columns)) or 'none'}"
            )
        empty = [i for i, value in enumerate(frame[label_column].tolist()) if _is_missing(value)]
        if empty:
            raise ValueError(f"{files[split]}: empty label in column {label_column!r} in data rows {_rows(empty)} "
                             "(header not counted); fill or remove those rows")
    train_values = frames["train"][label_column].tolist()
    if regression is None:
        regression = infer_task_type(train_values) == "regression"
    if regression:
        for split, frame in frames.items():
            bad = [i for i, value in enumerate(frame[label_column].tolist()) if not _is_number(value)]
            if bad:
                raise ValueError(f"{files[split]}: non-numeric score in column {label_column!r} in data rows "
                                 f"{_rows(bad)}; a regression task needs numbers (or pass --task-type classification)")
        label_names: tuple[str, ...] = ()
        num_labels = 1
        metrics: tuple[str, ...] = REGRESSION_METRICS
        allowed = REGRESSION_METRICS
    else:
        label_names = _class_names(train_values)
        num_labels = len(label_names)
        if num_labels < 2:
            raise ValueError(f"{files['train']}: column {label_column!r} holds a single class {list(label_names)}; "
                             "a classification task needs at least two")
        known = set(label_names)
        for split, frame in frames.items():
            unseen = [i for i, value in enumerate(frame[label_column].tolist()) if label_text(value) not in known]
            if unseen:
                labels = sorted({label_text(frame[label_column].iloc[i]) for i in unseen})
                raise ValueError(f"{files[split]}: labels {labels[:5]} in data rows {_rows(unseen)} are not in the "
                                 f"training file {files['train']} (its classes: {', '.join(label_names)}); every "
                                 "class must occur in training")
        metrics = CLASSIFICATION_METRICS if num_labels == 2 else ("accuracy",)
        allowed = metrics
    if main_metric is not None:
        if main_metric not in allowed:
            kind = "regression" if regression else f"{num_labels}-class classification"
            raise ValueError(f"metric {main_metric!r} does not fit a {kind} task; choose from {', '.join(allowed)}")
        metrics = (main_metric, *(metric for metric in metrics if metric != main_metric))
    positive = 1
    if positive_label is not None:
        if regression or num_labels != 2:
            raise ValueError("a positive label (for F1) needs a task with exactly two classes")
        if label_text(positive_label) not in label_names:
            raise ValueError(f"positive label {positive_label!r} is not a class of {files['train']}; choose from "
                             f"{', '.join(label_names)}")
        positive = label_names.index(label_text(positive_label))
    return TaskSpec(
        name=name,
        text_columns=text_columns,
        num_labels=num_labels,
        label_column=label_column,
        is_regression=regression,
        main_metric=metrics[0],
        other_metrics=metrics[1:],
        label_names=label_names,
        files=files,
        large=large,
        positive_label=positive,
    )
