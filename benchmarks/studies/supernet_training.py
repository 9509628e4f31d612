"""Does weight-sharing training give good sub-networks at the budget of plain fine-tuning? One task, end to end.

``python -m benchmarks.studies.supernet_training --task stsb --output-dir runs/supernet-study`` runs, skipping steps
whose outputs exist (so an interrupted study resumes):

1. plain fine-tuning of MiniLM (``finetune``), the reference and the pruning baselines' starting point;
2. a super-network with the default recipe (``train-supernet``), same data, epochs and learning rate;
3. a 100-sample weight-sharing random search on it (``search``, size = fraction of MACs);
4. layer dropping and retraining-free pruning at 50% of the MACs from the fine-tuned model (``prune``);

then writes ``summary.json``: test metric of plain fine-tuning and of the super-network's full network, and
at 50% of the MACs the test metric of each method's best-validation model, relative to plain fine-tuning.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

# Per task: the training data of the CPU protocol (cpu-protocol.md).
TRAIN_SAMPLES: dict[str, list[str]] = {"sst2": ["--max-train-samples", "5000"]}
BUDGET = 0.5


def _step(name: str, done: Path, argv: list[str], log: Path, timings: dict[str, float]) -> None:
    """Run ``python -m benchmarks.cli ARGV`` unless ``done`` exists; its output goes to ``log``."""
    if done.exists():
        print(f"[{name}] done before: {done}", flush=True)
        return
    print(f"[{name}] plm-nas {' '.join(argv)}", flush=True)
    started = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.call([sys.executable, "-m", "benchmarks.cli", *argv], stdout=out, stderr=subprocess.STDOUT)
    if code != 0:
        raise SystemExit(f"[{name}] failed with exit code {code}; see {log}")
    timings[name] = round(time.perf_counter() - started, 1)


def best_under(results: Path, budget: float, size: str = "mac_fraction") -> dict[str, Any] | None:
    """The row with the lowest validation error among those of size <= ``budget`` (ties: smaller).

    The budget has a slack of 0.001: half the layers is 0.50005 of the MACs once the task head counts.
    """
    frame = pd.read_csv(results)
    frame = frame[(frame[size] <= budget + 1e-3) & frame["test_error"].notna()]
    if frame.empty:
        return None
    row = frame.sort_values(["valid_error", size]).iloc[0]
    config = row["config"] if len(str(row["config"])) <= 200 else "(masks: see the results table)"
    return {"config": config, size: float(row[size]), "valid_metric": 1 - float(row["valid_error"]),
            "test_metric": 1 - float(row["test_error"])}


def summarise(out: Path, task: str) -> dict[str, Any]:
    """Test metrics of every method at the budget, relative to plain fine-tuning's."""
    plain = json.loads((out / "finetune" / "metrics.json").read_text())
    supernet = json.loads((out / "supernet" / "metrics.json").read_text())
    reference = float(plain["test"]["main"])
    summary: dict[str, Any] = {
        "task": task, "budget_mac_fraction": BUDGET,
        "finetune": {"test": plain["test"], "valid": plain["valid"], "best_epoch": plain["best_epoch"]},
        "supernet_full": {"test_metric": supernet["test"]["test_full_main"],
                          "relative": supernet["test"]["test_full_main"] / reference},
        "supernet_probes_test": {key: value for key, value in supernet["test"].items() if key.endswith("_main")},
        "constant_test": supernet["constant"]["test"]["main"],
    }
    for name, folder in (("ws_random_search", "search"), ("layer_drop", "layer-drop"), ("rfp", "rfp")):
        best = best_under(out / folder / "results.csv", BUDGET)
        if best is not None:
            best["relative"] = best["test_metric"] / reference
        summary[name] = best
    timings = out / "timings.json"
    summary["seconds"] = json.loads(timings.read_text()) if timings.exists() else {}
    return summary


def _cell(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "—"
    return f"{entry['test_metric']:.3f} ({entry['relative']:.3f})"


def results_table(folder: Path) -> str:
    """Markdown table of every ``TASK/summary.json`` below ``folder``: test metric (relative to fine-tuning)."""
    lines = [
        "| task (test metric) | constant predictor | plain fine-tuning | super-network, full | "
        "WS search, best at <= 50% MACs | layer dropping, 50% | RFP, 50% |",
        "|---|---|---|---|---|---|---|",
    ]
    for path in sorted(folder.glob("*/summary.json")):
        summary = json.loads(path.read_text())
        lines.append(
            f"| {summary['task']} | {summary['constant_test']:.3f} | {summary['finetune']['test']['main']:.3f} | "
            f"{summary['supernet_full']['test_metric']:.3f} ({summary['supernet_full']['relative']:.3f}) | "
            f"{_cell(summary['ws_random_search'])} | {_cell(summary['layer_drop'])} | {_cell(summary['rfp'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", help="run the study on this task")
    parser.add_argument("--table", action="store_true", help="print the Markdown table of every task's summary")
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--num-samples", type=int, default=100)
    parser.add_argument("--supernet-args", default="", help="extra train-supernet arguments, space-separated")
    args = parser.parse_args(argv)
    if args.table:
        print(results_table(args.output_dir))
        return 0
    if not args.task:
        parser.error("--task is required unless --table is given")
    out = args.output_dir / args.task
    out.mkdir(parents=True, exist_ok=True)
    data_dir = ["--data-dir", args.data_dir] if args.data_dir else []
    data = ["--task", args.task, *data_dir, *TRAIN_SAMPLES.get(args.task, [])]
    common = [*data, "--max-valid-samples", "512", "--threads", str(args.threads), "--no-progress"]
    train = ["--epochs", str(args.epochs), "--lr", str(args.lr)]
    timings_file = out / "timings.json"
    timings: dict[str, float] = json.loads(timings_file.read_text()) if timings_file.exists() else {}
    try:
        _step("finetune", out / "finetune" / "metrics.json",
              ["finetune", *common, *train, "--output-dir", str(out / "finetune")], out / "finetune.log", timings)
        _step("supernet", out / "supernet" / "metrics.json",
              ["train-supernet", *common, *train, *args.supernet_args.split(), "--output-dir", str(out / "supernet")],
              out / "supernet.log", timings)
        _step("search", out / "search" / "results.csv",
              ["search", "--supernet", str(out / "supernet"), "--searcher", "random_search", "--num-samples",
               str(args.num_samples), "--size-objective", "mac_fraction", "--max-valid-samples", "512", "--threads",
               str(args.threads), "--no-progress", "--output-dir", str(out / "search")], out / "search.log", timings)
        finetuned = str(out / "finetune" / "best_model")
        _step("layer-drop", out / "layer-drop" / "results.csv",
              ["prune", "--method", "layer-drop", "--finetuned", finetuned, *common, "--layers-dropped", "3",
               "--epochs", "1", "--lr", str(args.lr), "--output-dir", str(out / "layer-drop")],
              out / "layer-drop.log", timings)
        _step("rfp", out / "rfp" / "results.csv",
              ["prune", "--method", "rfp", "--finetuned", finetuned, *common, "--budgets", str(BUDGET),
               "--output-dir", str(out / "rfp")], out / "rfp.log", timings)
    finally:
        timings_file.write_text(json.dumps(timings, indent=2) + "\n")
    summary = summarise(out, args.task)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
