"""Loading a task's splits: the offline GLUE copy (70/30 split, caps), fake local and hub copies."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import datasets
import pytest
import torch

from benchmarks.tasks.loaders import load_splits, split_train_validation, subsample
from benchmarks.tasks.registry import get_task
from benchmarks.tasks.sources import data_source, load_official_splits

# ------------------------------------------------------------------------------- the offline GLUE copy


@pytest.mark.parametrize(
    "name, n_train, n_test, test_labels, first_test_text",
    [
        ("rte", 2490, 277, {0: 146, 1: 131}, "Dana Reeve, the widow of the actor Christopher Reeve"),
        ("mrpc", 3668, 408, {1: 279, 0: 129}, "He said the foodservice pie business doesn 't fit"),
        ("cola", 8551, 1043, {1: 721, 0: 322}, "The sailors rode the breeze clear of the rocks."),
        ("sst2", 67349, 872, {1: 444, 0: 428}, "it 's a charming and often affecting journey . "),
        ("stsb", 5749, 1500, None, "A man with a hard hat is dancing."),
    ],
)
def test_official_splits_offline(glue_dir, name, n_train, n_test, test_labels, first_test_text):
    spec = get_task(name)
    official = load_official_splits(get_task(name), data_dir=glue_dir)
    assert (len(official["train"]), len(official["test"])) == (n_train, n_test)
    assert official["test"].column_names == list(spec.columns)
    assert official["test"][0][spec.text_columns[0]].startswith(first_test_text)
    if test_labels is not None:
        assert Counter(official["test"]["label"]) == test_labels


def test_official_train_label_counts(glue_dir):
    # The README's counts: RTE 1249 entailment (0) / 1241 not; MRPC 2474 / 1194; CoLA 6023 / 2528.
    assert Counter(load_official_splits(get_task("rte"), glue_dir)["train"]["label"]) == {0: 1249, 1: 1241}
    assert Counter(load_official_splits(get_task("mrpc"), glue_dir)["train"]["label"]) == {1: 2474, 0: 1194}
    assert Counter(load_official_splits(get_task("cola"), glue_dir)["train"]["label"]) == {1: 6023, 0: 2528}


def test_quotes_and_bom_survive(glue_dir):
    mrpc = load_official_splits(get_task("mrpc"), glue_dir)["test"]
    # A field starting with an unbalanced quote stays one field (quoting off).
    assert mrpc[0]["sentence2"] == '" The foodservice pie business does not fit our long-term growth strategy .'
    assert mrpc[0]["label"] == 1


def test_stsb_scores_are_floats(glue_dir):
    splits = load_official_splits(get_task("stsb"), glue_dir)
    assert splits["test"].features["label"] == datasets.Value("float32")
    assert splits["test"][0]["label"] == 5.0 and splits["test"][1]["label"] == 4.75
    scores = torch.tensor(list(splits["train"]["label"]))
    assert 0.0 <= scores.min() < 0.5 and 4.5 < scores.max() <= 5.0


def test_rte_splits_70_30(glue_dir):
    splits = load_splits(get_task("rte"), data_dir=glue_dir, seed=0)
    assert {split: len(ds) for split, ds in splits.items()} == {"train": 1743, "validation": 747, "test": 277}
    assert Counter(splits["test"]["label"]) == {0: 146, 1: 131}
    labels = Counter(splits["train"]["label"]) + Counter(splits["validation"]["label"])
    assert labels == {0: 1249, 1: 1241}


def _rows(dataset: datasets.Dataset) -> list[tuple]:
    return list(dataset.to_pandas().itertuples(index=False, name=None))


def test_split_is_deterministic_partition_and_seed_dependent(glue_dir):
    official = load_official_splits(get_task("mrpc"), glue_dir)["train"]
    a = load_splits(get_task("mrpc"), glue_dir, seed=3)
    b = load_splits(get_task("mrpc"), glue_dir, seed=3)
    c = load_splits(get_task("mrpc"), glue_dir, seed=4)
    assert _rows(a["train"]) == _rows(b["train"]) and _rows(a["validation"]) == _rows(b["validation"])
    assert _rows(a["train"]) != _rows(c["train"])
    assert Counter(_rows(a["train"])) + Counter(_rows(a["validation"])) == Counter(_rows(official))
    assert (len(a["train"]), len(a["validation"])) == (2568, 1100)


def test_split_train_validation_on_indices():
    dataset = datasets.Dataset.from_dict({"i": list(range(10))})
    train, valid = split_train_validation(dataset, seed=0, train_fraction=0.7)
    assert len(train) == 7 and len(valid) == 3
    assert sorted(list(train["i"]) + list(valid["i"])) == list(range(10))
    assert list(train["i"]) == sorted(train["i"])  # original order kept
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        split_train_validation(dataset, seed=0, train_fraction=1.0)


def test_caps_on_large_task(glue_dir):
    default = load_splits(get_task("sst2"), glue_dir, seed=0)
    assert [len(default[s]) for s in ("train", "validation", "test")] == [47144, 2048, 872]
    uncapped = load_splits(get_task("sst2"), glue_dir, seed=0, max_valid_samples=None, max_train_samples=500)
    assert [len(uncapped[s]) for s in ("train", "validation", "test")] == [500, 20205, 872]
    # The validation cap is a subset of the uncapped validation split, unchanged by the train cap.
    assert set(_rows(default["validation"])) <= set(_rows(uncapped["validation"]))
    assert set(_rows(uncapped["train"])) <= set(_rows(default["train"]))


def test_caps_on_small_task(glue_dir):
    assert len(load_splits(get_task("rte"), glue_dir, max_valid_samples="auto")["validation"]) == 747
    splits = load_splits(get_task("rte"), glue_dir, max_valid_samples=100, max_train_samples=10_000)
    assert (len(splits["train"]), len(splits["validation"])) == (1743, 100)
    with pytest.raises(ValueError, match="max_valid_samples must be"):
        load_splits(get_task("rte"), glue_dir, max_valid_samples="all")


def test_subsample_rejects_non_positive_cap():
    dataset = datasets.Dataset.from_dict({"i": list(range(5))})
    assert list(subsample(dataset, 5, seed=0)["i"]) == list(range(5))
    with pytest.raises(ValueError, match="must be positive"):
        subsample(dataset, 0, seed=0)


def test_qnli_missing_train_file(glue_dir):
    with pytest.raises(FileNotFoundError, match=r"lacks .*QNLI/train\.tsv.*nyu-mll/glue"):
        load_splits(get_task("qnli"), glue_dir)


def test_missing_folder_and_data_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no folder .*RTE; data_dir must hold RTE/train.tsv, RTE/dev.tsv"):
        load_splits(get_task("rte"), tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_splits(get_task("rte"), tmp_path / "nowhere")


@pytest.mark.parametrize("name, expected", [("swag", r"swag/train\.csv.*allenai/swag"), ("imdb", "aclImdb/train")])
def test_hub_only_tasks_without_local_files(glue_dir, name, expected):
    with pytest.raises(FileNotFoundError, match=expected):
        load_splits(get_task(name), glue_dir)


def test_glue_dir_env(glue_dir, monkeypatch):
    monkeypatch.setenv("GLUE_DIR", str(glue_dir))
    assert data_source(get_task("rte")) == "local"
    assert data_source(get_task("swag")) == "hub"  # GLUE_DIR names a GLUE copy only
    assert len(load_splits(get_task("rte"))["test"]) == 277
    monkeypatch.delenv("GLUE_DIR")
    assert data_source(get_task("rte")) == "hub"
    assert data_source(get_task("rte"), glue_dir) == "local"


# ------------------------------------------------------------------------- fake local and hub copies


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_mnli_and_qqp_local_layout(tmp_path):
    header = "index\tpromptID\tpairID\tgenre\tsentence1\tsentence2\tlabel1\tgold_label\n"
    rows = [
        ("A man eats.", "Someone eats.", "entailment"),
        ('He said " no.', "He agreed.", "contradiction"),
        ("It rains.", "It is cold.", "neutral"),
    ]
    body = "".join(f"{i}\t0\t0\tfiction\t{a}\t{b}\t{g}\t{g}\n" for i, (a, b, g) in enumerate(rows))
    _write(tmp_path / "MNLI" / "train.tsv", header + body * 4)
    _write(tmp_path / "MNLI" / "dev_matched.tsv", header + body)
    splits = load_splits(get_task("mnli"), tmp_path, seed=0)
    assert (len(splits["train"]), len(splits["validation"]), len(splits["test"])) == (8, 4, 3)
    assert list(splits["test"]["label"]) == [0, 2, 1]
    assert splits["test"][1]["premise"] == 'He said " no.'

    qqp = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n0\t1\t2\tWhy?\tHow?\t0\n1\t3\t4\tWhat?\tWhat?\t1\n"
    _write(tmp_path / "QQP" / "train.tsv", qqp + "2\t5\t6\tbroken row\n")
    _write(tmp_path / "QQP" / "dev.tsv", qqp)
    with pytest.warns(UserWarning, match="skipped 1 of 3 rows"):
        official = load_official_splits(get_task("qqp"), tmp_path)
    assert list(official["train"]["question1"]) == ["Why?", "What?"]
    assert list(official["test"]["label"]) == [0, 1]


def test_unknown_label_string(tmp_path):
    _write(tmp_path / "RTE" / "train.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n")
    _write(tmp_path / "RTE" / "dev.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n")
    with pytest.raises(ValueError, match=r"unknown labels \['maybe'\].*entailment, not_entailment"):
        load_official_splits(get_task("rte"), tmp_path)


def test_swag_and_imdb_local_layouts(tmp_path):
    header = ",video-id,fold-ind,startphrase,sent1,sent2,gold-source,ending0,ending1,ending2,ending3,label\n"
    row = '0,v,1,"She opens, then",She opens,then,gold,"a, b",c,d,e,{}\n'
    _write(tmp_path / "swag" / "train.csv", header + "".join(row.format(i % 4) for i in range(10)))
    _write(tmp_path / "swag" / "val.csv", header + row.format(2))
    official = load_official_splits(get_task("swag"), tmp_path)
    assert official["test"][0] == {
        "sent1": "She opens", "sent2": "then", "ending0": "a, b", "ending1": "c", "ending2": "d", "ending3": "e",
        "label": 2,
    }
    assert len(official["train"]) == 10

    for split in ("train", "test"):
        for label, count in (("neg", 2), ("pos", 3)):
            for i in range(count):
                _write(tmp_path / "aclImdb" / split / label / f"{i}_1.txt", f"{label} review {i}")
    imdb = load_official_splits(get_task("imdb"), tmp_path)
    assert Counter(imdb["test"]["label"]) == {0: 2, 1: 3}
    assert imdb["train"][0] == {"text": "neg review 0", "label": 0}


def test_hub_path_normalises_columns(monkeypatch):
    calls = []

    def fake_load_dataset(path, name=None, **kwargs):
        calls.append((path, name))
        features = datasets.Features(
            {
                "premise": datasets.Value("string"),
                "hypothesis": datasets.Value("string"),
                "label": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"]),
                "idx": datasets.Value("int32"),
            }
        )

        def split(n, label):
            return datasets.Dataset.from_dict(
                {"premise": ["p"] * n, "hypothesis": ["h"] * n, "label": [label] * n, "idx": list(range(n))},
                features=features,
            )

        return datasets.DatasetDict(
            train=split(10, 0),
            validation_matched=split(3, 1),
            validation_mismatched=split(4, 2),
            test_matched=split(5, 0),
        )

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.delenv("GLUE_DIR", raising=False)
    splits = load_splits(get_task("mnli"), seed=0)
    assert calls == [("nyu-mll/glue", "mnli")]
    assert splits["test"].column_names == ["premise", "hypothesis", "label"]
    assert list(splits["test"]["label"]) == [1, 1, 1]  # validation_matched, not the unlabeled test
    assert (len(splits["train"]), len(splits["validation"])) == (7, 3)


def test_hub_offline_error_names_local_alternative(monkeypatch):
    def offline(path, name=None, **kwargs):
        raise ConnectionError("Couldn't reach 'nyu-mll/glue' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    monkeypatch.delenv("GLUE_DIR", raising=False)
    with pytest.raises(ConnectionError, match="pass data_dir or set GLUE_DIR"):
        load_splits(get_task("rte"))
