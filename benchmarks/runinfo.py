"""What produced a run's outputs: its arguments, seed, library versions, git commit and start time (run.json)."""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from benchmarks.files import RUN_INFO_FILE, write_json_atomic

PACKAGE = "plm-nas"
_VERSIONED = {"torch": "torch", "transformers": "transformers", "syne-tune": "syne-tune", "datasets": "datasets"}
# The one place that knows where the checkout is: trial scripts and Ray workers put it on PYTHONPATH.
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def package_version(distribution: str) -> str | None:
    """Installed version of a distribution, or ``None`` when it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """Python, the main libraries and this package (``None`` for anything not installed)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    found.update({key: package_version(dist) for key, dist in _VERSIONED.items()})
    found[PACKAGE] = package_version(PACKAGE)
    return found


def git_commit(path: str | os.PathLike = PROJECT_ROOT) -> dict[str, Any] | None:
    """Commit and dirty flag of the checkout holding ``path``; ``None`` outside git or without git."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(path), *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return repr(value)


def run_info(args: argparse.Namespace | Mapping[str, Any], seed: int | None = None, **extra: Any) -> dict[str, Any]:
    """The record of one run: arguments (private ``_``-keys dropped), seed, versions, commit, start time."""
    arguments = dict(vars(args) if isinstance(args, argparse.Namespace) else args)
    arguments = {key: _jsonable(value) for key, value in arguments.items() if not key.startswith("_")}
    if seed is None:
        seed = arguments.get("seed")
    return {
        "arguments": arguments,
        "seed": seed,
        "versions": versions(),
        "git": git_commit(),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "platform": platform.platform(),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **{key: _jsonable(value) for key, value in extra.items()},
    }


def write_run_info(
    output_dir: str | os.PathLike,
    args: argparse.Namespace | Mapping[str, Any],
    seed: int | None = None,
    keep_previous: bool = False,
    **extra: Any,
) -> Path:
    """Write :func:`run_info` to ``output_dir/run.json`` atomically and return its path.

    With ``keep_previous`` (a resumed run) the records of earlier invocations are kept under ``previous``.
    """
    path = Path(output_dir) / RUN_INFO_FILE
    info = run_info(args, seed=seed, **extra)
    if keep_previous and path.is_file():
        try:
            earlier = json.loads(path.read_text())
        except (OSError, ValueError):
            earlier = None
        if isinstance(earlier, dict):
            info["previous"] = [*earlier.pop("previous", []), earlier]
    return write_json_atomic(info, path)
