"""Does searching for latency buy real speed at equal accuracy? MAC-fraction against latency-fraction searches.

``python -m benchmarks.studies.latency --supernet stsb=RUN/supernet --supernet sst2=RUN/supernet --table TABLE
--out OUT [--threads 1]`` runs, per task, on one super-network (the CPU study's protocol), NSGA-II and EHVI with
seeds 0 and 1, 100 sub-networks each, once with ``--size-objective mac_fraction`` and once with
``latency_fraction`` (predicted by ``TABLE``, e.g. bf16, batch 1, 128 tokens); every search has its own folder and
resumes like a grid step. Then it extracts every front member of every search (each distinct sub-network once per
task) and times them all, with the full model, in one set of interleaved rounds in the table's setting
(:func:`benchmarks.perf.latency_table.time_masks`), and writes:

- ``OUT/measured.csv``: per task and sub-network, predicted and measured milliseconds;
- ``OUT/fronts.csv``: per search, each front's hypervolume with the *measured* latency fraction (validation error
  vs measured latency over the full model's, reference point (1, 1)), and the test metric of the best-validation
  front member within 50% of the full model's measured latency;
- ``OUT/summary.md``: those per task, searcher and objective, mean over the two seeds.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from benchmarks.grids.runner import run_step
from benchmarks.grids.spec import DONE_MARKER, Step
from benchmarks.results import read_results

SEARCHERS = ("nsga2", "ehvi")
SEEDS = (0, 1)
OBJECTIVES = ("mac_fraction", "latency_fraction")
LATENCY_BUDGET = 0.5


def plan(supernets: dict[str, Path], table: Path, root: Path, searchers: Sequence[str] = SEARCHERS) -> list[Step]:
    steps = []
    for task, supernet in supernets.items():
        for searcher in searchers:
            for objective in OBJECTIVES:
                for seed in SEEDS:
                    out = root / "searches" / task / objective / searcher / f"seed{seed}"
                    steps.append(Step(f"search {task}/{objective}/{searcher}/seed{seed}", (
                        "search", "--supernet", str(supernet), "--searcher", searcher, "--seed", str(seed),
                        "--size-objective", objective, "--latency-table", str(table), "--num-samples", "100",
                        "--max-valid-samples", "512", "--run-id", f"{task}-{objective}-{searcher}-seed{seed}",
                        "--output-dir", str(out)), out, resumable=True))
    return steps


def front_rows(root: Path) -> pd.DataFrame:
    """Every front member of every finished search, with its task, objective, searcher and seed."""
    frames = []
    for path in sorted((root / "searches").glob("*/*/*/seed*/results.csv")):
        if not (path.parent / DONE_MARKER).is_file():
            continue
        task, objective, searcher, seed = path.parent.relative_to(root / "searches").parts
        rows = read_results(path)
        frames.append(rows[rows["pareto"].astype(bool)].assign(objective=objective, searcher=searcher,
                                                                seed=int(seed[len("seed"):])))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def measure(fronts: pd.DataFrame, supernets: dict[str, Path], table_path: Path) -> pd.DataFrame:
    """Time every distinct front member of each task with the full model, interleaved, in the table's setting."""
    from benchmarks.artifacts import SuperNetSource
    from benchmarks.perf.latency import LatencySetting
    from benchmarks.perf.latency_table import time_masks
    from search_spaces import get_search_space
    from search_spaces.latency import LatencyTable

    table = LatencyTable.read(table_path)
    s = table.setting
    setting = LatencySetting(batch_size=s.batch_size, seq_len=s.seq_len, threads=s.threads, precision=s.precision,
                             device=s.device, warmup=s.warmup, repeats=s.repeats, clock=s.clock)
    records = []
    for task, rows in fronts.groupby("task"):
        source = SuperNetSource.load(supernets[str(task)], device=s.device)
        space = get_search_space(str(rows["search_space"].iloc[0]), source.shape)
        configs = sorted(set(rows["config"]))
        named = {f"c{i}": space.to_masks(json.loads(config)) for i, config in enumerate(configs)}
        ms = time_masks(source.model.eval(), {"full": None, **named}, setting)
        for i, config in enumerate(configs):
            masks = named[f"c{i}"]
            records.append({"task": task, "config": config, "measured_ms": ms[f"c{i}"], "full_ms": ms["full"],
                            "measured_latency_fraction": ms[f"c{i}"] / ms["full"],
                            "predicted_ms": table.predict_ms(source.shape, masks),
                            "predicted_latency_fraction": table.latency_fraction(source.shape, masks)})
    return pd.DataFrame.from_records(records)


def front_summary(fronts: pd.DataFrame, measured: pd.DataFrame) -> pd.DataFrame:
    """Per search: hypervolume in (validation error, measured latency fraction) and the best test metric within
    :data:`LATENCY_BUDGET` of the full model's measured latency."""
    from plotting.hypervolume import hypervolume_2d

    joined = fronts.merge(measured[["task", "config", "measured_latency_fraction"]], on=["task", "config"])
    records = []
    for (task, objective, searcher, seed), rows in joined.groupby(["task", "objective", "searcher", "seed"]):
        points = rows[["valid_error", "measured_latency_fraction"]].to_numpy(dtype=float).clip(max=1.0)
        within = rows[rows["measured_latency_fraction"] <= LATENCY_BUDGET]
        best = within.sort_values(["valid_error", "measured_latency_fraction"]).head(1)
        records.append({
            "task": task, "objective": objective, "searcher": searcher, "seed": seed, "front_size": len(rows),
            "hypervolume_measured": hypervolume_2d(points, (1.0, 1.0)),
            "best_within_budget_test_metric": float(1 - best["test_error"].iloc[0]) if len(best) else np.nan,
            "best_within_budget_latency_fraction": (float(best["measured_latency_fraction"].iloc[0])
                                                    if len(best) else np.nan),
        })
    return pd.DataFrame.from_records(records)


def summary_markdown(frame: pd.DataFrame) -> str:
    means = frame.groupby(["task", "searcher", "objective"])[
        ["hypervolume_measured", "best_within_budget_test_metric", "best_within_budget_latency_fraction"]].mean()
    lines = ["| task | searcher | size objective | front hypervolume (measured latency) | test metric within 50% "
             "latency | its latency fraction |", "|---|---|---|---|---|---|"]
    for (task, searcher, objective), row in means.iterrows():
        lines.append(f"| {task} | {searcher} | {objective} | {row.hypervolume_measured:.4f} | "
                     f"{row.best_within_budget_test_metric:.4f} | {row.best_within_budget_latency_fraction:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--supernet", action="append", required=True, metavar="TASK=DIR",
                        help="the super-network of a task (repeat per task)")
    parser.add_argument("--table", required=True, type=Path, help="the latency table the searches predict with")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--threads", type=int, default=None, help="torch threads of every search")
    parser.add_argument("--skip-measure", action="store_true", help="run the searches only")
    parser.add_argument("--searchers", nargs="+", default=list(SEARCHERS), help="default: nsga2 ehvi")
    args = parser.parse_args(argv)
    supernets = {item.split("=", 1)[0]: Path(item.split("=", 1)[1]) for item in args.supernet}
    extra = ("--threads", str(args.threads)) if args.threads else ()
    failed = []
    for step in plan(supernets, args.table.resolve(), args.out, args.searchers):
        if not step.done:
            print(f"run {step.key}", flush=True)
            if run_step(step, extra_args=extra) != 0:
                failed.append(step.key)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    if args.skip_measure:
        return 0
    from benchmarks.verbosity import configure_output

    configure_output()  # no transformers load reports between the tables
    fronts = front_rows(args.out)
    measured = measure(fronts, supernets, args.table)
    measured.to_csv(args.out / "measured.csv", index=False)
    summary = front_summary(fronts, measured)
    summary.to_csv(args.out / "fronts.csv", index=False)
    markdown = summary_markdown(summary)
    (args.out / "summary.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
