"""Which weight-sharing searchers differ, with statistical power: the ``searchers`` grid's summary.

``python -m benchmarks.studies.searchers ROOT --out OUT`` reads the finished searches (``DONE``) below
``ROOT/weight-sharing`` (a ``plm-nas experiments --grid searchers`` folder or its ``--export-results`` copy) and
writes, from their results tables alone:

- ``OUT/hypervolumes.csv``: one row per search and budget (25 evaluations and each search's end): task, searcher,
  super-network seed, searcher seed, hypervolume (the report's: quantile-normalised per task over all compared
  rows, reference point (2, 2));
- ``OUT/summary.md``: per task and across tasks, on the first super-network (one block per searcher seed), each
  searcher's mean hypervolume with a 95% confidence interval and mean rank, Friedman's test and the pairs
  Nemenyi's test separates, after 25 evaluations and at the end; what a user would take away: the test metric of
  the best-validation sub-network within 25, 50 and 75% pruned, relative to plain fine-tuning (the first
  super-network's own, ``ROOT/finetuned/TASK/*/seed0``), with the same test; then how much the second
  super-network moves each searcher's mean against the spread over searcher seeds, and whether it ranks the
  searchers alike.

The anytime curves with confidence bands and the critical-difference diagrams are ``plm-nas report ROOT``'s.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from benchmarks.files import write_text_atomic
from benchmarks.grids.spec import DONE_MARKER
from benchmarks.results import best_so_far_rows, read_results, write_atomic
from plotting.hypervolume import HypervolumeSettings, hypervolume_over_time
from plotting.relative import relative_performance
from plotting.significance import (
    CONFIDENCE,
    block_of,
    block_table,
    confidence_interval,
    friedman,
    hypervolume_at,
)

BUDGETS: tuple[int | None, ...] = (25, None)
FRACTIONS_PRUNED: tuple[float, ...] = (0.25, 0.5, 0.75)
RUN_ID = re.compile(r"-supernet(?P<supernet>\d+)-seed(?P<seed>\d+)$")


def finished_rows(root: Path) -> pd.DataFrame:
    """The rows of every finished search below ``root/weight-sharing`` (a search without ``DONE`` is left out)."""
    files = [path for path in sorted((root / "weight-sharing").rglob("results.csv"))
             if (path.parent / DONE_MARKER).is_file()]
    if not files:
        raise SystemExit(f"no finished search below {root / 'weight-sharing'}")
    return pd.concat([read_results(path) for path in files], ignore_index=True)


def run_hypervolumes(rows: pd.DataFrame, budgets: Sequence[int | None] = BUDGETS) -> pd.DataFrame:
    """One row per search and budget: task, searcher, supernet, seed, budget (0: the end), hypervolume, block."""
    trajectories = hypervolume_over_time(best_so_far_rows(rows), HypervolumeSettings())
    parts = []
    for budget in budgets:
        values = hypervolume_at(trajectories, budget)
        ids = values["run_id"].str.extract(RUN_ID)
        if ids.isna().any().any():
            bad = values.loc[ids.isna().any(axis=1), "run_id"].iloc[0]
            raise SystemExit(f"run id {bad!r} does not end in -supernetN-seedM (a searchers-grid search)")
        values = values.assign(supernet=ids["supernet"].astype(int), seed=ids["seed"].astype(int),
                               budget=0 if budget is None else int(budget))
        parts.append(values.rename(columns={"method": "searcher"}))
    columns = ["task", "searcher", "supernet", "seed", "budget", "hypervolume", "run_id", "block"]
    return pd.concat(parts, ignore_index=True)[columns].sort_values(columns[:5], ignore_index=True)


def finetuned_test(root: Path, tasks: Sequence[str]) -> dict[str, float]:
    """Per task, plain fine-tuning's test metric for the first super-network (``finetuned/TASK/*/seed0``)."""
    found = {}
    for task in tasks:
        for path in sorted((root / "finetuned" / task).glob("*/seed0/metrics.json")):
            found[task] = float(json.loads(path.read_text())["test"]["main"])
    return found


def relative_to_finetuning(rows: pd.DataFrame, references: dict[str, float]) -> pd.DataFrame:
    """One row per search of the first super-network and fraction pruned: the relative test metric (in %) of
    its best-validation sub-network within the budget, as a ``hypervolume`` column so the same tests apply."""
    first = rows[rows["run_id"].str.contains("-supernet0-", regex=False)
                 & rows["task"].isin(list(references))]
    if first.empty:
        return pd.DataFrame()
    table = relative_performance(first, FRACTIONS_PRUNED, size_column="mac_fraction", reference=references)
    table = table.assign(hypervolume=100 * table["relative_performance"], searcher=table["method"],
                         block=[f"{task}/{block_of(run, method)}"
                                for task, run, method in zip(table["task"], table["run_id"], table["method"])])
    return table[["task", "searcher", "fraction_pruned", "hypervolume", "run_id", "block"]]


def _budget_name(budget: int) -> str:
    return "at the end (100 evaluations)" if budget == 0 else f"after {budget} evaluations"


def comparison_table(values: pd.DataFrame, digits: int = 4) -> tuple[list[str], str]:
    """Markdown rows (searcher, runs, mean, CI, mean rank) and a verdict line for one scope's blocks (the value
    compared is the ``hypervolume`` column)."""
    table = block_table(values.rename(columns={"searcher": "method"}))
    result = friedman(table)
    lines = []
    order = (result.mean_ranks.sort_values().index if result is not None
             else sorted(values["searcher"].unique()))
    for searcher in order:
        part = values.loc[values["searcher"] == searcher, "hypervolume"]
        mean, low, high = confidence_interval(part)
        rank = f"{result.mean_ranks[searcher]:.2f}" if result is not None else "–"
        interval = "–" if np.isnan(low) else f"[{low:.{digits}f}, {high:.{digits}f}]"
        lines.append(f"| {searcher} | {len(part)} | {mean:.{digits}f} | {interval} | {rank} |")
    if result is None:
        return lines, f"fewer complete blocks than the test needs ({len(table)}): no test"
    if not result.significant:
        return lines, f"Friedman p = {result.p_value:.3g} over {result.blocks} blocks: no significant difference"
    pairs = result.different_pairs()
    differ = "; ".join(f"{a} > {b}" for a, b in pairs) if pairs else "no pair differs significantly (Nemenyi)"
    return lines, f"Friedman p = {result.p_value:.3g} over {result.blocks} blocks; {differ}"


def supernet_effect(values: pd.DataFrame) -> pd.DataFrame:
    """Per task and searcher, on the seeds both super-networks ran: each super-network's mean hypervolume, the
    difference, and the pooled standard deviation over searcher seeds (what one more seed would vary by)."""
    records = []
    for (task, searcher), part in values.groupby(["task", "searcher"], sort=True):
        seeds = set(part.loc[part["supernet"] == 1, "seed"])
        if not seeds:
            continue
        shared = part[part["seed"].isin(seeds)]
        first = shared.loc[shared["supernet"] == 0, "hypervolume"]
        second = shared.loc[shared["supernet"] == 1, "hypervolume"]
        if first.empty:
            continue
        pooled = float(np.sqrt((first.var(ddof=1) * (len(first) - 1) + second.var(ddof=1) * (len(second) - 1))
                               / max(len(first) + len(second) - 2, 1)))
        records.append({"task": task, "searcher": searcher, "seeds": len(seeds), "supernet0": first.mean(),
                        "supernet1": second.mean(), "difference": second.mean() - first.mean(),
                        "seed_sd": pooled})
    return pd.DataFrame.from_records(records)


def summary_markdown(values: pd.DataFrame, relative: pd.DataFrame | None = None) -> str:
    """The summary: comparisons on the first super-network per task and across tasks, then the second's effect."""
    lines = ["# Searchers compared with statistical power", "",
             "Hypervolume: validation error and MAC fraction, quantile-normalised per task over all compared rows, "
             f"reference point (2, 2). Intervals: {CONFIDENCE:.0%} Student-t of the mean over searcher seeds. "
             "Mean rank: within each block (one searcher seed on one super-network; across tasks, one task and "
             "seed), 1 = largest hypervolume. Significance: Friedman's test, then Nemenyi's (p < 0.05).", ""]
    first = values[values["supernet"] == 0]
    tasks = sorted(first["task"].unique())
    for budget in sorted(first["budget"].unique(), key=lambda b: (b == 0, b)):
        at = first[first["budget"] == budget]
        lines += [f"## First super-network, {_budget_name(int(budget))}", ""]
        scopes = [(task, at[at["task"] == task]) for task in tasks]
        if len(tasks) > 1:
            scopes.append(("all tasks", at))
        for scope, part in scopes:
            rows, verdict = comparison_table(part)
            lines += [f"**{scope}**: {verdict}.", "", "| searcher | runs | mean hypervolume | 95% CI | mean rank |",
                      "|---|---|---|---|---|", *rows, ""]
    if relative is not None and not relative.empty:
        lines += ["## What a user takes away: the test metric at a budget", "",
                  "The best-validation sub-network of each search (first super-network, 100 evaluations) within "
                  "25, 50 and 75% pruned (fraction of the MACs), its test metric relative to plain fine-tuning's in "
                  "%, mean with a 95% CI over searcher seeds; ranks and tests as above, on this value.", ""]
        for fraction in FRACTIONS_PRUNED:
            at = relative[relative["fraction_pruned"] == fraction].dropna(subset=["hypervolume"])
            for task in sorted(at["task"].unique()):
                rows, verdict = comparison_table(at[at["task"] == task], digits=1)
                lines += [f"**{task}, {fraction:.0%} pruned**: {verdict}.", "",
                          "| searcher | runs | mean relative test metric (%) | 95% CI | mean rank |",
                          "|---|---|---|---|---|", *rows, ""]
    effect = supernet_effect(values[values["budget"] == 0])
    if not effect.empty:
        lines += ["## The second super-network", "",
                  "Each searcher's mean final hypervolume on the seeds both super-networks ran, the difference, and "
                  "the standard deviation over searcher seeds (pooled); |difference| / seed s.d. above 1 means the "
                  "super-network moves a searcher more than its seed does.", "",
                  "| task | searcher | seeds | first | second | difference | seed s.d. | difference / seed s.d. |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in effect.itertuples():
            ratio = abs(row.difference) / row.seed_sd if row.seed_sd > 0 else float("inf")
            lines.append(f"| {row.task} | {row.searcher} | {row.seeds} | {row.supernet0:.4f} | {row.supernet1:.4f} | "
                         f"{row.difference:+.4f} | {row.seed_sd:.4f} | {ratio:.2f} |")
        lines.append("")
        for task, part in effect.groupby("task", sort=True):
            if len(part) >= 3:
                tau, p_value = stats.kendalltau(part["supernet0"], part["supernet1"])
                lines.append(f"- {task}: the two super-networks order the searchers' means with Kendall's tau = "
                             f"{tau:.2f} (p = {p_value:.2g}, {len(part)} searchers).")
        second = values[(values["supernet"] == 1) & (values["budget"] == 0)]
        for task in sorted(second["task"].unique()):
            _, verdict = comparison_table(second[second["task"] == task])
            lines.append(f"- {task}, second super-network alone, at the end: {verdict}.")
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, help="a searchers grid folder or its --export-results copy")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    rows = finished_rows(args.root)
    values = run_hypervolumes(rows)
    references = finetuned_test(args.root, sorted(rows["task"].unique()))
    relative = relative_to_finetuning(rows, references)
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(values, args.out / "hypervolumes.csv")
    if not relative.empty:
        write_atomic(relative, args.out / "relative.csv")
    text = summary_markdown(values, relative)
    write_text_atomic(text + "\n", args.out / "summary.md")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
