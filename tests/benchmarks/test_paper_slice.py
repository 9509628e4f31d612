"""The GPU slice (benchmarks/gpu_slice.sh): its plan, its scheduler, and its CPU dry run end to end."""
from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import pandas as pd

from benchmarks.cli import run_command
from benchmarks.commands.experiments import DONE_MARKER, Step
from benchmarks.grids import paper_slice
from benchmarks.grids.paper_slice import (
    DRY_RUN,
    L12_MODEL,
    PAPER_SLICE,
    SPEED_MODULE,
    ModuleStep,
    plan,
    run_module_step,
    run_parallel,
)
from benchmarks.perf.speed import CSV_COLUMNS
from benchmarks.results import COLUMNS


def _option(step: Step, name: str) -> str:
    return step.command[len(step.command) - 1 - step.command[::-1].index(name) + 1]  # the last one wins


def test_plan_has_the_papers_budgets():
    steps = plan(PAPER_SLICE, Path("/r"))
    kinds = pd.Series([s.key.split()[0] for s in steps]).value_counts().to_dict()
    # MiniLM: 4 tasks x 3 seeds super-networks, 2 searches each; rfp on a fine-tuned model per task and seed;
    # MO-ASHA on RTE and MRPC; the 12-layer model on 3 tasks x 3 seeds; speed in fp32 and bf16 for both models
    assert kinds == {"supernet": 12 + 9, "search": 24 + 9, "finetune": 12, "prune": 12, "nas": 6, "speed": 4}
    for step in steps:
        if step.key.startswith(("supernet", "finetune")):
            assert _option(step, "--epochs") == "5" and "--max-train-samples" not in step.command
            assert _option(step, "--batch-size") == ("64" if "sst2" in step.key else "32")
            assert _option(step, "--device") == "cuda"
        if step.key.startswith("search"):
            assert _option(step, "--num-samples") == "100" and _option(step, "--size-objective") == "mac_fraction"
    assert steps[0].key == "speed minilm-float32" and isinstance(steps[0], ModuleStep)
    assert {s.key for s in steps if "l12" in s.key} >= {f"supernet rte/{L12_MODEL}/small/sandwich/seed2"}
    assert len({s.output_dir for s in steps}) == len(steps)
    assert not any("l12" in s.key for s in plan(PAPER_SLICE, Path("/r"), with_l12=False))


def test_scheduler_runs_steps_in_parallel_after_what_they_need(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    steps = [Step("a", ("x",), a, True), Step("b", ("x",), b, True), Step("a2", ("x",), tmp_path / "a2", True, needs=a),
             Step("bad", ("x",), tmp_path / "bad", True), Step("after-bad", ("x",), tmp_path / "c", True,
                                                                  needs=tmp_path / "bad")]
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / DONE_MARKER).write_text("")
    steps.append(Step("earlier", ("x",), tmp_path / "done", True))
    running, most = set(), [0]
    lock = threading.Lock()

    def runner(step, env):
        with lock:
            assert step.needs is None or (step.needs / DONE_MARKER).is_file()
            running.add(step.key)
            most[0] = max(most[0], len(running))
        time.sleep(0.2)
        with lock:
            running.discard(step.key)
        if step.key == "bad":
            return 3
        step.output_dir.mkdir(exist_ok=True)
        (step.output_dir / DONE_MARKER).write_text("")
        return 0

    outcomes = run_parallel(steps, 2, runner=runner, echo=lambda line: None)
    assert [o.status for o in outcomes] == ["ok", "ok", "ok", "failed", "skipped", "done"]
    assert most[0] == 2


def _in_process(step: Step, env) -> int:
    """``plm-nas`` steps in this process (no interpreter start per step); the speed steps as the slice runs them."""
    if isinstance(step, ModuleStep) and step.module == SPEED_MODULE:
        return run_module_step(step, env)
    step.output_dir.mkdir(parents=True, exist_ok=True)
    code = run_command([*step.command, *(() if step.command[0] == "report" else ("--no-progress",))])
    if code == 0:
        (step.output_dir / DONE_MARKER).write_text("")
    return code


def test_dry_run_writes_the_tables(tmp_path, glue_dir, tiny_bert_dir):
    """The CPU dry run end to end (one task, a tiny model in MiniLM's place): every table, with its columns."""
    out = tmp_path / "slice"
    parser = argparse.ArgumentParser()
    paper_slice.add_arguments(parser)
    args = parser.parse_args(["--output-dir", str(out), "--data-dir", str(glue_dir), "--dry-run", "--tasks", "rte",
                              "--model", str(tiny_bert_dir), "--no-l12", "--jobs", "1"])
    assert paper_slice.run(args, runner=_in_process) == 0
    steps = pd.read_csv(out / "steps.csv")
    assert set(steps["status"]) == {"ok"} and len(steps) == len(plan(DRY_RUN, out, tasks=["rte"], with_l12=False)) + 1
    results = pd.read_csv(out / "all_results.csv")
    assert list(results.columns) == list(COLUMNS)
    methods = set(zip(results["kind"], results["method"]))
    assert methods == {("weight-sharing", "nsga2"), ("weight-sharing", "random_search"), ("standard", "moasha"),
                       ("baseline", "rfp")}
    sizes = results.groupby(["kind", "method"]).size()
    assert sizes["weight-sharing", "nsga2"] == 4 and sizes["standard", "moasha"] >= 1  # 4 samples; 2 trials at most
    assert set(results["task"]) == {"rte"} and results["test_error"].notna().any()
    for name in ("weight-sharing/rte", "standard/rte", "baselines/rte"):
        assert list((out / name).rglob("results.csv")), name
    tag = tiny_bert_dir.name
    for dtype in DRY_RUN.speed_dtypes:
        speed = pd.read_csv(out / "speed" / f"{tag}-{dtype}.csv")
        assert list(speed.columns) == list(CSV_COLUMNS) and len(speed) == 4 * 3  # 4 sub-networks x 3 ways
        assert set(speed["dtype"]) == {dtype} and (speed["examples_per_s"] > 0).all()
    assert (out / "report" / tag / "report.md").is_file()
