"""The Ray backend on a real two-node Ray cluster bound to loopback addresses (127.0.0.2 head, 127.0.0.3 worker).

Every Ray process here runs with :data:`benchmarks.ray_cluster.LOOPBACK_ENV` (proxies on a closed loopback port,
usage reports to loopback), so no test contacts a non-loopback address.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import ray

from baselines.searchers import AskTellSearch, make_scheduler
from baselines.searchers.ray_tune import SyneTuneSearcher, SyneTuneTrialScheduler
from benchmarks.cli import run_command as main  # raises, so a failure shows its traceback
from benchmarks.nas.ray_backend import RAY_DIR
from benchmarks.objectives import initial_design
from benchmarks.ray_cluster import HEAD_IP, LOOPBACK_ENV, LoopbackCluster, environment, loopback_host
from benchmarks.results import RESULTS_FILE, parse_metrics, read_results
from search_spaces import get_search_space

from conftest import REPO_ROOT, train_tiny_supernet

pytestmark = [pytest.mark.ray, pytest.mark.slow]
METRICS = ["valid_error", "param_fraction"]
EPOCHS_OF_KILLED_TRIAL = 8  # about 0.4 s each for the tiny model: time to kill the trial after its first epoch


def free_port(host: str = HEAD_IP) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head and one worker node, 1 CPU each, on loopback; the test process gets the loopback-only settings and
    the cluster's authentication token."""
    nodes = LoopbackCluster(port=free_port(), cpus_per_node=1, workers=1, temp_dir=tmp_path_factory.mktemp("ray"))
    with environment(**nodes.client_env), nodes:
        yield nodes


@pytest.fixture(scope="module")
def space(tiny_bert_dir):
    from transformers import AutoConfig

    from search_spaces.shape import ModelShape

    return get_search_space("small", ModelShape.from_config(AutoConfig.from_pretrained(tiny_bert_dir)))


def nas_args(cluster, model: Path, glue_dir: Path, out: Path, searcher: str, trials: int, epochs: int,
             *extra: str) -> list[str]:
    return [
        "nas", "--backend", "ray", "--ray-address", cluster.address, "--model", str(model), "--task", "rte",
        "--data-dir", str(glue_dir), "--output-dir", str(out), "--searcher", searcher, "--workers", "2",
        "--cpus-per-trial", "1", "--max-trials", str(trials), "--epochs", str(epochs), "--max-train-samples", "16",
        "--max-valid-samples", "16", "--max-test-samples", "16", "--lr", "1e-3", "--no-progress", *extra,
    ]


def suggestions(space, searcher: str, count: int, seed: int = 0) -> list[dict]:
    """The first ``count`` configs the seeded searcher proposes before any result (its initial design first)."""
    scheduler = make_scheduler(searcher, space.config_space, metrics=METRICS, points_to_evaluate=initial_design(space),
                               random_seed=seed, max_t=3)
    search = AskTellSearch(scheduler)
    return [search.ask()[1] for _ in range(count)]


def trials(frame: pd.DataFrame) -> dict[str, list[float]]:
    """Config (JSON) -> its reported epochs, in the table's trial order."""
    return {config: rows["epoch"].tolist() for config, rows in frame.groupby("config", sort=False)}


def ray_results(out: Path) -> dict[str, list[dict]]:
    """Ray's own per-trial result records (``result.json``), by trial folder."""
    records = {}
    for path in sorted((out / RAY_DIR).glob("*/result.json")):
        records[path.parent.name] = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return records


# --------------------------------------------------------------------------------------- adapters, no cluster


def test_searcher_adapter_proposes_the_schedulers_configs_and_restores_its_state(space, tmp_path):
    expected = suggestions(space, "random_search", 6)
    scheduler = make_scheduler("random_search", space.config_space, metrics=METRICS,
                               points_to_evaluate=initial_design(space), random_seed=0)
    searcher = SyneTuneSearcher(scheduler, METRICS)
    assert [searcher.suggest(f"t{i}") for i in range(3)] == expected[:3]
    searcher.on_trial_complete("t0", {"valid_error": 0.3, "param_fraction": 1.0, "epoch": 1})
    searcher.save(str(tmp_path / "state.pkl"))
    restored = SyneTuneSearcher(make_scheduler("random_search", space.config_space, metrics=METRICS, random_seed=9),
                                METRICS)
    restored.restore(str(tmp_path / "state.pkl"))
    assert [restored.suggest(f"t{i}") for i in range(3, 6)] == expected[3:]
    assert [searcher.suggest(f"t{i}") for i in range(3, 6)] == expected[3:]
    with pytest.raises(ValueError, match="objectives"):
        SyneTuneSearcher(scheduler, ["valid_error", "mac_fraction"]).restore(str(tmp_path / "state.pkl"))


def test_trial_scheduler_passes_moasha_decisions_through(space):
    from ray.tune.schedulers import TrialScheduler as RayTrialScheduler
    from syne_tune.optimizer.scheduler import SchedulerDecision

    def make():
        return make_scheduler("moasha", space.config_space, metrics=METRICS, random_seed=0, max_t=9,
                              points_to_evaluate=initial_design(space))

    searcher = SyneTuneSearcher(make(), METRICS)
    adapter = SyneTuneTrialScheduler(searcher)
    direct, direct_trials = make(), []
    from syne_tune.backend.trial_status import Trial

    class RayTrial:
        def __init__(self, trial_id):
            self.trial_id = trial_id

    decisions, expected = [], []
    for index in range(6):
        config = searcher.suggest(f"r{index}")
        trial = Trial(trial_id=index, config=direct.suggest().config, creation_time=None)
        direct.on_trial_add(trial)
        assert trial.config == config
        direct_trials.append(trial)
    for index in range(6):  # every trial reports epoch 1, the later ones with higher errors
        result = {"valid_error": 0.1 + 0.1 * index, "param_fraction": 0.5, "epoch": 1}
        decisions.append(adapter.on_trial_result(None, RayTrial(f"r{index}"), dict(result)))
        expected.append(direct.on_trial_result(direct_trials[index], dict(result)))
    assert decisions == [RayTrialScheduler.STOP if d == SchedulerDecision.STOP else RayTrialScheduler.CONTINUE
                         for d in expected]
    assert RayTrialScheduler.STOP in decisions and RayTrialScheduler.CONTINUE in decisions
    calls = []
    searcher.scheduler.on_trial_result = lambda trial, result: calls.append(result) or SchedulerDecision.CONTINUE
    searcher.on_trial_result("r0", {"valid_error": 0.0, "param_fraction": 0.5, "epoch": 2})
    assert calls == []  # Ray also tells the searcher every result: MO-ASHA must see each one once, via the scheduler
    adapter.on_trial_result(None, RayTrial("r0"), {"valid_error": 0.0, "param_fraction": 0.5, "epoch": 2, "pid": 1})
    assert calls == [{"valid_error": 0.0, "param_fraction": 0.5, "epoch": 2}]


def test_loopback_host_only_for_loopback_addresses():
    assert loopback_host("127.0.0.2:6390") == "127.0.0.2"
    assert loopback_host("localhost:6379") == "127.0.0.1"
    assert loopback_host("10.0.0.5:6379") is None
    assert loopback_host(None) is None


def test_loopback_nodes_bind_to_loopback_with_an_absolute_temp_dir():
    nodes = LoopbackCluster(port=7000, temp_dir=Path("relative/ray"))
    head, worker = nodes.node_command(True, HEAD_IP), nodes.node_command(False, "127.0.0.3")
    assert "--node-ip-address=127.0.0.2" in head and "--port=7000" in head and "--include-dashboard=false" in head
    assert f"--temp-dir={Path('relative/ray').resolve()}" in head
    assert "--node-ip-address=127.0.0.3" in worker and "--address=127.0.0.2:7000" in worker
    assert all("--disable-usage-stats" in command for command in (head, worker))


def test_ray_only_flags_are_refused_by_the_local_backend(tiny_bert_dir, glue_dir, tmp_path):
    with pytest.raises(ValueError, match="only apply to --backend ray"):
        main(["nas", "--model", str(tiny_bert_dir), "--task", "rte", "--data-dir", str(glue_dir), "--output-dir",
              str(tmp_path), "--max-trials", "1", "--cpus-per-trial", "2"])  # (--resume works on both)
    with pytest.raises(ValueError, match="--eval-workers must be 1 for the local backend"):
        main(["search", "--supernet", str(tmp_path), "--output-dir", str(tmp_path / "s"), "--eval-workers", "2"])


# ---------------------------------------------------------------------------------- on the two-node cluster


def test_cluster_has_two_loopback_nodes(cluster):
    script = ("import sys, ray; ray.init(address=sys.argv[1], _node_ip_address=sys.argv[2], log_to_driver=False); "
              "print(sorted(n['NodeManagerAddress'] for n in ray.nodes() if n['Alive']))")
    out = subprocess.run([sys.executable, "-c", script, cluster.address, HEAD_IP], capture_output=True, text=True,
                         env={**os.environ, **LOOPBACK_ENV}, timeout=120, check=True).stdout
    assert out.strip() == "['127.0.0.2', '127.0.0.3']"


def test_random_search_on_ray_runs_the_searchers_configs_on_both_nodes(cluster, tiny_bert_dir, glue_dir, tmp_path,
                                                                        space):
    assert main(nas_args(cluster, tiny_bert_dir, glue_dir, tmp_path, "random_search", 4, 2, "--save-models")) == 0
    frame = read_results(tmp_path / RESULTS_FILE)
    per_trial = trials(frame)
    assert [json.loads(config) for config in per_trial] == suggestions(space, "random_search", 4)
    assert all(epochs == [1.0, 2.0] for epochs in per_trial.values())
    assert set(frame["kind"]) == {"standard"} and set(frame["searcher"]) == {"random_search"}
    records = ray_results(tmp_path)
    assert len(records) == 4
    assert {record["node_ip"] for rows in records.values() for record in rows} == {"127.0.0.2", "127.0.0.3"}
    # the table holds exactly what the trials reported to Ray
    reported = sorted((r["valid_error"], r["test_error"], r["epoch"]) for rows in records.values() for r in rows)
    assert sorted(zip(frame["valid_error"], frame["test_error"], frame["epoch"])) == reported
    reported_metrics = sorted((r["valid_accuracy"], r["test_accuracy"]) for rows in records.values() for r in rows)
    assert sorted((parse_metrics(v)["accuracy"], parse_metrics(t)["accuracy"])
                  for v, t in zip(frame["valid_metrics"], frame["test_metrics"])) == reported_metrics
    assert len(list(tmp_path.rglob("best_model/trial.json"))) == 4  # for plm-nas export
    assert list((tmp_path / RAY_DIR).glob("*/checkpoint_*")) == []  # finished trials keep no training state


def test_ray_trials_rebuild_your_own_data_from_the_trial_settings(cluster, tiny_bert_dir, glue_dir, tmp_path):
    data = tmp_path / "reviews"
    data.mkdir()
    for split, n in (("train", 24), ("test", 8)):
        rows = "".join(f'"{"a fine" if i % 2 else "a dull"} film, {i}",{"good" if i % 2 else "bad"}\n' for i in range(n))
        (data / f"{split}.csv").write_text("review,verdict\n" + rows)
    args = nas_args(cluster, tiny_bert_dir, glue_dir, tmp_path / "out", "random_search", 2, 1, "--save-models")
    at = args.index("--task")
    args[at:at + 4] = ["--train-file", str(data / "train.csv"), "--test-file", str(data / "test.csv"),
                       "--text-columns", "review", "--label-column", "verdict"]
    assert main(args) == 0
    frame = read_results(tmp_path / "out" / RESULTS_FILE)
    assert len(frame) == 2 and set(frame["task"]) == {"reviews"}
    for info in (tmp_path / "out").rglob("best_model/trial.json"):
        assert json.loads((info.parent / "config.json").read_text())["id2label"] == {"0": "bad", "1": "good"}


def test_moasha_on_ray_stops_trials_early(cluster, tiny_bert_dir, glue_dir, tmp_path, space):
    assert main(nas_args(cluster, tiny_bert_dir, glue_dir, tmp_path, "moasha", 6, 3)) == 0
    per_trial = trials(read_results(tmp_path / RESULTS_FILE))
    assert [json.loads(config) for config in per_trial][:3] == initial_design(space)
    assert len(per_trial) == 6
    for epochs in per_trial.values():
        assert epochs == [float(e) for e in range(1, len(epochs) + 1)]
    lengths = sorted(len(epochs) for epochs in per_trial.values())
    assert lengths[0] == 1 and lengths[-1] == 3  # stopped at rung 1, and promoted to the maximum


def test_a_killed_trial_worker_is_retried_from_its_last_checkpoint(cluster, tiny_bert_dir, glue_dir, tmp_path):
    """SIGKILL the process of the first trial after its first epoch; it restarts from that epoch's checkpoint."""
    killed: dict[str, int] = {}

    def kill_first_trial() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not killed:
            for folder, rows in ray_results(tmp_path).items():
                if rows and rows[-1]["epoch"] < EPOCHS_OF_KILLED_TRIAL:
                    os.kill(rows[-1]["pid"], signal.SIGKILL)
                    killed[folder] = rows[-1]["epoch"]
                    return
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_first_trial, daemon=True)
    watcher.start()
    args = nas_args(cluster, tiny_bert_dir, glue_dir, tmp_path, "random_search", 1, EPOCHS_OF_KILLED_TRIAL,
                    "--max-failures", "2")
    args[args.index("--max-train-samples") + 1] = "96"
    assert main(args) == 0
    watcher.join(timeout=5)
    assert killed, "the trial finished before it could be killed"
    (folder, epoch_at_kill), = killed.items()
    rows = ray_results(tmp_path)[folder]
    epochs = [row["epoch"] for row in rows]
    assert epochs == list(range(1, EPOCHS_OF_KILLED_TRIAL + 1))  # no epoch lost, none trained twice
    restarts = [row for row in rows if row["iterations_since_restore"] == 1 and row["epoch"] > 1]
    assert len(restarts) == 1 and restarts[0]["epoch"] >= epoch_at_kill + 1  # continued after its last checkpoint
    assert restarts[0]["pid"] != rows[0]["pid"]
    assert len(read_results(tmp_path / RESULTS_FILE)) == EPOCHS_OF_KILLED_TRIAL


def test_an_interrupted_experiment_resumes_without_losing_finished_trials(cluster, tiny_bert_dir, glue_dir, tmp_path,
                                                                          space):
    total = 6
    args = nas_args(cluster, tiny_bert_dir, glue_dir, tmp_path, "random_search", total, 2)
    args[args.index("--workers") + 1] = "1"
    env = {**os.environ, **LOOPBACK_ENV, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "benchmarks.cli", *args], env=env, cwd=REPO_ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    finished = 0
    while time.monotonic() < deadline and process.poll() is None:
        path = tmp_path / RESULTS_FILE
        if path.is_file():
            finished = sum(1 for epochs in trials(read_results(path)).values() if epochs[-1] == 2.0)
            if finished >= 2:
                break
        time.sleep(0.2)
    assert process.poll() is None, f"the run ended before it could be interrupted:\n{process.stdout.read()}"
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    before = read_results(tmp_path / RESULTS_FILE)
    done_before = {config: rows for config, rows in before.groupby("config", sort=False) if rows["epoch"].max() == 2}
    assert 2 <= len(done_before) < total, output

    assert main([*args, "--resume"]) == 0
    after = read_results(tmp_path / RESULTS_FILE)
    per_trial = trials(after)
    assert [json.loads(config) for config in per_trial] == suggestions(space, "random_search", total)
    assert all(epochs == [1.0, 2.0] for epochs in per_trial.values())
    for config, rows in done_before.items():  # finished trials were kept, not run again
        kept = after[after["config"] == config]
        assert kept["runtime_s"].tolist() == rows["runtime_s"].tolist()
    files = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in tmp_path.glob("*.json")}
    with pytest.raises(ValueError, match="other trial settings"):
        main([*[a if a != "1e-3" else "2e-3" for a in args], "--resume"])
    assert {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in tmp_path.glob("*.json")} == files


@pytest.fixture(scope="module")
def ws_supernet(tiny_bert_dir, glue_dir, tmp_path_factory) -> Path:
    return train_tiny_supernet(tmp_path_factory.mktemp("supernet"), tiny_bert_dir, glue_dir)


SEARCH_COLUMNS = ["config", "valid_error", "test_error", "param_fraction", "pareto", "valid_metrics", "test_metrics"]


def search_flags(supernet: Path) -> list[str]:
    return ["--supernet", str(supernet), "--max-test-samples", "48", "--threads", "1", "--no-progress",
            "--num-samples", "10"]


def test_weight_sharing_search_on_two_actors_equals_the_single_process_search(cluster, ws_supernet, tmp_path):
    ray_flags = ["--backend", "ray", "--eval-workers", "2", "--ray-address", cluster.address]
    for searcher, local_extra in (("random_search", []), ("morea", ["--search-batch", "2"])):
        local, remote = tmp_path / f"{searcher}-local", tmp_path / f"{searcher}-ray"
        flags = [*search_flags(ws_supernet), "--searcher", searcher]
        assert main(["search", *flags, "--output-dir", str(local), *local_extra]) == 0
        assert main(["search", *flags, "--output-dir", str(remote), *ray_flags]) == 0
        expected, got = read_results(local / RESULTS_FILE), read_results(remote / RESULTS_FILE)
        assert len(got) == 10
        pd.testing.assert_frame_equal(got[SEARCH_COLUMNS], expected[SEARCH_COLUMNS])


def test_without_an_address_a_private_loopback_ray_is_started(ws_supernet, tmp_path, monkeypatch):
    """No cluster given: the search starts its own Ray on loopback with its own token, written nowhere."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # where Ray would otherwise put a token file
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    local, remote = tmp_path / "local", tmp_path / "ray"
    assert main(["search", *search_flags(ws_supernet), "--output-dir", str(local)]) == 0
    assert main(["search", *search_flags(ws_supernet), "--output-dir", str(remote), "--backend", "ray",
                 "--eval-workers", "2"]) == 0
    pd.testing.assert_frame_equal(read_results(remote / RESULTS_FILE)[SEARCH_COLUMNS],
                                  read_results(local / RESULTS_FILE)[SEARCH_COLUMNS])
    assert not (tmp_path / "home" / ".ray" / "auth_token").exists()
    assert "RAY_AUTH_TOKEN" not in os.environ and not ray.is_initialized()
