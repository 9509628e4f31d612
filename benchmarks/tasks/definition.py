"""A task's definition as JSON, stored with every run so later commands rebuild the same task without being told.

A registered task is stored by name. A custom task stores its files (absolute paths with their SHA-256), columns,
label names, metrics and positive class; rebuilding it refuses a file that is missing or has changed since, as
the run's splits, labels and scores would no longer be those of the data it was trained on.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

from benchmarks.errors import UsageError
from benchmarks.tasks.registry import TaskSpec, get_task

TASK_FILE = "task.json"


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def task_definition(spec: TaskSpec) -> dict[str, Any]:
    """The JSON record of ``spec``: a registered task's name, or a custom task's files, columns, labels, metrics."""
    if spec.files is None:
        return {"name": spec.name, "registered": True}
    return {
        "name": spec.name,
        "registered": False,
        "files": {split: {"path": str(Path(path).resolve()), "sha256": file_sha256(path)}
                  for split, path in spec.files.items()},
        "text_columns": list(spec.text_columns),
        "label_column": spec.label_column,
        "task_type": "regression" if spec.is_regression else "classification",
        "label_names": list(spec.label_names),
        "main_metric": spec.main_metric,
        "other_metrics": list(spec.other_metrics),
        "positive_label": spec.positive_label,
        "large": spec.large,
    }


def task_from_definition(record: Mapping[str, Any], where: str = "the run") -> TaskSpec:
    """Rebuild the task a run stored, refusing a custom task's file that is missing or changed since."""
    if record.get("registered", True):
        return get_task(str(record["name"]))
    files = {}
    for split, entry in record["files"].items():
        path = Path(entry["path"])
        if not path.is_file():
            raise UsageError(f"the {split} file {path} of task {record['name']!r} ({where}) is gone; put it back, "
                             "or start a new run on the data you have")
        if file_sha256(path) != entry["sha256"]:
            raise UsageError(f"the {split} file {path} of task {record['name']!r} changed since {where} was made "
                             "(SHA-256 differs); restore it, or start a new run on the new data")
        files[split] = str(path)
    regression = record["task_type"] == "regression"
    return TaskSpec(name=str(record["name"]), text_columns=tuple(record["text_columns"]),
                    num_labels=1 if regression else len(record["label_names"]), label_column=record["label_column"],
                    is_regression=regression, main_metric=record["main_metric"],
                    other_metrics=tuple(record["other_metrics"]), label_names=tuple(record["label_names"]),
                    files=files, large=bool(record.get("large", False)),
                    positive_label=int(record.get("positive_label", 1)))


def write_task_file(spec: TaskSpec, folder: str | Path) -> Path:
    """``folder/task.json`` with the task's definition (atomically)."""
    from benchmarks.files import write_json_atomic

    return write_json_atomic(task_definition(spec), Path(folder) / TASK_FILE)


def read_task_file(folder: str | Path) -> TaskSpec | None:
    """The task stored in ``folder/task.json``, or ``None`` when the folder holds none."""
    path = Path(folder) / TASK_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read {path}: {err}; restore it from the run that wrote it") from err
    return task_from_definition(record, where=str(Path(folder)))


def label_mappings(spec: TaskSpec) -> dict[str, dict[Any, Any]]:
    """``id2label`` and ``label2id`` of a model config with the task's real class names (none for regression)."""
    if spec.is_regression or not spec.label_names:
        return {}
    return {"id2label": dict(enumerate(spec.label_names)),
            "label2id": {name: i for i, name in enumerate(spec.label_names)}}
