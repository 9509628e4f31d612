"""Task registry: the paper's tasks and their specs, names and errors, and custom tasks from your own files."""
from __future__ import annotations

import json

import pytest

from benchmarks.tasks.custom import custom_task
from benchmarks.tasks.loaders import load_splits
from benchmarks.tasks.metrics import METRICS
from benchmarks.tasks.registry import METRIC_NAMES, TASK_NAMES, TaskSpec, get_task
from benchmarks.tasks.sources import load_official_splits

# ------------------------------------------------------------------------------------------------ registry


def test_registry_holds_the_papers_tasks():
    assert set(TASK_NAMES) == {"rte", "mrpc", "cola", "stsb", "sst2", "qnli", "mnli", "qqp", "imdb", "swag"}
    assert set(METRIC_NAMES) == set(METRICS)


@pytest.mark.parametrize(
    "name, main, others, num_labels, large",
    [
        ("rte", "accuracy", (), 2, False),
        ("mrpc", "f1", ("accuracy",), 2, False),
        ("cola", "mcc", ("accuracy",), 2, False),
        ("stsb", "spearman", ("pearson",), 1, False),
        ("sst2", "accuracy", (), 2, True),
        ("qnli", "accuracy", (), 2, True),
        ("mnli", "accuracy", (), 3, True),
        ("qqp", "f1", ("accuracy",), 2, True),
        ("imdb", "accuracy", (), 2, True),
        ("swag", "accuracy", (), 4, True),
    ],
)
def test_task_specs(name, main, others, num_labels, large):
    spec = get_task(name)
    assert (spec.main_metric, spec.other_metrics, spec.num_labels, spec.large) == (main, others, num_labels, large)
    assert spec.default_max_valid_samples == (2048 if large else None)
    assert spec.is_regression == (name == "stsb")
    assert spec.head == ("multiple-choice" if name == "swag" else "sequence-classification")


def test_specific_fields():
    assert get_task("stsb").problem_type == "regression"
    assert get_task("rte").problem_type == "single_label_classification"
    assert get_task("rte").label_names == ("entailment", "not_entailment")
    swag = get_task("swag")
    assert swag.num_choices == 4
    assert swag.columns == ("sent1", "sent2", "ending0", "ending1", "ending2", "ending3", "label")
    assert (swag.hub_path, swag.hub_name) == ("allenai/swag", "regular")
    assert (get_task("mnli").hub_test_split, get_task("mnli").local.files["test"]) == (
        "validation_matched",
        "dev_matched.tsv",
    )
    assert (get_task("cola").hub_path, get_task("cola").hub_name) == ("nyu-mll/glue", "cola")


def test_get_task_aliases_and_passthrough():
    assert get_task("SST-2") is get_task("sst2")
    assert get_task("STS-B").name == "stsb"
    spec = get_task("rte")
    assert get_task(spec) is spec


def test_unknown_task_names_valid_tasks():
    with pytest.raises(ValueError, match=r"unknown task 'sst5'.*rte, mrpc, cola, stsb, sst2.*swag"):
        get_task("sst5")


def test_bad_spec_is_rejected():
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        TaskSpec(name="x", text_columns=("t",), num_labels=2, main_metric="auc")
    with pytest.raises(ValueError, match="unknown head"):
        TaskSpec(name="x", text_columns=("t",), num_labels=2, head="token-classification")
    with pytest.raises(ValueError, match="3 text columns"):
        TaskSpec(name="x", text_columns=("a", "b", "c"), num_labels=2)



# -------------------------------------------------------------------------------------------- custom tasks


def test_custom_task_from_csv(tmp_path):
    train = tmp_path / "train.csv"
    test = tmp_path / "test.csv"
    moods = ["pos", "neg", "neutral", "pos", "neg"] * 4
    train.write_text("text,mood\n" + "".join(f'"review, number {i}",{m}\n' for i, m in enumerate(moods)))
    test.write_text("text,mood\ngreat,pos\nawful,neg\nfine,neutral\n")
    spec = custom_task("reviews", {"train": train, "test": test}, text_columns="text", label_column="mood")
    assert spec.label_names == ("neg", "neutral", "pos") and spec.num_labels == 3
    assert spec.metrics == ("accuracy",)
    with pytest.raises(ValueError, match="unknown task 'reviews'"):
        get_task("reviews")  # nothing registered globally
    splits = load_splits(spec, seed=0)
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [14, 6, 3]
    assert list(splits["test"]["label"]) == [2, 0, 1]
    assert splits["test"].column_names == ["text", "label"]
    assert "review, number" in splits["train"][0]["text"]


def test_custom_regression_from_jsonl_with_validation(tmp_path):
    def write_jsonl(path, n):
        path.write_text("".join(json.dumps({"a": f"q{i}", "b": f"d{i}", "score": i / 2}) + "\n" for i in range(n)))
        return path

    files = {"train": write_jsonl(tmp_path / "tr.jsonl", 8), "validation": write_jsonl(tmp_path / "va.jsonl", 3),
             "test": write_jsonl(tmp_path / "te.jsonl", 2)}
    spec = custom_task("pairs", files, text_columns=["a", "b"], label_column="score", regression=True)
    assert (spec.num_labels, spec.main_metric, spec.other_metrics) == (1, "spearman", ("pearson",))
    splits = load_splits(spec)
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [8, 3, 2]
    assert list(splits["validation"]["label"]) == [0.0, 0.5, 1.0]
    assert splits["test"][1] == {"a": "q1", "b": "d1", "label": 0.5}


def test_custom_task_binary_json_array_and_list_of_files(tmp_path):
    rows = [{"s": f"x{i}", "y": i % 2} for i in range(6)]
    (tmp_path / "train.json").write_text(json.dumps(rows))
    (tmp_path / "test.tsv").write_text("s\ty\nhello\t1\n")
    spec = custom_task("bin", [tmp_path / "train.json", tmp_path / "test.tsv"], "s", "y", main_metric="f1")
    assert spec.label_names == ("0", "1") and spec.metrics == ("f1", "accuracy", "mcc")
    assert list(load_official_splits(spec)["test"]["label"]) == [1]


def test_custom_task_bad_input(tmp_path):
    (tmp_path / "a.csv").write_text("text,label\nx,1\ny,0\n")
    with pytest.raises(ValueError, match=r"lacks the columns \['sentence'\]; it has text, label"):
        custom_task("c", [tmp_path / "a.csv", tmp_path / "a.csv"], "sentence", "label")
    with pytest.raises(ValueError, match="unknown file type '.xlsx'"):
        custom_task("c", [tmp_path / "a.xlsx", tmp_path / "a.csv"], "text", "label")
    with pytest.raises(ValueError, match="lacks the test split"):
        custom_task("c", {"train": tmp_path / "a.csv"}, "text", "label")
    with pytest.raises(FileNotFoundError, match="no such file"):
        custom_task("c", [tmp_path / "b.csv", tmp_path / "a.csv"], "text", "label")
