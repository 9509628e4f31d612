"""Does bf16 give the numbers fp32 gives? Parity of mixed precision, from the ``precision`` grid and the CPU study.

``python -m benchmarks.studies.precision --bf16 runs/precision/bf16 --fp32 benchmarks/results/cpu-study
--out benchmarks/results/precision`` compares, per task and seed of the ``precision`` grid (run with
``plm-nas experiments --grid precision --precision bf16``):

- plain fine-tuning: the test metric of the best-validation epoch, bf16 against the CPU study's fp32 run (same
  command, data and seed; target: within 0.01);
- the default super-network: the test metric of its full network and of every probe sub-network (target: full
  within 0.01, probes within 0.02);
- scoring: the same 100 sub-networks of the bf16 super-network scored once in bf16 and once in fp32 (this study
  runs both searches, the grid's random search again with ``--precision bf16`` and ``--precision fp32`` and the
  same seed, so random search proposes the same sub-networks, and both scorings come from the same code): Kendall's
  tau of their validation errors (target >= 0.9) and the hypervolume of each scoring's Pareto front (validation
  error vs fraction of MACs, reference point (1, 1); target: within 1%).

Writes ``OUT/parity.csv`` (one row per task, seed and quantity: fp32, bf16, difference, target, met) and
``OUT/parity.md``, and copies the grid's small files (tables, metrics, logs; no weights) below ``OUT/grid``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
from scipy.stats import kendalltau

from benchmarks.grids import expand, get_grid
from benchmarks.grids.runner import export_results
from benchmarks.results import read_results
from plotting.hypervolume import hypervolume_2d

METRIC_TARGET = 0.01
PROBE_TARGET = 0.02
TAU_TARGET = 0.9
HYPERVOLUME_TARGET = 0.01  # relative
RESCORED = "rescored-{precision}"


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _row(task: str, seed: int, quantity: str, fp32: float, bf16: float, target: float, relative: bool = False
         ) -> dict[str, Any]:
    difference = bf16 - fp32
    measured = abs(difference) / abs(fp32) if relative else abs(difference)
    return {"task": task, "seed": seed, "quantity": quantity, "fp32": fp32, "bf16": bf16, "difference": difference,
            "target": f"{'relative ' if relative else ''}|difference| <= {target:g}", "met": bool(measured <= target)}


def finetuning_rows(task: str, seed: int, bf16: Path, fp32: Path) -> list[dict[str, Any]]:
    """The fine-tuned model's test metric (of its best-validation epoch) in both precisions."""
    folder = Path("finetuned") / task / "minilm" / f"seed{seed}" / "metrics.json"
    ours, theirs = _json(bf16 / folder), _json(fp32 / folder)
    return [_row(task, seed, "fine-tuning: test metric", theirs["test"]["main"], ours["test"]["main"], METRIC_TARGET)]


def supernet_rows(task: str, seed: int, bf16: Path, fp32: Path) -> list[dict[str, Any]]:
    """The super-network's full network and probes: test metric (1 - test error) in both precisions."""
    folder = Path("supernets") / task / "minilm" / "small" / "sandwich" / f"seed{seed}" / "metrics.json"
    ours, theirs = _json(bf16 / folder)["test"], _json(fp32 / folder)["test"]
    rows = []
    for key in sorted(ours, key=lambda name: (name != "test_full_error", name)):
        if not key.endswith("_error") or key not in theirs:
            continue
        probe = key[len("test_"):-len("_error")]
        target = METRIC_TARGET if probe == "full" else PROBE_TARGET
        rows.append(_row(task, seed, f"super-network {probe}: test metric", 1 - theirs[key], 1 - ours[key], target))
    return rows


def front_hypervolume(frame: pd.DataFrame) -> float:
    """Hypervolume of the (validation error, fraction of MACs) points, reference point (1, 1)."""
    points = frame[["valid_error", "mac_fraction"]].to_numpy(dtype=float)
    return hypervolume_2d(points.clip(max=1.0), (1.0, 1.0))


def scoring_rows(task: str, seed: int, bf16_search: Path, fp32_search: Path) -> list[dict[str, Any]]:
    """The same sub-networks scored in bf16 and fp32: rank agreement and front hypervolumes."""
    ours, theirs = read_results(bf16_search), read_results(fp32_search)
    joined = ours.merge(theirs, on="config", suffixes=("_bf16", "_fp32"))
    if len(joined) != len(ours) or len(ours) != len(theirs):
        raise ValueError(f"{bf16_search} and {fp32_search} did not score the same sub-networks ({len(ours)}, "
                         f"{len(theirs)}, {len(joined)} in common): rerun the fp32 search with the same seed")
    tau = float(kendalltau(joined["valid_error_bf16"], joined["valid_error_fp32"]).statistic)
    rows = [{"task": task, "seed": seed, "quantity": f"scoring: Kendall tau of {len(joined)} validation errors",
             "fp32": None, "bf16": tau, "difference": None, "target": f">= {TAU_TARGET:g}",
             "met": bool(tau >= TAU_TARGET)}]
    rows.append(_row(task, seed, "scoring: front hypervolume (valid error, MACs)", front_hypervolume(theirs),
                     front_hypervolume(ours), HYPERVOLUME_TARGET, relative=True))
    return rows


def rescore(search: Path, out: Path, precision: str) -> Path:
    """Score the sub-networks of a search again in ``precision`` (same searcher and seed), unless done before."""
    if (out / "results.csv").is_file():
        return out
    run = _json(search / "run.json")["arguments"]
    argv = [sys.executable, "-m", "benchmarks.cli", "search", "--supernet", str(run["supernet"]), "--searcher",
            str(run["searcher"]), "--seed", str(run["seed"]), "--num-samples", str(run["num_samples"]),
            "--size-objective", str(run["size_objective"]), "--precision", precision, "--output-dir", str(out),
            "--no-progress"]
    if run.get("max_valid_samples") is not None:
        argv += ["--max-valid-samples", str(run["max_valid_samples"])]
    if run.get("threads"):
        argv += ["--threads", str(run["threads"])]
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "log.txt", "w") as log:
        subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=True)
    return out


def markdown(frame: pd.DataFrame) -> str:
    def cell(value: Any) -> str:
        if value is None or (isinstance(value, float) and value != value):
            return "—"
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bf16", required=True, type=Path, help="root of the precision grid run in bf16")
    parser.add_argument("--fp32", required=True, type=Path, help="root of the CPU study (fp32)")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    grid = get_grid("precision")
    rows: list[dict[str, Any]] = []
    for task in grid.tasks:
        for seed in grid.seeds:
            rows += finetuning_rows(task, seed, args.bf16, args.fp32)
            rows += supernet_rows(task, seed, args.bf16, args.fp32)
            search = args.bf16 / "weight-sharing" / task / "minilm" / "small" / "sandwich" / "random_search" / f"seed{seed}"
            scored = {precision: rescore(search, args.bf16 / RESCORED.format(precision=precision) / task / f"seed{seed}",
                                         precision) for precision in ("bf16", "fp32")}
            rows += scoring_rows(task, seed, scored["bf16"], scored["fp32"])
    frame = pd.DataFrame.from_records(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / "parity.csv", index=False)
    (args.out / "parity.md").write_text(markdown(frame))
    steps = expand(grid, args.bf16)
    export_results(steps, args.bf16, args.out / "grid")
    for folder in sorted(path for precision in ("bf16", "fp32")
                         for path in (args.bf16 / RESCORED.format(precision=precision)).glob("*/seed*")):
        for name in ("results.csv", "run.json", "scoring.json", "log.txt"):
            if (folder / name).is_file():
                target = args.out / "grid" / folder.relative_to(args.bf16) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes((folder / name).read_bytes())
    print(markdown(frame))
    print(f"{int(frame['met'].sum())} of {len(frame)} parity targets met; {args.out / 'parity.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
