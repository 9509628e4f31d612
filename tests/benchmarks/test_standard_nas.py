"""Standard NAS (`plm-nas nas`): real Syne Tune tuning jobs with 2 workers on a tiny random BERT and RTE."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
import torch

from benchmarks.artifacts import BEST_MODEL_DIR
from benchmarks.cli import run_command as main  # raises, so a failure shows its traceback
from benchmarks.commands.export import Pick, export
from benchmarks.nas.common import SETTINGS_FILE, check_budget, threads_per_trial
from benchmarks.nas.local_backend import SYNE_TUNE_DIR, TrialLimit
from benchmarks.nas.trial import TrialProtocol, TrialSettings, run_trial
from benchmarks.ray_cluster import environment
from benchmarks.results import (
    COLUMNS,
    RESULTS_FILE,
    mark_pareto_best_epochs,
    pareto_mask,
    parse_metrics,
    read_results,
    task_metrics,
)
from search_spaces import cost_of, get_search_space
from supernet.extract import load_extracted

EPOCHS = 2
TRIALS = 4


def nas_args(model: Path, glue_dir: Path, out: Path, searcher: str, *extra: str) -> list[str]:
    return [
        "nas", "--model", str(model), "--task", "rte", "--data-dir", str(glue_dir), "--output-dir", str(out),
        "--searcher", searcher, "--workers", "2", "--threads", "2", "--max-trials", str(TRIALS),
        "--epochs", str(EPOCHS), "--max-train-samples", "16", "--max-valid-samples", "16",
        "--max-test-samples", "16", "--lr", "1e-3", "--poll-interval", "0.5", *extra,
    ]


@pytest.fixture(scope="module")
def tiny_model(tiny_bert_dir) -> Path:
    """The shared tiny random BERT checkpoint (read only: every run writes to its own folder)."""
    return tiny_bert_dir


@pytest.fixture(scope="module")
def space(tiny_model):
    from transformers import AutoConfig

    from search_spaces.shape import ModelShape

    return get_search_space("small", ModelShape.from_config(AutoConfig.from_pretrained(tiny_model)))


@pytest.fixture(scope="module")
def random_run(tiny_model, glue_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("nas-random")
    assert main(nas_args(tiny_model, glue_dir, out, "random_search", "--save-models")) == 0
    return out


def trials_in_order(frame: pd.DataFrame) -> list[dict]:
    """Configs of the trials, in the table's (trial id) order."""
    return [json.loads(c) for c in dict.fromkeys(frame["config"])]


def test_rows_have_every_column_and_one_row_per_trial_and_epoch(random_run):
    frame = read_results(random_run / RESULTS_FILE)
    assert tuple(frame.columns) == COLUMNS
    assert len(trials_in_order(frame)) == TRIALS
    assert len(frame) == TRIALS * EPOCHS
    for _, part in frame.groupby("config", sort=False):
        assert part["epoch"].tolist() == [1.0, 2.0]
    assert set(frame["kind"]) == {"standard"}
    assert set(frame["searcher"]) == set(frame["method"]) == {"random_search"}
    assert set(frame["size_objective"]) == {"param_fraction"}
    assert frame["valid_error"].between(0, 1).all() and frame["test_error"].between(0, 1).all()
    assert (frame["runtime_s"] > 0).all()
    for row in frame.itertuples():  # RTE's one metric, accuracy, on both splits of every epoch
        assert parse_metrics(row.valid_metrics) == {"accuracy": pytest.approx(1 - row.valid_error)}
        assert parse_metrics(row.test_metrics) == {"accuracy": pytest.approx(1 - row.test_error)}
    assert (random_run / "run.json").is_file() and (random_run / SYNE_TUNE_DIR / "0" / "std.out").is_file()
    settings = TrialSettings.read(random_run / SETTINGS_FILE)
    assert settings.threads == 1  # 2 threads over 2 workers


def test_initial_design_first_then_the_seeded_searchers_configs(random_run, space):
    from baselines.searchers import make_scheduler

    configs = trials_in_order(read_results(random_run / RESULTS_FILE))
    assert configs[:3] == [space.largest(), space.smallest(), space.midpoint()]
    scheduler = make_scheduler("random_search", space.config_space, metrics=["valid_error", "param_fraction"],
                               points_to_evaluate=configs[:3], random_seed=0)
    assert configs == [scheduler.suggest().config for _ in range(TRIALS)]


def test_cost_fields_follow_the_cost_model(random_run, space):
    frame = read_results(random_run / RESULTS_FILE)
    for row in frame.itertuples():
        cost = cost_of(space.shape, space.to_masks(json.loads(row.config)), seq_len=128)
        assert row.params == cost.params
        assert row.param_fraction == pytest.approx(cost.param_fraction)
        assert row.encoder_param_fraction == pytest.approx(cost.encoder_param_fraction)
        assert row.mac_fraction == pytest.approx(cost.mac_fraction)


def test_pareto_flags_mark_the_front_of_each_trials_best_epoch(random_run):
    frame = read_results(random_run / RESULTS_FILE)
    best = frame.loc[frame.groupby("config", sort=False)["valid_error"].idxmin()]
    expected = pd.Series(False, index=frame.index)
    expected[best.index] = pareto_mask(best["valid_error"], best["param_fraction"])
    assert frame["pareto"].tolist() == expected.tolist()
    assert frame["pareto"].any()


def test_a_trial_rerun_from_its_settings_reports_the_same_errors(random_run, space):
    """Trials are seeded: re-running the smallest sub-network's trial here gives its rows' errors exactly."""
    settings = TrialSettings.read(random_run / SETTINGS_FILE)
    reports = []
    threads = torch.get_num_threads()
    try:
        run_trial(settings, space.smallest(), lambda **fields: reports.append(fields))
    finally:
        torch.set_num_threads(threads)
    frame = read_results(random_run / RESULTS_FILE)
    rows = frame[frame["config"].map(json.loads) == space.smallest()]
    assert [r["epoch"] for r in reports] == rows["epoch"].tolist()
    assert [r["valid_error"] for r in reports] == rows["valid_error"].tolist()
    assert [r["test_error"] for r in reports] == rows["test_error"].tolist()
    assert [{"accuracy": r["valid_accuracy"]} for r in reports] == [parse_metrics(c) for c in rows["valid_metrics"]]
    assert [{"accuracy": r["test_accuracy"]} for r in reports] == [parse_metrics(c) for c in rows["test_metrics"]]


def test_an_mrpc_trial_reports_f1_and_accuracy_as_the_metric_function_scores_its_model(tiny_model, glue_dir,
                                                                                       tmp_path, space):
    """Every task metric a trial reports, and its results row records, is the task's metric function on the
    predictions of the trial's (saved) model."""
    from benchmarks.nas.common import RowMaker
    from benchmarks.tasks.loaders import task_loaders
    from benchmarks.tasks.metrics import metrics_fn
    from benchmarks.tasks.registry import get_task
    from supernet.evaluation import evaluate
    from supernet.loading import load_tokenizer

    task = get_task("mrpc")
    protocol = TrialProtocol(epochs=1, lr=1e-3, max_train_samples=16, max_valid_samples=24, max_test_samples=24)
    settings = TrialSettings(model=str(tiny_model), task="mrpc", search_space="small", data_dir=str(glue_dir),
                             protocol=protocol, save_models=True)
    reports = []
    threads = torch.get_num_threads()
    try:
        run_trial(settings, space.midpoint(), lambda **fields: reports.append(fields), trial_dir=tmp_path)
    finally:
        torch.set_num_threads(threads)
    (report,) = reports
    model = load_extracted(tmp_path / BEST_MODEL_DIR, device="cpu")
    loaders = task_loaders(task, load_tokenizer(str(tiny_model)), settings.data(), splits=("validation", "test"))
    expected = {split: task_metrics(evaluate(model, loaders[split], metrics_fn=metrics_fn(task)).metrics)
                for split in ("validation", "test")}
    assert list(expected["validation"]) == ["f1", "accuracy"]
    assert expected["validation"]["f1"] != expected["validation"]["accuracy"]
    assert {name: report[f"valid_{name}"] for name in ("f1", "accuracy")} == expected["validation"]
    assert {name: report[f"test_{name}"] for name in ("f1", "accuracy")} == expected["test"]
    assert report["valid_error"] == 1 - expected["validation"]["f1"]
    row = RowMaker(space=space, run_id="r", task="mrpc", model="m", searcher="random_search", search_space="small",
                   seed=0, size_objective="param_fraction", seq_len=128, metrics=task.metrics)(space.midpoint(),
                                                                                                report, 1.0)
    record = row.to_record()
    assert json.loads(record["valid_metrics"]) == expected["validation"]
    assert json.loads(record["test_metrics"]) == expected["test"]


def test_export_copies_the_models_trials_saved(random_run, tmp_path):
    frame = read_results(random_run / RESULTS_FILE)
    records = export(frame, Pick("pareto"), tmp_path, results_root=random_run)
    front = frame[frame["pareto"]]
    assert sorted(r["params"] for r in records) == sorted(front["params"].tolist())
    for record in records:
        folder = tmp_path / record["name"]
        model = load_extracted(folder)
        assert sum(p.numel() for p in model.parameters()) == record["params"]
        saved = json.loads((folder / "subnetwork.json").read_text())
        assert saved["config"] == record["config"] and saved["masks"] is not None
        assert saved["valid_error"] == pytest.approx(
            front.loc[front["config"].map(json.loads) == record["config"], "valid_error"].item())
    assert len(list(random_run.glob(f"{SYNE_TUNE_DIR}/*/{BEST_MODEL_DIR}/trial.json"))) == TRIALS


def test_moasha_rows_follow_its_per_epoch_decisions(tiny_model, glue_dir, tmp_path, space):
    """MO-ASHA sees every epoch (resource ``epoch``), and the table holds exactly the epochs each trial reached.

    Which trials MO-ASHA stops at epoch 1 depends on the order in which the two workers report, so the test
    checks the table against Syne Tune's own record of results and decisions instead of a fixed outcome.
    """
    from syne_tune.constants import ST_DECISION, ST_RESULTS_DATAFRAME_FILENAME, ST_TRIAL_ID

    assert main(nas_args(tiny_model, glue_dir, tmp_path, "moasha")) == 0
    frame = read_results(tmp_path / RESULTS_FILE)
    assert trials_in_order(frame)[:3] == [space.largest(), space.smallest(), space.midpoint()]
    assert set(frame["searcher"]) == {"moasha"}
    tuner = pd.read_csv(tmp_path / SYNE_TUNE_DIR / ST_RESULTS_DATAFRAME_FILENAME)
    tuner = tuner.sort_values([ST_TRIAL_ID, "epoch"], kind="stable")
    assert frame["epoch"].tolist() == tuner["epoch"].astype(float).tolist()
    assert frame["valid_error"].tolist() == tuner["valid_error"].tolist()
    assert frame["param_fraction"].tolist() == pytest.approx(tuner["param_fraction"].tolist())
    for _, decisions in tuner.groupby(ST_TRIAL_ID):
        # every trial ends with a STOP (early, or at the maximum epoch) and reports nothing after it
        assert decisions[ST_DECISION].tolist()[-1] == "STOP"
        assert "STOP" not in decisions[ST_DECISION].tolist()[:-1]


# ------------------------------------------------------------------------------------------ fast unit tests


def test_an_output_dir_is_used_once(random_run, tiny_model, glue_dir):
    with pytest.raises(ValueError, match="already holds"):
        main(nas_args(tiny_model, glue_dir, random_run, "random_search"))


def test_budget_and_threads_are_checked():
    with pytest.raises(ValueError, match="budget"):
        check_budget(None, None)
    with pytest.raises(ValueError, match="max-trials"):
        check_budget(None, 0)
    assert threads_per_trial(8, 3) == 2 and threads_per_trial(2, 4) == 1
    with pytest.raises(ValueError, match="workers"):
        threads_per_trial(2, 0)


def test_trial_limit_suggests_at_most_max_trials(space):
    from baselines.searchers import make_scheduler

    inner = make_scheduler("random_search", space.config_space, metrics=["valid_error", "param_fraction"],
                           random_seed=1)
    limited = TrialLimit(inner, max_trials=2)
    assert limited.suggest() is not None and limited.suggest() is not None
    assert limited.suggest() is None
    assert limited.metric_names() == ["valid_error", "param_fraction"]


def test_environment_restores_variables():
    os.environ.pop("PLM_NAS_TEST_VAR", None)
    with environment(PLM_NAS_TEST_VAR="1"):
        assert os.environ["PLM_NAS_TEST_VAR"] == "1"
    assert "PLM_NAS_TEST_VAR" not in os.environ


def test_best_epoch_pareto_ignores_other_epochs():
    base = dict(run_id="r", size_objective="param_fraction", test_error=0.0, runtime_s=1.0)
    frame = pd.DataFrame([
        {**base, "config": "a", "epoch": 1.0, "valid_error": 0.1, "param_fraction": 0.5},  # a's best epoch
        {**base, "config": "a", "epoch": 2.0, "valid_error": 0.3, "param_fraction": 0.5},
        {**base, "config": "b", "epoch": 1.0, "valid_error": 0.05, "param_fraction": 0.9},  # b's best epoch
        {**base, "config": "b", "epoch": 2.0, "valid_error": 0.2, "param_fraction": 0.9},
        {**base, "config": "c", "epoch": 1.0, "valid_error": 0.2, "param_fraction": 0.6},  # dominated by a
    ])
    assert mark_pareto_best_epochs(frame)["pareto"].tolist() == [True, False, True, False, False]
