"""`plm-nas prune`: the three pruning baselines end to end on a tiny fine-tuned model, and its argument checks."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from transformers import BertConfig, BertForSequenceClassification

from benchmarks.tasks.registry import get_task
from search_spaces.cost import count_macs, count_parameters
from search_spaces.masks import SubNetworkMasks
from supernet.loading import model_shape

from conftest import save_tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------------------- `plm-nas prune`


@pytest.fixture(scope="module")
def finetuned_dir(tmp_path_factory):
    """A tiny random BERT with the real MiniLM tokenizer, laid out like `plm-nas finetune`'s output."""
    folder = tmp_path_factory.mktemp("finetuned")
    save_tiny_bert(folder / "best_model", hidden_size=16, num_hidden_layers=3, intermediate_size=24)
    (folder / "metrics.json").write_text(json.dumps({"model": "tiny-bert"}))
    return folder


def run_prune(method: str, finetuned_dir, glue_dir, output_dir, *extra: str, task: str = "rte"):
    from benchmarks.commands import prune
    from benchmarks.prune.rows import DETAILS_FILE
    from benchmarks.results import read_results

    parser = argparse.ArgumentParser()
    prune.add_arguments(parser)
    argv = ["--method", method, "--finetuned", str(finetuned_dir), "--task", task, "--data-dir", str(glue_dir),
            "--output-dir", str(output_dir), "--max-valid-samples", "24", "--max-test-samples", "24",
            "--seed", "3", "--device", "cpu", "--threads", "1", "--no-progress", "--seq-len", "64", *extra]
    assert prune.run(parser.parse_args(argv)) == 0
    frame = read_results(output_dir)
    details = json.loads((output_dir / DETAILS_FILE).read_text())
    return frame, details


def check_rows(frame, method: str) -> None:
    """Rows any consumer can use: baseline kind, method, masks config whose costs match the row."""
    from benchmarks.results import COLUMNS

    shape = model_shape(BertForSequenceClassification(BertConfig(
        vocab_size=30522, hidden_size=16, num_hidden_layers=3, num_attention_heads=4, intermediate_size=24,
        max_position_embeddings=128)))
    assert list(frame.columns) == list(COLUMNS)
    assert (frame["kind"] == "baseline").all() and (frame["method"] == method).all()
    assert (frame["task"] == "rte").all() and (frame["model"] == "tiny-bert").all() and (frame["seed"] == 3).all()
    assert frame["valid_error"].between(0, 1).all() and frame["test_error"].between(0, 1).all()
    assert frame["runtime_s"].is_monotonic_increasing
    first = frame.iloc[0]
    assert first["param_fraction"] == 1.0 and first["mac_fraction"] == 1.0  # the unpruned model comes first
    for _, row in frame.iterrows():
        masks = SubNetworkMasks.from_dict(json.loads(row["config"]))
        assert row["params"] == count_parameters(shape, masks)
        assert row["macs"] == count_macs(shape, masks, 64)
    assert frame["pareto"].any()


def test_prune_layer_drop_end_to_end(finetuned_dir, glue_dir, tmp_path):
    frame, details = run_prune("layer-drop", finetuned_dir, glue_dir, tmp_path, "--epochs", "2", "--lr", "1e-3",
                               "--max-train-samples", "16", "--batch-size", "8")
    check_rows(frame, "layer-drop")
    assert len(frame) == 3
    kept = [SubNetworkMasks.from_dict(json.loads(c)).layers_kept for c in frame["config"]]
    assert kept == [[True] * 3, [True, True, False], [True, False, False]]
    assert np.isnan(frame["epoch"].iloc[0])
    for (_, row), entry in zip(frame.iloc[1:].iterrows(), details["rows"][1:]):
        history = entry["history"]
        assert [h["epoch"] for h in history] == [1, 2]
        best = min(history, key=lambda h: h["valid_error"])
        assert row["epoch"] == best["epoch"] and row["valid_error"] == best["valid_error"]
        assert row["test_error"] == best["test_error"]  # test error of the best-validation epoch
        assert json.loads(row["valid_metrics"]) == {"accuracy": best["valid_accuracy"]}  # RTE's one metric
        assert json.loads(row["test_metrics"]) == {"accuracy": best["test_accuracy"]}


def test_prune_head_prune_end_to_end(finetuned_dir, glue_dir, tmp_path):
    frame, details = run_prune("head-prune", finetuned_dir, glue_dir, tmp_path, "--step-fraction", "0.25")
    check_rows(frame, "head-prune")
    heads = [int(np.sum(json.loads(c)["heads"])) for c in frame["config"]]
    assert heads == [12, 9, 6, 3, 1]
    assert [entry.get("step") for entry in details["rows"]] == [None, 1, 2, 3, 4]


def test_prune_rows_hold_every_mrpc_metric_of_their_saved_models(finetuned_dir, glue_dir, tmp_path):
    """MRPC rows record F1 (the main metric) and accuracy on both splits, as the task's metric function scores
    each saved model's predictions."""
    from benchmarks.results import task_metrics
    from benchmarks.tasks.loaders import DataSettings, make_dataloaders, task_splits
    from benchmarks.tasks.metrics import metrics_fn
    from supernet.evaluation import evaluate
    from supernet.extract import load_extracted
    from supernet.loading import load_tokenizer
    from supernet.precision import Precision, resolve_precision

    task = get_task("mrpc")
    frame, details = run_prune("head-prune", finetuned_dir, glue_dir, tmp_path, "--step-fraction", "0.5",
                               "--save-models", task="mrpc")
    assert len(frame) == 3 and (frame["task"] == "mrpc").all()
    splits = task_splits(task, DataSettings(data_dir=str(glue_dir), dataset_seed=0, max_valid_samples=24,
                                            max_test_samples=24))
    loaders = make_dataloaders(task, {split: splits[split] for split in ("validation", "test")},
                               load_tokenizer(str(finetuned_dir / "best_model")), batch_size=32)
    assert set(frame["precision"]) == {resolve_precision("auto", "cpu").name}  # the default, as each row says
    for (_, row), entry in zip(frame.iterrows(), details["rows"]):
        model = load_extracted(entry["model_dir"], device="cpu")
        precision = Precision(row["precision"])
        scores = {split: evaluate(model, loaders[split], metrics_fn=metrics_fn(task), precision=precision).metrics
                  for split in ("validation", "test")}
        assert json.loads(row["valid_metrics"]) == task_metrics(scores["validation"])
        assert json.loads(row["test_metrics"]) == task_metrics(scores["test"])
        assert list(json.loads(row["valid_metrics"])) == ["f1", "accuracy"]
        assert row["valid_error"] == pytest.approx(scores["validation"]["error"])
        assert entry["valid_metrics"] == task_metrics(scores["validation"])  # prune.json too


def test_prune_rfp_end_to_end_and_saved_models_reproduce_their_rows(finetuned_dir, glue_dir, tmp_path):
    from benchmarks.tasks.loaders import load_splits, make_dataloaders
    from benchmarks.tasks.metrics import metrics_fn
    from supernet.evaluation import evaluate
    from supernet.extract import load_extracted
    from supernet.loading import load_tokenizer
    from supernet.precision import Precision

    frame, details = run_prune("rfp", finetuned_dir, glue_dir, tmp_path, "--budgets", "0.5", "0.8",
                               "--num-samples", "32", "--save-models")
    check_rows(frame, "rfp")
    assert len(frame) == 3
    assert [entry.get("budget") for entry in details["rows"]] == [None, 0.5, 0.8]
    assert frame["mac_fraction"].iloc[1] <= 0.5 and frame["mac_fraction"].iloc[2] <= 0.8
    assert frame["mac_fraction"].iloc[1] > 0.4  # the search spends its budget
    splits = load_splits(get_task("rte"), data_dir=glue_dir, seed=0, max_valid_samples=24)
    tokenizer = load_tokenizer(str(finetuned_dir / "best_model"))
    loader = make_dataloaders(get_task("rte"), {"validation": splits["validation"]}, tokenizer, batch_size=32)["validation"]
    for (_, row), entry in zip(frame.iterrows(), details["rows"]):
        model = load_extracted(entry["model_dir"], device="cpu")
        error = evaluate(model, loader, metrics_fn=metrics_fn(get_task("rte")),
                         precision=Precision(row["precision"])).metrics["error"]
        assert error == pytest.approx(row["valid_error"])
    from plotting.relative import relative_performance

    relative = relative_performance(frame, fractions_pruned=[0.0, 0.3], size_column="mac_fraction")
    assert relative["reference_performance"].tolist() == pytest.approx([1 - frame["test_error"].iloc[0]] * 2)
    assert np.isfinite(relative["relative_performance"]).all()


def test_prune_rejects_bad_arguments(finetuned_dir, glue_dir, tmp_path):
    from benchmarks.artifacts import finetuned_model_dir
    from benchmarks.prune.methods import get_method

    with pytest.raises(ValueError, match="--budgets"):
        run_prune("rfp", finetuned_dir, glue_dir, tmp_path, "--budgets", "0", "0.5")
    with pytest.raises(FileNotFoundError, match="finetune"):
        finetuned_model_dir(tmp_path)
    with pytest.raises(ValueError, match="layer-drop, head-prune, rfp"):
        get_method("magnitude")


def test_pruning_uses_the_fine_tuned_models_split_seed(tmp_path):
    import json

    from benchmarks.artifacts import finetuned_dataset_seed

    (tmp_path / "run.json").write_text(json.dumps({"arguments": {"dataset_seed": 3}}))
    assert finetuned_dataset_seed(tmp_path, None, force=False) == 3
    assert finetuned_dataset_seed(tmp_path, 3, force=False) == 3
    with pytest.raises(ValueError, match="--dataset-seed 3"):
        finetuned_dataset_seed(tmp_path, 0, force=False)
    assert finetuned_dataset_seed(tmp_path, 0, force=True) == 0
    assert finetuned_dataset_seed(tmp_path / "elsewhere", None, force=False) == 0
