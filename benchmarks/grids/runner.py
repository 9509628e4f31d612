"""Running a grid's steps: each a ``plm-nas`` subprocess in its own folder, resumed or restarted when unfinished,
marked ``DONE`` on success, its wall clock summed in ``timing.json``, locked while it runs so that two grid
processes never run the same step; and exporting finished steps' small files."""
from __future__ import annotations

import contextlib
import gzip
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Callable, Iterator, Sequence

try:  # POSIX; elsewhere steps run unlocked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

from benchmarks.files import write_json_atomic
from benchmarks.grids.spec import DONE_MARKER, Step
from benchmarks.results import RESULTS_FILE

LOG_FILE = "log.txt"
TIMING_FILE = "timing.json"
# what --export-results copies: tidy tables, metrics, settings and logs, each at most EXPORT_MAX_BYTES
EXPORT_SUFFIXES = (".csv", ".json", ".txt", ".md")
EXPORT_MAX_BYTES = 2_000_000
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


# how often a running step's timing.json is brought up to date, so that a grid killed mid-step (SIGKILL, a
# stopped machine) loses at most this much of the step's wall clock
HEARTBEAT_S = 30.0


class StepBusy(RuntimeError):
    """Another process (e.g. a second grid process over the same folders) is running this step."""


def lock_path(output_dir: Path) -> Path:
    """The lock file of a step: beside its folder, since a restarted step's folder is deleted."""
    return output_dir.parent / f".{output_dir.name}.lock"


@contextlib.contextmanager
def step_lock(output_dir: Path) -> Iterator[None]:
    """Hold the step's exclusive lock while the block runs; :class:`StepBusy` at once if another process holds it.
    The operating system releases it when the holder dies, so a killed grid leaves no stale lock."""
    path = lock_path(output_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as error:
                raise StepBusy(f"{output_dir} is being run by another process (it holds {path})") from error
        yield


def _timing(folder: Path) -> dict:
    path = folder / TIMING_FILE
    return json.loads(path.read_text()) if path.is_file() else {"seconds": 0.0, "attempts": 0}


def call_with_heartbeat(argv: Sequence[str], log: IO, env: dict[str, str] | None, heartbeat: Callable[[], None]) -> int:
    """Run ``argv`` with its output in ``log``; call ``heartbeat`` every :data:`HEARTBEAT_S` seconds while it runs.
    Returns its exit code."""
    process = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, env=env)
    while True:
        try:
            return process.wait(timeout=HEARTBEAT_S)
        except subprocess.TimeoutExpired:
            heartbeat()


def run_step(step: Step, env: dict[str, str] | None = None, extra_args: Sequence[str] = ()) -> int:
    """Run one step as a subprocess (resuming or restarting an unfinished one); mark it done on success.

    ``extra_args`` go after the step's own options (argparse keeps the last value, so they override). The
    wall clock of every attempt adds up in ``timing.json``, kept up to date while the step runs (every
    :data:`HEARTBEAT_S`), so an attempt that is killed still counts. Raises :class:`StepBusy` if another process
    is running the step; a step another process finished meanwhile is not run again (returns 0).
    """
    if step.needs is not None and not (step.needs / DONE_MARKER).is_file():
        raise RuntimeError(f"step {step.key!r} needs {step.needs}, which has not finished")
    with step_lock(step.output_dir):
        if step.done:  # finished by another process since the caller looked
            return 0
        return _run_locked(step, env, extra_args)


def _run_locked(step: Step, env: dict[str, str] | None, extra_args: Sequence[str]) -> int:
    """:func:`run_step`'s work, under the step's lock."""
    command = [*step.command, *extra_args]
    if step.output_dir.exists():
        if step.resumable:
            command.append("--resume")
        else:
            shutil.rmtree(step.output_dir)
    step.output_dir.mkdir(parents=True, exist_ok=True)
    before = _timing(step.output_dir)
    attempts = before["attempts"] + 1
    started = time.perf_counter()

    def record(**state) -> None:
        seconds = round(before["seconds"] + time.perf_counter() - started, 1)
        write_json_atomic({"seconds": seconds, "attempts": attempts, **state}, step.output_dir / TIMING_FILE)

    record(running=True)
    try:
        with open(step.output_dir / LOG_FILE, "a") as log:
            log.write(f"$ plm-nas {' '.join(command)}\n")
            log.flush()
            code = call_with_heartbeat([sys.executable, "-m", "benchmarks.cli", *command, "--no-progress"], log, env,
                                       lambda: record(running=True))
    except BaseException:  # Ctrl-C: the attempt's time so far still counts
        record(interrupted=True)
        raise
    record(exit_code=code, finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
    if code == 0:
        (step.output_dir / DONE_MARKER).write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
    return code


def _model_folders(folder: Path) -> set[Path]:
    """Folders below a step's folder that hold weights (a saved model or checkpoint): exported as nothing."""
    return {path.parent for suffix in WEIGHT_SUFFIXES for path in folder.rglob(f"*{suffix}")} - {folder}


def export_results(steps: Sequence[Step], root: Path, dest: Path) -> list[Path]:
    """Copy the small files (tables, metrics, settings, logs) of every finished step from ``root`` to ``dest``,
    same relative paths; saved models and checkpoints (every file of a folder holding weights) and other files
    over EXPORT_MAX_BYTES stay behind, and a results table over it is written gzipped (``results.csv.gz``, which
    the report reads). Returns the copies."""
    copied: list[Path] = []
    for step in steps:
        if not step.done:
            continue
        models = _model_folders(step.output_dir)
        for path in sorted(step.output_dir.rglob("*")):
            if not path.is_file() or any(folder in path.parents for folder in models):
                continue
            if path.suffix not in EXPORT_SUFFIXES and path.name != DONE_MARKER:
                continue
            target = dest / path.relative_to(root)
            large = path.stat().st_size > EXPORT_MAX_BYTES
            if large and path.name != RESULTS_FILE:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if large:  # a results table is never left behind: a large one (the large space's masks) goes gzipped
                target = target.with_name(RESULTS_FILE + ".gz")
                with open(path, "rb") as source, open(target, "wb") as sink, \
                        gzip.GzipFile(fileobj=sink, mode="wb", filename="", mtime=0) as packed:
                    shutil.copyfileobj(source, packed)  # no timestamp: the same table exports to the same bytes
            else:
                shutil.copy2(path, target)
            copied.append(target)
    return copied


def iter_pending(steps: Sequence[Step]) -> Iterator[Step]:
    return (step for step in steps if not step.done)
