"""The experiment grids expand to the right steps, skip finished ones and resume unfinished ones."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.commands import experiments
from benchmarks.commands.experiments import (
    CPU_GRID,
    CPU_STUDY,
    DONE_MARKER,
    MANIFEST_FILE,
    PAPER_GRID,
    Step,
    expand,
    export_results,
    get_grid,
    manifest,
    restrict,
    run_step,
)
from benchmarks.grids import runner


def test_cpu_grid_has_three_seeds_three_searchers_both_kinds():
    steps = expand(CPU_GRID, Path("/r"))
    supernets = [s for s in steps if s.command[0] == "train-supernet"]
    searches = [s for s in steps if s.command[0] == "search"]
    nas = [s for s in steps if s.command[0] == "nas"]
    # 2 tasks x 3 seeds super-networks, each searched by 3 searchers; 2 tasks x 3 searchers x 3 seeds standard NAS
    assert (len(supernets), len(searches), len(nas)) == (6, 18, 18)
    for search in searches:
        assert search.needs is not None and search.needs in {s.output_dir for s in supernets}
        assert steps.index(search) > steps.index(next(s for s in supernets if s.output_dir == search.needs))
    assert len({s.output_dir for s in steps}) == len(steps)  # no two steps share a folder


def test_paper_grid_size_and_budgets():
    grid = PAPER_GRID
    steps = expand(grid, Path("/r"), kinds=("nas",))
    assert len(steps) == 8 * 2 * 4 * 8 * 10
    budgets = {s.command[s.command.index("--task") + 1]: s.command[s.command.index("--max-wallclock") + 1]
               for s in steps}
    assert budgets["rte"] == "7200" and budgets["sst2"] == "14400"


def test_restrict_and_unknown_grid():
    grid = restrict(CPU_GRID, tasks=["stsb"], seeds=[5])
    assert grid.tasks == ("stsb",) and grid.seeds == (5,) and grid.models == CPU_GRID.models
    with pytest.raises(ValueError, match="unknown grid 'nope'; choose from paper, cpu, cpu-study"):
        get_grid("nope")


def _args(out: Path) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    experiments.add_arguments(parser)
    return parser.parse_args(["--output-dir", str(out), "--tasks", "rte", "--seeds", "0", "--ws-searchers",
                              "random_search", "--nas-searchers", "random_search", "--no-progress"])


def _steps(out: Path) -> list[Step]:
    """The steps that ``_args(out)`` runs: RTE's super-network, its random search, and standard NAS."""
    return expand(restrict(CPU_GRID, tasks=["rte"], seeds=[0], ws_searchers=["random_search"],
                           nas_searchers=["random_search"]), out)


class _Finished:
    """A subprocess.Popen stand-in that has already exited with ``code``."""

    def __init__(self, code: int):
        self.code = code

    def wait(self, timeout=None) -> int:
        return self.code


def test_runner_skips_done_steps_and_resumes_unfinished(tmp_path, monkeypatch):
    calls: list[list[str]] = []
    fail_on: set[str] = set()

    def fake_popen(cmd, stdout=None, stderr=None, env=None):
        calls.append(cmd[3:])
        return _Finished(1 if cmd[3] in fail_on else 0)

    monkeypatch.setattr(subprocess, "Popen", fake_popen)
    # the standard NAS step fails: the grid reports failure, the others are marked done
    fail_on.add("nas")
    assert experiments.run(_args(tmp_path)) == 1
    assert [c[0] for c in calls] == ["train-supernet", "search", "nas"]
    # the grid's root says what the grid is (the whole grid's manifest, not the restricted one), for the report
    # and the one precision every step ran in (here --precision auto, decided for this machine)
    recorded = json.loads((tmp_path / MANIFEST_FILE).read_text())
    assert recorded == {**json.loads(json.dumps(manifest(CPU_GRID))), "precision": recorded["precision"]}
    assert recorded["precision"] in ("fp32", "bf16")
    assert all(call[call.index("--precision") + 1] == recorded["precision"] for call in calls)
    steps = _steps(tmp_path)
    assert [s.done for s in steps] == [True, True, False]
    # a rerun only runs the unfinished step, and continues it (standard NAS resumes on both backends)
    calls.clear()
    fail_on.clear()
    assert experiments.run(_args(tmp_path)) == 0
    precision = ["--precision", recorded["precision"]]
    assert calls == [[*steps[2].command, *precision, "--resume", "--no-progress"]] and steps[2].done
    # a non-resumable step restarts from an empty folder
    fresh = replace(steps[2], resumable=False, output_dir=tmp_path / "fresh")
    (fresh.output_dir / "stale.txt").parent.mkdir()
    (fresh.output_dir / "stale.txt").write_text("x")
    calls.clear()
    assert run_step(fresh) == 0
    assert calls == [[*fresh.command, "--no-progress"]] and not (fresh.output_dir / "stale.txt").exists()
    # an unfinished resumable step is continued with --resume
    (steps[1].output_dir / DONE_MARKER).unlink()
    calls.clear()
    assert experiments.run(_args(tmp_path)) == 0
    assert calls == [[*steps[1].command, *precision, "--resume", "--no-progress"]]


_HOLD_LOCK = """
import fcntl, sys, time
handle = open(sys.argv[1], "a")
fcntl.flock(handle, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="steps are locked with fcntl, on POSIX only")
def test_two_grid_processes_never_run_the_same_step(tmp_path, monkeypatch, capsys):
    steps = _steps(tmp_path)
    # another grid process is running the standard NAS step: a real process holding that step's lock
    runner.lock_path(steps[2].output_dir).parent.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(runner.lock_path(steps[2].output_dir))],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        calls: list[str] = []
        monkeypatch.setattr(subprocess, "Popen", lambda cmd, **kwargs: calls.append(cmd[3]) or _Finished(0))
        with pytest.raises(runner.StepBusy, match="being run by another process"):
            run_step(steps[2])
        # the busy step is left to its process: not a failure of this one (two workers both end with 0)
        assert experiments.run(_args(tmp_path)) == 0
        assert calls == ["train-supernet", "search"] and not steps[2].output_dir.exists()
        err = capsys.readouterr().err
        assert f"left to another process: {steps[2].key}" in err and "failed" not in err
    finally:
        holder.kill()
        holder.wait()
    # the operating system drops a killed holder's lock: the step runs now
    calls.clear()
    assert experiments.run(_args(tmp_path)) == 0
    assert calls == ["nas"] and steps[2].done


def test_a_step_finished_by_another_process_meanwhile_is_not_run_again(tmp_path, monkeypatch, capsys):
    steps = _steps(tmp_path)
    calls: list[str] = []

    def fake_popen(cmd, **kwargs):
        calls.append(cmd[3])
        if cmd[3] == "train-supernet":  # meanwhile, another grid process finishes the standard NAS step
            steps[2].output_dir.mkdir(parents=True)
            (steps[2].output_dir / DONE_MARKER).write_text("x")
        return _Finished(0)

    monkeypatch.setattr(subprocess, "Popen", fake_popen)
    assert experiments.run(_args(tmp_path)) == 0
    assert calls == ["train-supernet", "search"]
    assert f"done {steps[2].key} (finished meanwhile by another process)" in capsys.readouterr().out
    # run_step itself re-checks under the lock, for callers that looked earlier
    assert run_step(steps[2]) == 0 and calls == ["train-supernet", "search"]
    assert not (steps[2].output_dir / "timing.json").exists()


@pytest.mark.parametrize("grid", [CPU_GRID, PAPER_GRID, CPU_STUDY], ids=lambda g: g.name)
def test_every_step_command_parses_with_its_subcommand(grid):
    from benchmarks.cli import COMMANDS, build_parser

    parsers = {}
    for step in expand(restrict(grid, seeds=[0]), Path("/r"), data_args=("--data-dir", "/glue")):
        name = step.command[0]
        parser = parsers.setdefault(name, build_parser(name, COMMANDS[name]))
        extra = ["--resume", "--no-progress"] if step.resumable else ["--no-progress"]
        args = parser.parse_args([*step.command[1:], *extra])
        assert str(args.output_dir) == str(step.output_dir)


def test_hub_models_with_the_same_base_name_get_their_own_folders():
    grid = restrict(CPU_GRID, models=["org-a/bert", "org-b/bert"], tasks=["rte"], seeds=[0])
    folders = {str(s.output_dir) for s in expand(grid, Path("/r"), kinds=("nas",))}
    assert any("/org-a-bert/" in f for f in folders) and any("/org-b-bert/" in f for f in folders)


def test_cpu_study_steps_per_kind_and_the_stsb_comparisons():
    steps = expand(CPU_STUDY, Path("/r"))
    by_command: dict[str, list] = {}
    for step in steps:
        by_command.setdefault(step.command[0], []).append(step)
    # 3 tasks x 3 seeds sandwich/small super-networks, plus on STS-B 5 more strategies and 3 more spaces per seed
    assert len(by_command["train-supernet"]) == 3 * 3 + (5 + 3) * 3
    # 5 searchers on each main super-network, random search on each comparison one
    assert len(by_command["search"]) == 3 * 3 * 5 + (5 + 3) * 3
    assert len(by_command["nas"]) == 3 * 2 * 3
    assert len(by_command["finetune"]) == 3 * 3 and len(by_command["prune"]) == 3 * 3 * 3
    assert len({s.output_dir for s in steps}) == len(steps)
    # SST-2 trains on its 5,000-example subsample in every kind of step; STS-B and MRPC on their whole split
    for step in steps:
        if step.command[0] != "search":
            task = step.command[step.command.index("--task") + 1]
            assert ("--max-train-samples" in step.command) == (task == "sst2"), step.key
    # every pruning run starts from the fine-tuned model of its task and seed, which runs first
    for prune in by_command["prune"]:
        assert prune.needs is not None and steps.index(prune) > steps.index(
            next(s for s in steps if s.output_dir == prune.needs))
        assert str(prune.needs / "best_model") in prune.command
    # both standard-NAS searchers of a task get the same wall-clock budget
    budgets = {(s.command[s.command.index("--task") + 1], s.command[s.command.index("--max-wallclock") + 1])
               for s in by_command["nas"]}
    assert budgets == {("stsb", "1800"), ("sst2", "1800"), ("mrpc", "1800")}


def test_the_study_manifest_names_its_main_runs_and_comparisons():
    study = manifest(CPU_STUDY)
    assert study["main"] == {"strategy": ["sandwich"], "search_space": ["small"]}
    strategies, spaces = study["comparisons"]
    assert strategies == {"factor": "strategy", "fixed": {"search_space": ["small"]}, "tasks": ["stsb"],
                          "searchers": ["random_search"],
                          "values": ["standard", "random", "linear_random", "sandwich", "kd", "full"]}
    assert (spaces["factor"], spaces["values"], spaces["fixed"]) == (
        "search_space", ["small", "layer", "medium", "large"], {"strategy": ["sandwich"]})
    assert manifest(CPU_GRID)["comparisons"] == []


def test_restricting_a_study_narrows_its_comparison_parts():
    only_sst2 = expand(restrict(CPU_STUDY, tasks=["sst2"], seeds=[0]), Path("/r"), kinds=("ws",))
    assert {s.command[0] for s in only_sst2} == {"train-supernet", "search"} and len(only_sst2) == 1 + 5
    kd = expand(restrict(CPU_STUDY, tasks=["stsb"], seeds=[1], strategies=["kd"]), Path("/r"), kinds=("ws",))
    # the main part takes kd as its strategy; the strategy comparison keeps kd only; the space comparison
    # (sandwich only) is dropped
    assert sorted({s.command[s.command.index("--strategy") + 1] for s in kd if s.command[0] == "train-supernet"}) \
        == ["kd"]
    with pytest.raises(TypeError, match="unknown grid factors"):
        restrict(CPU_STUDY, colour=["red"])
    with pytest.raises(ValueError, match="unknown step kinds"):
        expand(CPU_STUDY, Path("/r"), kinds=("train",))


def test_list_says_how_much_of_the_grid_is_done_and_what_will_resume(tmp_path, capsys):
    steps = expand(restrict(CPU_STUDY, tasks=["mrpc"], seeds=[0]), tmp_path, kinds=("prune",))
    steps[0].output_dir.mkdir(parents=True)
    (steps[0].output_dir / DONE_MARKER).write_text("x")
    steps[1].output_dir.mkdir(parents=True)  # started, not finished
    assert experiments.progress_summary(steps) == (
        "1 of 4 steps done (finetune 1/1, prune 0/3); 1 started ([part]: resumed or restarted by the next run)")
    parser = argparse.ArgumentParser()
    experiments.add_arguments(parser)
    args = parser.parse_args(["--grid", "cpu-study", "--output-dir", str(tmp_path), "--tasks", "mrpc", "--seeds", "0",
                              "--kinds", "prune", "--list"])
    assert experiments.run(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line[:6] for line in lines[:4]] == ["[done]", "[part]", "[    ]", "[    ]"]
    assert lines[-1].startswith("1 of 4 steps done")


class _Killed(BaseException):
    """What a SIGKILL of the grid would be, at the moment it is raised."""


def test_a_killed_steps_time_still_counts_when_it_resumes(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "HEARTBEAT_S", 0.05)
    step = expand(restrict(CPU_STUDY, tasks=["mrpc"], seeds=[0]), tmp_path, kinds=("prune",))[0]
    timing_file = step.output_dir / "timing.json"
    left_by_kill: dict = {}

    class Running:
        """Runs for three heartbeats; then the grid is killed: what timing.json holds then is all that is left."""

        waits = 0

        def wait(self, timeout=None) -> int:
            self.waits += 1
            if self.waits <= 3:
                time.sleep(timeout)
                raise subprocess.TimeoutExpired("plm-nas", timeout)
            left_by_kill.update(json.loads(timing_file.read_text()))
            raise _Killed

    monkeypatch.setattr(subprocess, "Popen", lambda *args, **kwargs: Running())
    with pytest.raises(_Killed):
        run_step(step)
    assert left_by_kill["running"] and left_by_kill["attempts"] == 1 and left_by_kill["seconds"] >= 0.1
    assert not step.done
    monkeypatch.setattr(subprocess, "Popen", lambda *args, **kwargs: _Finished(0))
    assert run_step(step) == 0 and step.done
    timing = json.loads(timing_file.read_text())
    assert timing["attempts"] == 2 and timing["exit_code"] == 0 and "running" not in timing
    assert timing["seconds"] >= left_by_kill["seconds"]


def test_timing_threads_and_export_of_finished_steps(tmp_path, monkeypatch):
    calls: list[list[str]] = []

    def fake_popen(cmd, stdout=None, stderr=None, env=None):
        calls.append(cmd[3:])
        out = Path(cmd[cmd.index("--output-dir") + 1])
        (out / "results.csv").write_text("run_id\nx\n")
        (out / "best_model").mkdir()
        (out / "best_model" / "model.safetensors").write_bytes(b"\0" * 10)
        (out / "best_model" / "config.json").write_text("{}")  # a saved model's settings stay with it
        return _Finished(0)

    monkeypatch.setattr(subprocess, "Popen", fake_popen)
    root = tmp_path / "grid"
    steps = expand(restrict(CPU_STUDY, tasks=["mrpc"], seeds=[0]), root, kinds=("prune",))
    assert run_step(steps[0], extra_args=("--threads", "1")) == 0
    assert calls[0][-3:] == ["--threads", "1", "--no-progress"]
    timing = json.loads((steps[0].output_dir / "timing.json").read_text())
    assert timing["attempts"] == 1 and timing["exit_code"] == 0 and timing["seconds"] >= 0
    dest = tmp_path / "export"
    copied = export_results(steps, root, dest)
    relative = sorted(str(p.relative_to(dest)) for p in copied)
    base = "finetuned/mrpc/minilm/seed0"
    assert relative == [f"{base}/DONE", f"{base}/log.txt", f"{base}/results.csv", f"{base}/timing.json"]
    # the command's export adds the grid's manifest beside the finished steps
    parser = argparse.ArgumentParser()
    experiments.add_arguments(parser)
    export = tmp_path / "export2"
    assert experiments.run(parser.parse_args(["--grid", "cpu-study", "--output-dir", str(root), "--tasks", "mrpc",
                                              "--seeds", "0", "--kinds", "prune", "--export-results",
                                              str(export)])) == 0
    assert json.loads((export / MANIFEST_FILE).read_text())["grid"] == "cpu-study"
    assert (export / base / "results.csv").is_file()


def test_export_gzips_a_results_table_over_the_size_limit(tmp_path, monkeypatch):
    import pandas as pd

    from benchmarks.grids import runner
    from benchmarks.results import COLUMNS, read_results

    step = expand(restrict(CPU_STUDY, tasks=["mrpc"], seeds=[0]), tmp_path / "grid", kinds=("prune",))[0]
    step.output_dir.mkdir(parents=True)
    (step.output_dir / DONE_MARKER).write_text("x")
    table = pd.DataFrame([{c: 1 for c in COLUMNS} | {"run_id": "r", "kind": "baseline", "method": "m",
                                                     "task": "mrpc", "config": "{}"}]).to_csv(index=False)
    (step.output_dir / "results.csv").write_text(table)
    (step.output_dir / "big.json").write_text("x" * 100)
    monkeypatch.setattr(runner, "EXPORT_MAX_BYTES", 50)
    copied = export_results([step], tmp_path / "grid", tmp_path / "export")
    names = sorted(p.name for p in copied)
    # the table comes gzipped (never left behind); another large file stays behind
    assert names == ["DONE", "results.csv.gz"]
    # no timestamp in the gzip header (bytes 4-8): exporting the same table again leaves the committed file as it is
    packed = next(p for p in copied if p.name == "results.csv.gz").read_bytes()
    assert packed[4:8] == bytes(4)
    exported = read_results(tmp_path / "export")
    original = read_results(step.output_dir / "results.csv")
    assert exported.equals(original) and len(exported) == len(original) >= 1


def test_a_searcher_grid_searches_fixed_super_networks_with_many_seeds(tmp_path):
    """``supernet_seeds``: each super-network is trained once and searched by every searcher with every seed; the
    second super-network's part has fewer seeds; every search has its own folder and run id."""
    from benchmarks.grids import get_grid

    steps = expand(restrict(get_grid("searchers"), tasks=["mrpc"]), tmp_path)
    supernets = [s for s in steps if s.command[0] == "train-supernet"]
    searches = [s for s in steps if s.command[0] == "search"]
    assert [s.command[s.command.index("--seed") + 1] for s in supernets] == ["0", "1"]
    assert len(searches) == 7 * 10 + 7 * 5
    run_ids = [s.command[s.command.index("--run-id") + 1] for s in searches]
    assert len(set(run_ids)) == len(searches) and len({s.output_dir for s in searches}) == len(searches)
    first = searches[0]
    assert first.needs == supernets[0].output_dir and first.output_dir.parts[-2:] == ("supernet0", "seed0")
    assert "ws-sandwich-random_search-small-mrpc-supernet0-seed0" in run_ids
    assert all(s.needs == supernets[1].output_dir for s in searches if "supernet1" in str(s.output_dir))


def test_super_networks_can_start_from_the_grids_plain_fine_tuning(tmp_path):
    """``supernet_from_finetuned``: each super-network starts (``--init-from``) from the fine-tuning of its task, model
    and seed, which the grid runs first."""
    from dataclasses import replace as replace_grid

    grid = replace_grid(restrict(CPU_GRID, tasks=["rte"], seeds=[0, 1], ws_searchers=["random_search"]),
                        kinds=("ws", "prune"), prune_methods={}, supernet_from_finetuned=True)
    steps = expand(grid, tmp_path)
    assert [s.command[0] for s in steps][:2] == ["finetune", "finetune"]
    finetuned = {s.command[s.command.index("--seed") + 1]: s.output_dir for s in steps if s.command[0] == "finetune"}
    for step in (s for s in steps if s.command[0] == "train-supernet"):
        seed = step.command[step.command.index("--seed") + 1]
        assert step.needs == finetuned[seed]
        assert step.command[step.command.index("--init-from") + 1] == str(finetuned[seed] / "best_model")


def test_recipe_super_networks_bring_their_fine_tuning_with_any_kinds():
    """``--kinds ws`` alone on a grid whose super-networks start from plain fine-tuning still runs that fine-tuning
    first (once per task and seed), so no super-network waits for a step outside the plan."""
    from benchmarks.grids.definitions import RECIPE_GRID

    grid = restrict(RECIPE_GRID, tasks=["mrpc"], seeds=[0])
    steps = expand(grid, Path("/r"), kinds=("ws",))
    keys = [step.key for step in steps]
    assert keys[:2] == ["finetune mrpc/minilm/seed0", "supernet mrpc/minilm/small/sandwich/seed0"]
    assert keys.count("finetune mrpc/minilm/seed0") == 1
    planned = {step.output_dir for step in steps}
    assert all(step.needs is None or step.needs in planned for step in steps)
    # with the pruning kind too, the fine-tuning is still expanded once
    both = [step.key for step in expand(grid, Path("/r"))]
    assert both.count("finetune mrpc/minilm/seed0") == 1 and both[0] == "finetune mrpc/minilm/seed0"


def _begin(step: Step, precision: str | None, done: bool = True) -> None:
    """Put a begun step in place, as copied from another grid: its run.json (with ``precision`` unless None)."""
    step.output_dir.mkdir(parents=True, exist_ok=True)
    record = {"command_name": step.key.split()[0], **({"precision": precision} if precision else {})}
    (step.output_dir / "run.json").write_text(json.dumps(record))
    if done:
        (step.output_dir / DONE_MARKER).write_text("x")


def test_a_grid_without_a_manifest_keeps_the_precision_its_begun_steps_ran_in(tmp_path, monkeypatch):
    calls: list[list[str]] = []

    def fake_popen(cmd, stdout=None, stderr=None, env=None):
        calls.append(cmd[3:])
        return _Finished(0)

    monkeypatch.setattr(subprocess, "Popen", fake_popen)
    steps = _steps(tmp_path)
    # a super-network trained in bf16 elsewhere, put into a fresh grid: its search runs in bf16 too, recorded
    _begin(steps[0], "bf16")
    assert experiments.recorded_grid_precision(tmp_path, steps) == "bf16"
    assert experiments.run(_args(tmp_path)) == 0
    assert [call[call.index("--precision") + 1] for call in calls] == ["bf16", "bf16"]
    assert json.loads((tmp_path / MANIFEST_FILE).read_text())["precision"] == "bf16"
    # --precision fp32 on it is refused (the manifest now says bf16), like a resumed run's
    args = _args(tmp_path)
    args.precision = "fp32"
    with pytest.raises(ValueError, match="ran in bf16"):
        experiments.run(args)


def test_begun_steps_in_different_precisions_are_refused(tmp_path):
    steps = _steps(tmp_path)
    # a step run before mixed precision records none: fp32
    _begin(steps[0], None)
    assert experiments.recorded_grid_precision(tmp_path, steps) == "fp32"
    _begin(steps[1], "bf16", done=False)
    with pytest.raises(ValueError, match=r"different precisions \(bf16: search .*; fp32: supernet"):
        experiments.recorded_grid_precision(tmp_path, steps)
    assert experiments.recorded_grid_precision(tmp_path / "empty", steps[:0]) is None


@pytest.mark.parametrize("name", ["cpu-study", "precision", "searchers", "recipe"])
def test_grids_keep_the_training_examples_they_were_run_with(tmp_path, name):
    """SST-2's super-networks now train on its sentence-like examples by default; the grids run before keep every
    example (``--min-train-words 0``), the recipe grid takes the command's default."""
    from benchmarks.grids import get_grid

    steps = expand(restrict(get_grid(name), tasks=["sst2"]), tmp_path)
    supernets = [s.command for s in steps if s.command[0] == "train-supernet"]
    assert supernets
    for command in supernets:
        if name == "recipe":
            assert "--min-train-words" not in command
        else:
            assert command[command.index("--min-train-words") + 1] == "0"
    assert all("--min-train-words" not in s.command for s in steps if s.command[0] != "train-supernet")
