"""Where a task's official splits come from: the Hugging Face hub, a local copy in the original layout, or files.

The data come from the Hugging Face hub by default, from a local copy in the original layout when
``data_dir`` (or, for GLUE, the ``GLUE_DIR`` environment variable) is given, or from a custom task's own
files. Every split is normalised to the task's columns and features.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import datasets
import pandas as pd

from benchmarks.tasks.custom import label_text, read_table
from benchmarks.tasks.registry import GLUE_HUB_PATH, LABEL, LocalFormat, TaskSpec

GLUE_DIR_ENV = "GLUE_DIR"

Columns = dict[str, list[Any]]


# ------------------------------------------------------------------------------------------------ features


def task_features(spec: TaskSpec) -> datasets.Features:
    """The features of every normalised split: string text columns and a class or float label."""
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


def check_local_copy(spec: TaskSpec, data_dir: str | Path | None = None) -> None:
    """Refuse, without reading them, a local copy that lacks the task's folder or files (hub and files: nothing)."""
    if data_source(spec, data_dir) == "local":
        _check_local_layout(spec, local_data_dir(spec, data_dir))


def _check_local_layout(spec: TaskSpec, root: Path | None) -> None:
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


def _load_local(spec: TaskSpec, root: Path | None) -> dict[str, datasets.Dataset]:
    """The official splits from a local copy in the task's original layout."""
    _check_local_layout(spec, root)
    assert root is not None and spec.local is not None
    fmt = spec.local
    folder = root / fmt.folder
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
        labels = frame[spec.label_column].tolist()
        columns[LABEL] = _label_ids(spec, labels if spec.is_regression else [label_text(v) for v in labels],
                                    label_map, str(path))
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


def local_data_dir(spec: TaskSpec, data_dir: str | Path | None = None) -> Path | None:
    """The local copy to read: ``data_dir``, else ``$GLUE_DIR`` for GLUE tasks, else none (the hub)."""
    if data_dir is not None:
        return Path(data_dir)
    if spec.hub_path == GLUE_HUB_PATH and os.environ.get(GLUE_DIR_ENV):
        return Path(os.environ[GLUE_DIR_ENV])
    return None


def data_source(spec: TaskSpec, data_dir: str | Path | None = None) -> str:
    """Where the task's data come from: ``"files"`` (custom task), ``"local"`` or ``"hub"``."""
    if spec.files is not None:
        return "files"
    return "local" if local_data_dir(spec, data_dir) is not None else "hub"


def load_official_splits(spec: TaskSpec, data_dir: str | Path | None = None) -> datasets.DatasetDict:
    """The task's official splits, normalised: ``train`` and ``test`` (the official dev set).

    A custom task may also bring its own ``validation`` split.
    """
    source = data_source(spec, data_dir)
    return datasets.DatasetDict(_SOURCES[source](spec, local_data_dir(spec, data_dir)))
