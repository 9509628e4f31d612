"""Atomic writes of text, JSON and whole folders: a killed process leaves the old file or folder, never half of one."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

RUN_INFO_FILE = "run.json"


def write_text_atomic(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` to a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
    return path


def write_json_atomic(data: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``data`` as indented JSON to a temporary file beside ``path``, then rename it into place."""
    return write_text_atomic(json.dumps(data, indent=2, sort_keys=True, default=str), path)


def write_folder_atomic(folder: str | os.PathLike, fill: Callable[[Path], Any]) -> Path:
    """Let ``fill`` write a folder's files into a staging folder beside it, then swap it in.

    A process killed while saving leaves the previous folder (or none), never a mix of two saves.
    """
    folder = Path(folder)
    staging = folder.with_name(f".{folder.name}.staging")
    retired = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(retired, ignore_errors=True)
    fill(staging)
    if folder.exists():
        folder.rename(retired)
    staging.rename(folder)
    shutil.rmtree(retired, ignore_errors=True)
    return folder
