"""`plm-nas nas --resume` on the local backend: a run killed with SIGKILL continues to the uninterrupted table."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.cli import run_command as main  # raises, so a failure shows its traceback
from benchmarks.nas.common import SETTINGS_FILE
from benchmarks.nas.journal import JOURNAL_FILE, read_journal
from benchmarks.nas.local_backend import SYNE_TUNE_DIR
from benchmarks.nas.trial import EPOCH_PAUSE_ENV, TrialSettings
from benchmarks.results import RESULTS_FILE, read_results
from benchmarks.runinfo import PROJECT_ROOT

TRIALS = 5  # the initial design (3) and two configs local search derives from the results
EPOCHS = 2
SAME = ["config", "epoch", "valid_error", "test_error", "params", "pareto", "valid_metrics", "test_metrics"]  # not runtime_s


def nas_args(model: Path, glue_dir: Path, out: Path, *extra: str) -> list[str]:
    return [
        "nas", "--model", str(model), "--task", "rte", "--data-dir", str(glue_dir), "--output-dir", str(out),
        "--searcher", "local_search", "--workers", "1", "--threads", "1", "--max-trials", str(TRIALS),
        "--epochs", str(EPOCHS), "--max-train-samples", "16", "--max-valid-samples", "16",
        "--max-test-samples", "16", "--lr", "1e-3", "--poll-interval", "0.2", "--no-progress", *extra,
    ]


def events_of(out: Path, kind: str) -> list[dict]:
    return [event for event in read_journal(out / JOURNAL_FILE) if event["event"] == kind]


def kill_when(process: subprocess.Popen, ready, timeout: float = 120.0) -> None:
    """SIGKILL the run's whole process group (tuner and trials) as soon as ``ready()`` holds."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline, "the run did not reach the point of interruption"
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_a_killed_local_run_resumes_to_the_uninterrupted_table(tiny_bert_dir, glue_dir, tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")])}

    def start(out: Path, **variables: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "benchmarks.cli", *nas_args(tiny_bert_dir, glue_dir, out)],
                                env={**env, **variables}, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # Both runs at once: the uninterrupted one, and one whose trials pause after each report, so that its third
    # trial is caught between its epochs.
    uninterrupted = start(whole)
    process = start(killed, **{EPOCH_PAUSE_ENV: "2"})

    def two_finished_and_third_midway() -> bool:
        return (len(events_of(killed, "complete")) >= 2
                and any(e["trial"] == 2 and e["result"]["epoch"] == 1 for e in events_of(killed, "result")))

    try:
        kill_when(process, two_finished_and_third_midway)
        assert uninterrupted.wait(timeout=300) == 0
    finally:  # never leave a run behind
        for run in (process, uninterrupted):
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
                run.wait()
    assert read_results(killed / RESULTS_FILE)["config"].nunique() >= 2
    third = SYNE_TUNE_DIR + "/2/checkpoints/checkpoint.pt"
    assert (killed / third).is_file()

    with pytest.raises(ValueError, match="--resume"):
        main(nas_args(tiny_bert_dir, glue_dir, killed))
    assert main(nas_args(tiny_bert_dir, glue_dir, killed, "--resume")) == 0

    expected, resumed = read_results(whole / RESULTS_FILE), read_results(killed / RESULTS_FILE)
    assert resumed["config"].nunique() == TRIALS and len(resumed) == TRIALS * EPOCHS
    assert resumed[SAME].to_dict("records") == expected[SAME].to_dict("records")
    assert (resumed["runtime_s"] >= 0).all()

    # The third trial continued from its epoch-1 checkpoint in a new trial folder; it did not start over.
    (restart,) = events_of(killed, "restart")
    assert restart["trial"] == 2
    log = (killed / SYNE_TUNE_DIR / str(restart["backend_trial"]) / "std.out").read_text()
    assert "resumed after epoch 1" in log
    # the searcher was replayed, not asked anew: it suggested each of the 5 trials once (plus the final None)
    suggested = [e["config"] for e in events_of(killed, "suggest") if e["config"] is not None]
    assert [json.dumps(c, sort_keys=True) for c in suggested] == [
        json.dumps(json.loads(c), sort_keys=True) for c in dict.fromkeys(expected["config"])]
    # checkpoints of finished trials are deleted
    assert not list((killed / SYNE_TUNE_DIR).glob("*/checkpoints/checkpoint.pt"))

    # a finished run resumed again changes nothing; other trial settings are refused before anything is touched
    assert main(nas_args(tiny_bert_dir, glue_dir, whole, "--resume")) == 0
    assert read_results(whole / RESULTS_FILE)[SAME].to_dict("records") == expected[SAME].to_dict("records")
    with pytest.raises(ValueError, match="other trial settings"):
        main(nas_args(tiny_bert_dir, glue_dir, whole, "--resume", "--lr", "1e-4"))
    assert TrialSettings.read(whole / SETTINGS_FILE).protocol.lr == 1e-3


def test_resume_refuses_a_folder_without_a_journal(tiny_bert_dir, glue_dir, tmp_path):
    (tmp_path / SYNE_TUNE_DIR).mkdir()
    with pytest.raises(ValueError, match="without"):
        main(nas_args(tiny_bert_dir, glue_dir, tmp_path, "--resume"))


# ------------------------------------------------------------------------------------------ fast unit tests


def journaled_run(seed: int, tmp_path: Path, results: int):
    """A local-search scheduler driven through the journal for ``results`` trials, as the Tuner would; returns
    the space and the config it suggests next."""
    from syne_tune.backend.trial_status import Trial
    from syne_tune.config_space import randint

    from baselines.searchers import make_scheduler
    from benchmarks.nas.journal import JournaledScheduler

    space = {"x": randint(0, 1000), "y": randint(0, 1000)}
    scheduler = make_scheduler("local_search", space, metrics=["valid_error", "param_fraction"], random_seed=seed)
    with open(tmp_path / JOURNAL_FILE, "a") as journal:
        journaled = JournaledScheduler(scheduler, journal)
        for number in range(results):
            config = journaled.suggest().config
            trial = Trial(trial_id=number, config=config, creation_time=None)
            journaled.on_trial_add(trial)
            result = {"epoch": 1, "valid_error": (config["x"] % 97) / 97, "param_fraction": config["y"] / 1000}
            journaled.on_trial_result(trial, result)
            journaled.on_trial_complete(trial, result)
        return space, journaled.suggest().config


def test_replay_restores_the_searcher_and_refuses_another_seed(tmp_path):
    from baselines.searchers import make_scheduler
    from benchmarks.nas.journal import replay

    space, next_config = journaled_run(0, tmp_path, results=6)  # and what the searcher proposes next
    with open(tmp_path / JOURNAL_FILE, "a") as journal:
        journal.write('{"event": "suggest", "conf')  # a line cut short by SIGKILL
    events = read_journal(tmp_path / JOURNAL_FILE)
    assert [e["event"] for e in events][-1] == "suggest" and events[-1]["config"] == next_config
    events = events[:-1]  # the journal as it was before the extra suggestion
    fresh = make_scheduler("local_search", space, metrics=["valid_error", "param_fraction"], random_seed=0)
    replayed = replay(fresh, events)
    assert replayed.restarts == [] and replayed.next_trial == 6 and len(replayed.results) == 6
    assert replayed.finished_backend_trials == list(range(6))  # their checkpoints can go
    assert replayed.elapsed_s == pytest.approx(events[-1]["time"] - events[0]["time"])
    assert fresh.suggest().config == next_config
    other = make_scheduler("local_search", space, metrics=["valid_error", "param_fraction"], random_seed=1)
    with pytest.raises(ValueError, match="same searcher, seed"):
        replay(other, events)


def test_the_elapsed_time_of_earlier_sessions_ends_at_their_last_event():
    from benchmarks.nas.journal import replay

    events = [{"event": "session", "time": 100.0}, {"event": "alive", "time": 130.0},
              {"event": "session", "time": 500.0}, {"event": "alive", "time": 520.0}]
    assert replay(None, events).elapsed_s == pytest.approx(50.0)  # no call reaches the (absent) searcher
