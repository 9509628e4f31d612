"""User errors: what a command refuses, told in one line that names the file or option and the fix.

The command line (:mod:`benchmarks.cli`) prints these as ``plm-nas COMMAND: error: WHAT`` and exits 2; the library
raises them like any ``ValueError``, so Python callers and tests catch them as such.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, TypeVar

T = TypeVar("T")


class UsageError(ValueError):
    """Input the command refuses (an option, a file, a folder); its message says what is wrong and the fix."""


class CommandFailed(RuntimeError):
    """The command ran but produced nothing usable (e.g. every NAS trial failed): one line, exit 1."""


def reading(path: str | os.PathLike, read: Callable[[Path], T], what: str = "file") -> T:
    """``read(path)``, re-raising a parser's error (JSON, CSV, Unicode, safetensors, empty file) naming ``path``."""
    path = Path(path)
    try:
        return read(path)
    except FileNotFoundError as err:
        raise UsageError(f"no such {what}: {path}") from err
    except UsageError:
        raise
    except (ValueError, OSError, UnicodeError, KeyError, TypeError) as err:
        raise UsageError(f"cannot read {what} {path}: {one_line(err)}; fix or replace the file") from err
    except Exception as err:  # noqa: BLE001 - third-party parsers (safetensors, pandas) raise their own types
        raise UsageError(f"cannot read {what} {path}: {type(err).__name__}: {one_line(err)}") from err


def one_line(err: BaseException | str) -> str:
    """An error's message on one line (argparse, pandas and JSON messages may span several)."""
    text = " ".join(str(err).split())
    if isinstance(err, BaseException) and not text:
        return type(err).__name__
    return text


def require(condition: Any, message: str) -> None:
    """Raise :class:`UsageError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise UsageError(message)
