"""Which super-network recipe beats retraining-free pruning? Candidate recipes side by side, under one protocol.

``python -m benchmarks.studies.recipe --output-dir runs/recipe-ablations --tasks stsb mrpc --seeds 0
--variants current init-kd init [--searchers random_search] [--threads 1]`` runs, per task and seed, with the CPU
protocol (``cpu-protocol.md``: 3 epochs of fine-tuning, lr 5e-5, batch 16, 512 validation examples, SST-2 on
5,000 training examples) and the size objective = fraction of MACs:

- plain fine-tuning (``finetune``), the reference of relative performance and every ``--init-from``;
- retraining-free pruning of it at 25%, 50% and 75% of the MACs (``prune --method rfp``), the bar to beat;
- per variant (:data:`VARIANTS`): a super-network (``train-supernet`` with the variant's options), searched by each
  of ``--searchers`` (100 sub-networks; with the variant's search options, e.g. calibration).

Every step is one ``plm-nas`` command in its own folder, run by the grid runner (``DONE`` markers, resumed when
interrupted, ``timing.json``), so the study can be stopped and started again. ``--summary`` (also after a run)
writes ``OUT/relative.csv``: per task, seed, method and fraction pruned (25/50/75%), the test performance of
the best-validation model within that size relative to the same seed's plain fine-tuning (MRPC also in
accuracy), and ``OUT/relative.md`` with the means over seeds, and ``OUT/cost.csv``: each step's wall clock.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from benchmarks.files import write_text_atomic
from benchmarks.grids.runner import TIMING_FILE, export_results, run_step
from benchmarks.grids.spec import DONE_MARKER, Step
from benchmarks.results import read_results, with_metric, write_atomic

TASKS = ("stsb", "sst2", "mrpc")
FRACTIONS_PRUNED = (0.25, 0.5, 0.75)
PROTOCOL = ("--max-valid-samples", "512", "--lr", "5e-5", "--batch-size", "16", "--weight-decay", "0.01",
            "--warmup-ratio", "0.1")
TASK_DATA = {"sst2": ("--max-train-samples", "5000")}
SECONDARY = {"mrpc": "accuracy"}
MACS = ("--size-objective", "mac_fraction")


@dataclass(frozen=True)
class Variant:
    """A candidate recipe: ``train-supernet`` options, whether it starts from plain fine-tuning, search options."""

    description: str
    supernet_args: tuple[str, ...]
    init_from_finetuned: bool = False
    search_args: tuple[str, ...] = ()


VARIANTS: dict[str, Variant] = {
    "current": Variant("sandwich from the pre-trained model for 3 epochs, 30% full-network warm-up, rewiring "
                       "(the CPU study's recipe)", ("--epochs", "3", "--init-from", "pretrained")),
    "init-kd": Variant("sandwich from the fine-tuned model for 2 epochs, rewired before the first step, every pass "
                       "distilled from the fine-tuned model (T=2)", ("--epochs", "2"), init_from_finetuned=True),
    "init": Variant("as init-kd without the teacher (task loss only)", ("--epochs", "2", "--no-teacher"),
                    init_from_finetuned=True),
    "init-kd-1ep": Variant("as init-kd for 1 epoch", ("--epochs", "1"), init_from_finetuned=True),
    "init-kd-3ep": Variant("as init-kd for 3 epochs", ("--epochs", "3"), init_from_finetuned=True),
    "init-kd-lr2e-5": Variant("as init-kd at learning rate 2e-5 (the fine-tuned weights move less)",
                              ("--epochs", "2", "--lr", "2e-5"), init_from_finetuned=True),
    "init-kd-t1": Variant("as init-kd at temperature 1", ("--epochs", "2", "--teacher-temperature", "1"),
                          init_from_finetuned=True),
    "init-kd-medium": Variant("as init-kd in the medium space (heads and units per layer)",
                              ("--epochs", "2", "--search-space", "medium"), init_from_finetuned=True),
    "init-kd-hidden": Variant("as init-kd, every pass also matching the teacher's last hidden states (mean squared "
                              "error over the real tokens, weight 1)", ("--epochs", "2", "--teacher-hidden-weight", "1"),
                              init_from_finetuned=True),
    "init-kd-sn-sentences": Variant("as init-kd, the super-network (not the fine-tuning it starts from) trained "
                                    "only on training examples of at least 10 words",
                                    ("--epochs", "2", "--min-train-words", "10"), init_from_finetuned=True),
    "current-kd": Variant("the CPU study's recipe with the fine-tuned model as frozen teacher",
                          ("--epochs", "3", "--init-from", "pretrained", "--teacher", "{finetuned}")),
}


# Retraining-free pruning of each seed's fine-tuned model, as is and with its Fisher information and rescaling
# computed on SST-2's sentence-like training examples (the data the sentence variants train on).
RFP_VARIANTS: dict[str, tuple[str, ...]] = {
    "rfp": (),
    "rfp-sentences": ("--min-train-words", "10"),
}


def _variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise SystemExit(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
    return VARIANTS[name]


def data_arguments(data_dir: str | None, min_train_words: int | None) -> tuple[str, ...]:
    """The data options of every training step (fine-tuning, RFP, super-network); searches read no training data."""
    return (*(("--data-dir", data_dir) if data_dir else ()),
            *(("--min-train-words", str(min_train_words)) if min_train_words is not None else ()))


def plan(root: Path, tasks: Sequence[str], seeds: Sequence[int], variants: Sequence[str], searchers: Sequence[str],
         data_args: Sequence[str] = (), rfp_variants: Sequence[str] = ("rfp",)) -> list[Step]:
    """The study's steps in run order (each fine-tuned model before what starts from it)."""
    steps: list[Step] = []
    for task in tasks:
        for seed in seeds:
            data = (*data_args, *TASK_DATA.get(task, ()))
            finetuned = root / "finetuned" / task / f"seed{seed}"
            steps.append(Step(f"finetune {task}/seed{seed}", (
                "finetune", "--task", task, "--seed", str(seed), "--epochs", "3", "--output-dir", str(finetuned),
                *data, *PROTOCOL), finetuned, resumable=True))
            for baseline in rfp_variants:
                rfp = root / "baselines" / task / baseline / f"seed{seed}"
                steps.append(Step(f"{baseline} {task}/seed{seed}", (
                    "prune", "--method", "rfp", "--finetuned", str(finetuned / "best_model"), "--task", task,
                    "--seed", str(seed), "--output-dir", str(rfp), "--budgets", "0.25", "0.5", "0.75",
                    "--max-valid-samples", "512", *MACS, *data, *RFP_VARIANTS[baseline]), rfp, resumable=False,
                    needs=finetuned))
            for name in variants:
                variant = _variant(name)
                supernet = root / "supernets" / name / task / f"seed{seed}"
                options = tuple(arg.replace("{finetuned}", str(finetuned / "best_model"))
                                for arg in variant.supernet_args)
                init = ("--init-from", str(finetuned / "best_model")) if variant.init_from_finetuned else ()
                needs = finetuned if variant.init_from_finetuned or "{finetuned}" in variant.supernet_args else None
                steps.append(Step(f"supernet {name} {task}/seed{seed}", (
                    "train-supernet", "--task", task, "--seed", str(seed), "--output-dir", str(supernet), *data,
                    *PROTOCOL, *init, *options), supernet, resumable=True, needs=needs))
                for searcher in searchers:
                    out = root / "weight-sharing" / name / task / searcher / f"seed{seed}"
                    steps.append(Step(f"search {name} {task}/{searcher}/seed{seed}", (
                        "search", "--supernet", str(supernet / "supernet"), "--searcher", searcher, "--seed",
                        str(seed), "--output-dir", str(out), "--num-samples", "100", "--max-valid-samples", "512",
                        "--run-id", f"{name}-{searcher}-{task}-seed{seed}", *MACS, *variant.search_args),
                        out, resumable=True, needs=supernet))
    return steps


def _finetuned_references(root: Path) -> pd.DataFrame:
    """Plain fine-tuning's test metrics per task and seed (every metric the task has)."""
    records = []
    for path in sorted(root.glob("finetuned/*/seed*/metrics.json")):
        metrics = json.loads(path.read_text())
        task, seed = path.parent.parent.name, int(path.parent.name[len("seed"):])
        records.append({"task": task, "seed": seed, **{f"test_{k}": v for k, v in metrics["test"].items()}})
    return pd.DataFrame.from_records(records)


def _method_of(path: Path, root: Path) -> str:
    """``rfp`` for ``baselines/TASK/rfp/seedS``, ``VARIANT-SEARCHER`` for ``weight-sharing/VARIANT/TASK/SEARCHER/seedS``."""
    parts = path.relative_to(root).parts
    return parts[2] if parts[0] == "baselines" else f"{parts[1]}-{parts[3]}"


def relative_table(root: Path) -> pd.DataFrame:
    """Relative test performance at 25/50/75% pruned of every finished run, per task, seed and method."""
    from plotting.relative import relative_performance

    references = _finetuned_references(root)
    frames = []
    for folder in ("baselines", "weight-sharing"):
        for path in sorted((root / folder).glob("**/seed*/results.csv")):
            if (path.parent / DONE_MARKER).is_file():
                frame = read_results(path)
                frames.append(frame.assign(method=_method_of(path.parent, root), run_id=str(path.parent)))
    if not frames or references.empty:
        return pd.DataFrame()
    rows = pd.concat(frames, ignore_index=True)
    parts = []
    for task, task_rows in rows.groupby("task"):
        metrics = [("main", task_rows)]
        if task in SECONDARY:
            metrics.append((SECONDARY[task], with_metric(task_rows, SECONDARY[task])))
        for metric, frame in metrics:
            for seed, seed_rows in frame.groupby("seed"):
                ref = references[(references["task"] == task) & (references["seed"] == seed)]
                if ref.empty:
                    continue
                value = float(ref[f"test_{metric}"].iloc[0])
                rel = relative_performance(seed_rows, FRACTIONS_PRUNED, "mac_fraction", reference=value)
                rel["task"], rel["metric"] = task, metric
                parts.append(rel)
    table = pd.concat(parts, ignore_index=True)
    return table[["task", "metric", "seed", "method", "fraction_pruned", "size", "performance",
                  "reference_performance", "relative_performance"]]


def summary_markdown(table: pd.DataFrame) -> str:
    """Mean relative performance (%) over seeds per task/metric and method, one column per fraction pruned, with
    the standard error where there are two seeds or more."""
    grouped = table.groupby(["task", "metric", "method", "fraction_pruned"])["relative_performance"]
    means = (grouped.mean() * 100).unstack("fraction_pruned")
    errors = (grouped.sem() * 100).unstack("fraction_pruned")
    counts = grouped.count().unstack("fraction_pruned").max(axis=1)
    lines = ["| task | metric | method | seeds | " + " | ".join(f"{f:.0%} pruned" for f in means.columns) + " |",
             "|---|---|---|---|" + "---|" * len(means.columns)]
    for key, row in means.iterrows():
        cells = " | ".join("—" if pd.isna(v) else f"{v:.1f}" if pd.isna(e) else f"{v:.1f} ± {e:.1f}"
                           for v, e in zip(row, errors.loc[key]))
        lines.append(f"| {' | '.join(key)} | {int(counts[key])} | {cells} |")
    return "\n".join(lines) + "\n"


def variant_of(method: str) -> str:
    """``init-kd`` for ``init-kd-random_search`` (searcher names have no hyphen), ``rfp`` for ``rfp``."""
    return method.rsplit("-", 1)[0] if "-" in method else method


def export_study(steps: Sequence[Step], root: Path, dest: Path, variants: Sequence[str], baselines: bool) -> None:
    """Copy the finished steps' small files (no weights) to ``dest`` (plain fine-tuning and RFP only with
    ``baselines``), with the relative-performance tables of ``variants`` and RFP and every step's wall clock.

    An earlier export in ``dest`` is added to, not replaced: its rows of other variants and steps stay."""
    baseline_steps = ("finetune ", *(f"{name} " for name in RFP_VARIANTS))
    chosen = [step for step in steps if baselines or not step.key.startswith(baseline_steps)]
    export_results(chosen, root, dest)
    table = relative_table(root)
    if not table.empty:
        table = table[table["method"].map(variant_of).isin([*variants, "rfp"])]
        table = _kept(dest / "relative.csv", table, lambda frame: frame["method"].map(variant_of))
        write_atomic(table, dest / "relative.csv")
        write_text_atomic(summary_markdown(table), dest / "relative.md")
    cost = _kept(dest / "cost.csv", cost_table(chosen), lambda frame: frame["step"])
    write_atomic(cost, dest / "cost.csv")


def _kept(path: Path, new: pd.DataFrame, key) -> pd.DataFrame:
    """``new`` with the rows of the table at ``path`` (if any) whose ``key`` (a function of a frame giving one
    value per row) ``new`` does not have."""
    if not path.is_file():
        return new
    old = pd.read_csv(path)
    old = old[~key(old).isin(set(key(new)))] if not new.empty else old
    return pd.concat([old, new], ignore_index=True) if not old.empty else new


def cost_table(steps: Sequence[Step]) -> pd.DataFrame:
    """The wall clock of every finished step (``timing.json``)."""
    records = []
    for step in steps:
        path = step.output_dir / TIMING_FILE
        if step.done and path.is_file():
            records.append({"step": step.key, "seconds": json.loads(path.read_text())["seconds"]})
    return pd.DataFrame.from_records(records, columns=["step", "seconds"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output-dir", required=True, type=Path)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--variants", nargs="+", default=["current", "init-kd"], choices=tuple(VARIANTS))
    parser.add_argument("--searchers", nargs="+", default=["random_search"])
    parser.add_argument("--rfp-variants", nargs="+", default=["rfp"], choices=tuple(RFP_VARIANTS),
                        help="retraining-free pruning as is (rfp) and/or on sentence-like examples (rfp-sentences)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--min-train-words", type=int, default=0, metavar="N",
                        help="every training step (fine-tuning, RFP, super-network) uses only training examples of "
                             "at least N words (SST-2's sentence-like ones; default 0: all, as the study was run, "
                             "whatever the commands' default); give it its own --output-dir")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of every step")
    parser.add_argument("--precision", default=None, help="passed to every step (default: the commands' default)")
    parser.add_argument("--summary", action="store_true", help="only write the summary of finished steps")
    parser.add_argument("--export", type=Path, default=None, metavar="DEST",
                        help="copy the finished steps' tables, metrics and logs (no weights) to DEST, then stop")
    parser.add_argument("--export-baselines", action=argparse.BooleanOptionalAction, default=True,
                        help="with --export: plain fine-tuning and RFP too (default: yes)")
    parser.add_argument("--keep-going", action="store_true")
    args = parser.parse_args(argv)
    steps = plan(args.output_dir, args.tasks, args.seeds, args.variants, args.searchers,
                 data_arguments(args.data_dir, args.min_train_words), args.rfp_variants)
    extra = (*(("--threads", str(args.threads)) if args.threads else ()),
             *(("--precision", args.precision) if args.precision else ()))
    if args.export is not None:
        export_study(steps, args.output_dir, args.export, args.variants, args.export_baselines)
        print(f"exported to {args.export}")
        return 0
    failed = []
    if not args.summary:
        for step in steps:
            if step.done:
                continue
            if step.needs is not None and not (step.needs / DONE_MARKER).is_file():
                failed.append(f"{step.key} (needs {step.needs})")
                continue
            print(f"run {step.key}", flush=True)
            code = run_step(step, extra_args=extra)
            print(f"{'ok' if code == 0 else 'FAILED'} {step.key}", flush=True)
            if code != 0:
                failed.append(step.key)
                if not args.keep_going:
                    break
    table = relative_table(args.output_dir)
    if not table.empty:
        write_atomic(table, args.output_dir / "relative.csv")
        markdown = summary_markdown(table)
        write_text_atomic(markdown, args.output_dir / "relative.md")
        print(markdown)
    write_atomic(cost_table(steps), args.output_dir / "cost.csv")
    for line in failed:
        print(f"failed: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
