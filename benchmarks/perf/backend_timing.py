"""Local (Syne Tune) vs Ray backend: the same standard NAS run on both, wall-clock time and per-trial overhead.

``python -m benchmarks.perf.backend_timing --output-dir runs/backend-timing --data-dir ../shared/data/glue`` runs
standard NAS of MiniLM on STS-B twice with the same seed and settings: once with ``--backend local`` and once
with ``--backend ray`` on a loopback two-node Ray cluster (one CPU per node) that it starts and stops. Both
runs use 2 workers with one CPU thread each. It prints (and writes to ``timing.json``) per backend: wall-clock
seconds, trials, the seconds each trial spent inside its own process (from the backend's per-result
timers: Syne Tune's ``st_worker_time``, Ray's ``time_total_s``), and the per-trial overhead
(workers x wall - time inside trials) / trials, i.e. starting processes, scheduling and reporting.
With ``--samples N`` it also trains a small super-network and runs a weight-sharing search of N sub-networks
(MOREA, search batch 2) in this process and on 2 Ray evaluation actors, and checks the rows are identical.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

import pandas as pd


def nas_command(backend: str, output_dir: Path, args: argparse.Namespace, address: str | None) -> list[str]:
    command = [
        "nas", "--backend", backend, "--task", args.task, "--output-dir", str(output_dir), "--searcher", args.searcher,
        "--workers", "2", "--threads", "2", "--max-trials", str(args.trials), "--epochs", str(args.epochs),
        "--max-train-samples", str(args.train_samples), "--max-valid-samples", str(args.eval_samples),
        "--max-test-samples", str(args.eval_samples), "--seed", str(args.seed), "--no-progress",
    ]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    if address:
        command += ["--ray-address", address, "--cpus-per-trial", "1"]
    return command


def time_inside_trials(backend: str, output_dir: Path) -> list[float]:
    """Seconds each trial spent in its own process until its last report."""
    if backend == "local":
        frame = pd.read_csv(output_dir / "syne-tune" / "results.csv.zip")
        return frame.groupby("trial_id")["st_worker_time"].max().tolist()
    inside = []
    for path in sorted((output_dir / "ray").glob("*/result.json")):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if rows:
            inside.append(max(float(row["time_total_s"]) for row in rows))
    return inside


def measure(backend: str, output_dir: Path, args: argparse.Namespace, address: str | None) -> dict:
    from benchmarks.cli import run_command as main

    started = time.perf_counter()
    code = main(nas_command(backend, output_dir, args, address))
    wall = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"the {backend} run failed (exit code {code})")
    inside = time_inside_trials(backend, output_dir)
    return {
        "backend": backend, "wall_s": round(wall, 1), "trials": len(inside),
        "inside_trials_s": round(sum(inside), 1),
        "overhead_per_trial_s": round((2 * wall - sum(inside)) / max(len(inside), 1), 2),
    }


def compare(local_dir: Path, ray_dir: Path) -> dict:
    """Do both backends' tables hold the same trials, and how far apart are their errors?"""
    from benchmarks.results import RESULTS_FILE, read_results

    local, ray = read_results(local_dir / RESULTS_FILE), read_results(ray_dir / RESULTS_FILE)
    joined = local.merge(ray, on=["config", "epoch"], suffixes=("_local", "_ray"))
    return {
        "same_configs": sorted(set(local["config"])) == sorted(set(ray["config"])),
        "rows_local": len(local), "rows_ray": len(ray), "rows_matched": len(joined),
        "max_abs_valid_error_diff": float((joined["valid_error_local"] - joined["valid_error_ray"]).abs().max()),
        "max_abs_test_error_diff": float((joined["test_error_local"] - joined["test_error_ray"]).abs().max()),
    }


def measure_search(backend: str, supernet: Path, output_dir: Path, args: argparse.Namespace,
                   address: str | None) -> dict:
    """A weight-sharing search of ``--samples`` sub-networks: in this process, or on 2 Ray evaluation actors."""
    from benchmarks.cli import run_command as main

    command = ["search", "--supernet", str(supernet), "--output-dir", str(output_dir), "--searcher", "morea",
               "--num-samples", str(args.samples), "--max-test-samples", str(args.eval_samples), "--seed",
               str(args.seed), "--search-batch", "2", "--threads", "1", "--no-progress"]
    if address:
        command += ["--backend", "ray", "--eval-workers", "2", "--ray-address", address]
    started = time.perf_counter()
    if main(command) != 0:
        raise RuntimeError(f"the {backend} search failed")
    return {"search_backend": backend, "wall_s": round(time.perf_counter() - started, 1)}


def compare_search(local_dir: Path, ray_dir: Path) -> dict:
    from benchmarks.results import RESULTS_FILE, read_results

    columns = ["config", "valid_error", "test_error", "pareto"]
    local, ray = read_results(local_dir / RESULTS_FILE)[columns], read_results(ray_dir / RESULTS_FILE)[columns]
    return {"search_rows": len(local), "search_identical": bool(local.equals(ray))}


def main(argv: Sequence[str] | None = None) -> int:
    from benchmarks.ray_cluster import LoopbackCluster, environment

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--task", default="stsb")
    parser.add_argument("--searcher", default="random_search")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-samples", type=int, default=64)
    parser.add_argument("--eval-samples", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=0,
                        help="also train a small super-network and compare a weight-sharing search of this many "
                             "sub-networks, local vs 2 Ray actors (default 0: skip)")
    args = parser.parse_args(argv)
    if args.output_dir.exists():
        raise SystemExit(f"{args.output_dir} exists; choose a new --output-dir")
    records = [measure("local", args.output_dir / "local", args, None)]
    supernet = args.output_dir / "supernet"
    if args.samples:
        from benchmarks.cli import run_command as cli

        command = ["train-supernet", "--task", args.task, "--output-dir", str(supernet), "--epochs", "1",
                   "--max-train-samples", str(4 * args.train_samples), "--max-valid-samples", str(args.eval_samples),
                   "--strategy", "sandwich", "--search-space", "small", "--threads", "2", "--no-progress"]
        if cli(command + (["--data-dir", args.data_dir] if args.data_dir else [])) != 0:
            raise RuntimeError("super-network training failed")
        records.append(measure_search("local", supernet, args.output_dir / "search-local", args, None))
    cluster = LoopbackCluster(port=6391, cpus_per_node=1, workers=1, temp_dir=args.output_dir / "ray-tmp")
    with environment(**cluster.client_env), cluster:
        records.append(measure("ray", args.output_dir / "ray", args, cluster.address))
        if args.samples:
            records.append(measure_search("ray", supernet, args.output_dir / "search-ray", args, cluster.address))
    records.append(compare(args.output_dir / "local", args.output_dir / "ray"))
    if args.samples:
        records.append(compare_search(args.output_dir / "search-local", args.output_dir / "search-ray"))
    (args.output_dir / "timing.json").write_text(json.dumps(records, indent=2))
    for record in records:
        print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
