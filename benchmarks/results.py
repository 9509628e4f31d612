"""The tidy results table: one row per evaluated sub-network, written atomically.

Every producer (standard NAS, weight-sharing search, pruning baselines) writes these columns, and every
consumer (hypervolume, plots, report) reads only these files, so neither side knows who made a row.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

RESULTS_FILE = "results.csv"
RUN_INFO_FILE = "run.json"

COLUMNS: tuple[str, ...] = (
    "run_id",  # one search / pruning run
    "kind",  # "standard", "weight-sharing" or "baseline"
    "method",  # what is compared in plots: searcher name or baseline name
    "searcher",
    "search_space",
    "strategy",  # super-network training strategy ("" for standard NAS)
    "task",
    "model",
    "seed",
    "config",  # JSON of the Syne Tune config, or of the masks for baselines
    "valid_error",
    "test_error",
    "params",
    "param_fraction",
    "encoder_param_fraction",
    "macs",
    "mac_fraction",
    "size_objective",  # name of the size column minimised by the search
    "runtime_s",  # wall-clock seconds since the run started
    "epoch",  # epoch of the reported row (standard NAS), else empty
    "pareto",  # on the (valid_error, size objective) front of its run
)

KINDS = ("standard", "weight-sharing", "baseline")
SIZE_OBJECTIVES = ("param_fraction", "encoder_param_fraction", "mac_fraction")


@dataclass
class ResultRow:
    """One evaluated sub-network."""

    run_id: str
    kind: str
    method: str
    task: str
    model: str
    seed: int
    config: dict[str, Any]
    valid_error: float
    params: int
    param_fraction: float
    encoder_param_fraction: float
    macs: float
    mac_fraction: float
    runtime_s: float
    size_objective: str = "param_fraction"
    searcher: str = ""
    search_space: str = ""
    strategy: str = ""
    test_error: float = float("nan")
    epoch: float = float("nan")
    pareto: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.size_objective not in SIZE_OBJECTIVES:
            raise ValueError(f"size_objective must be one of {SIZE_OBJECTIVES}, got {self.size_objective!r}")

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["config"] = json.dumps(self.config, sort_keys=True)
        return {name: record[name] for name in COLUMNS}


def pareto_mask(errors: Iterable[float], sizes: Iterable[float]) -> list[bool]:
    """True for points not dominated by any other (both objectives minimised; ties keep the first)."""
    pts = list(zip(errors, sizes))
    flags = []
    for i, (e, s) in enumerate(pts):
        dominated = False
        for j, (e2, s2) in enumerate(pts):
            if j == i:
                continue
            if (e2 <= e and s2 <= s) and ((e2 < e or s2 < s) or j < i):
                dominated = True
                break
        flags.append(not dominated)
    return flags


def rows_to_frame(rows: Iterable[ResultRow | dict[str, Any]]) -> pd.DataFrame:
    records = [r.to_record() if isinstance(r, ResultRow) else r for r in rows]
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    return frame


def mark_pareto(frame: pd.DataFrame) -> pd.DataFrame:
    """Recompute the ``pareto`` flag per run on (valid_error, size objective)."""
    frame = frame.copy()
    frame["pareto"] = False
    for _, idx in frame.groupby("run_id").groups.items():
        part = frame.loc[idx]
        size_col = part["size_objective"].iloc[0]
        flags = pareto_mask(part["valid_error"].tolist(), part[size_col].tolist())
        frame.loc[idx, "pareto"] = flags
    return frame


def write_atomic(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write CSV (or Parquet by suffix) to a temporary file in the same folder, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if path.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_json_atomic(data: dict[str, Any], path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True, default=str)
    os.replace(tmp, path)
    return path


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


def read_results(path: str | os.PathLike) -> pd.DataFrame:
    """Read one results file, or every ``results.csv`` below a folder, into one frame."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.rglob(RESULTS_FILE)) + sorted(path.rglob("results.parquet"))
        if not files:
            raise FileNotFoundError(f"no {RESULTS_FILE} found below {path}")
        return pd.concat([read_results(f) for f in files], ignore_index=True)
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path, keep_default_na=True, dtype={"strategy": str, "searcher": str, "search_space": str})
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} is not a results table: missing columns {missing}")
    for col in ("strategy", "searcher", "search_space"):
        frame[col] = frame[col].fillna("")
    return frame
