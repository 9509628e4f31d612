"""Dataloaders: dynamic padding, seeded shuffling, regression labels, multiple choice."""
from __future__ import annotations

import copy

import datasets
import pytest
import torch

from benchmarks.tasks import sources as data
from benchmarks.tasks.loaders import load_splits, make_dataloaders, tokenize_split
from benchmarks.tasks.registry import get_task
from benchmarks.tasks.sources import load_official_splits

# ------------------------------------------------------------------------------------------- dataloaders


@pytest.fixture(scope="module")
def tokenizer():
    from supernet.loading import load_tokenizer

    return load_tokenizer(None)


def test_dataloaders_dynamic_padding(glue_dir, tokenizer):
    splits = load_splits(get_task("rte"), glue_dir, seed=0)
    loaders = make_dataloaders(get_task("rte"), splits, tokenizer, batch_size=32, eval_batch_size=8)
    assert set(loaders) == {"train", "validation", "test"}
    assert len(next(iter(loaders["train"]))["labels"]) == 32
    test_batches = list(loaders["test"])
    assert [len(b["labels"]) for b in test_batches] == [8] * 34 + [5]
    lengths = []
    for batch in test_batches:
        assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
        assert batch["labels"].dtype == torch.long
        longest = int(batch["attention_mask"].sum(1).max())
        assert batch["input_ids"].shape[1] == longest <= 128  # padded to the longest in the batch
        padding = batch["attention_mask"] == 0
        assert (batch["input_ids"][padding] == tokenizer.pad_token_id).all()
        lengths.append(longest)
    assert min(lengths) < 128 and max(lengths) == 128  # long RTE premises are truncated to 128
    assert lengths == sorted(lengths, reverse=True)  # evaluation batches go longest first
    order = loaders["test"].sampler.order
    first = test_batches[0]
    expected = tokenizer(splits["test"][int(order[0])]["sentence1"], splits["test"][int(order[0])]["sentence2"],
                         truncation=True, max_length=128)
    assert first["input_ids"][0, : len(expected["input_ids"])].tolist() == expected["input_ids"]
    assert first["labels"].tolist() == [list(splits["test"]["label"])[int(i)] for i in order[:8]]
    # in the dataset's order when asked: the first batch holds the first examples
    unsorted = next(iter(make_dataloaders(get_task("rte"), splits, tokenizer, batch_size=32, eval_batch_size=8,
                                          sort_eval_by_length=False)["test"]))
    assert unsorted["labels"].tolist() == list(splits["test"]["label"])[:8]


def test_length_sorted_evaluation_pads_less_and_scores_the_same(glue_dir, tokenizer, tiny_bert_dir):
    """Sorting evaluation batches by length changes the padding, not the metrics (up to float summation noise), and
    predictions come back in the dataset's order."""
    from benchmarks.tasks.metrics import metrics_fn
    from supernet.evaluation import evaluate
    from supernet.loading import load_model
    from supernet.precision import Precision

    task = get_task("rte")
    splits = load_splits(task, glue_dir, seed=0, max_valid_samples=96)
    splits = datasets.DatasetDict(validation=splits["validation"])
    model = load_model(str(tiny_bert_dir), num_labels=2).eval()
    for precision in (Precision("fp32"), Precision("bf16")):
        scored = {}
        for sort in (True, False):
            loader = make_dataloaders(task, splits, tokenizer, batch_size=16, sort_eval_by_length=sort)["validation"]
            tokens = sum(int(batch["input_ids"].numel()) for batch in loader)
            scored[sort] = (evaluate(model, loader, metrics_fn=metrics_fn(task), precision=precision), tokens)
        (sorted_result, sorted_tokens), (plain_result, plain_tokens) = scored[True], scored[False]
        assert sorted_tokens < 0.8 * plain_tokens  # much less padding
        assert (sorted_result.labels == plain_result.labels).all()
        assert (sorted_result.predictions == plain_result.predictions).all()
        tolerance = 1e-5 if precision.name == "fp32" else 5e-2
        assert abs(sorted_result.logits - plain_result.logits).max() < tolerance
        for name, value in plain_result.metrics.items():
            assert sorted_result.metrics[name] == pytest.approx(value, abs=1e-9)


def test_length_grouped_training_batches_are_shuffled_seeded_and_pad_less(glue_dir, tokenizer):
    from benchmarks.tasks.loaders import LENGTH_GROUP_BATCHES, LengthGroupedSampler, example_lengths

    splits = datasets.DatasetDict(train=load_splits(get_task("rte"), glue_dir, seed=0, max_train_samples=400)["train"])

    def epochs(group: bool, seed: int = 1, batch_size: int = 4) -> list[list[list[int]]]:
        loader = make_dataloaders(get_task("rte"), splits, tokenizer, batch_size=batch_size, seed=seed,
                                  group_by_length=group)["train"]
        return [[batch["attention_mask"].sum(1).tolist() for batch in loader] for _ in range(2)]

    grouped, plain = epochs(True), epochs(False)
    assert grouped == epochs(True) and grouped != epochs(True, seed=2)  # seeded
    assert grouped[0] != grouped[1]  # a new order every epoch
    lengths = sorted(example_lengths(make_dataloaders(get_task("rte"), splits, tokenizer, batch_size=4)["train"]
                                     .dataset).tolist())
    for epoch in grouped:
        assert sorted(length for batch in epoch for length in batch) == lengths  # every example once
    padded = {name: sum(max(batch) * len(batch) for batch in run[0]) for name, run in (("grouped", grouped),
                                                                                       ("plain", plain))}
    assert padded["grouped"] < 0.8 * padded["plain"]
    # one group holds LENGTH_GROUP_BATCHES batches; here the 400 examples are 2 groups, each sorted longest first
    sampler = LengthGroupedSampler(torch.tensor([1, 2, 3]).numpy(), 1, torch.Generator().manual_seed(0))
    assert sorted(sampler) == [0, 1, 2] and len(sampler) == 3 and LENGTH_GROUP_BATCHES * 4 == 200
    first_group = [length for batch in grouped[0][:LENGTH_GROUP_BATCHES] for length in batch]
    assert first_group == sorted(first_group, reverse=True)


def test_min_train_words_keeps_long_training_examples_only(glue_dir):
    """SST-2: the filter runs on the training part before the cap; validation and test are untouched."""
    from benchmarks.tasks.loaders import DataSettings, task_splits

    spec = get_task("sst2")
    plain = load_splits(spec, glue_dir, seed=0)
    long = load_splits(spec, glue_dir, seed=0, min_train_words=10)
    words = [len(text.split()) for text in plain["train"]["sentence"]]
    assert len(plain["train"]) == 47144 and len(long["train"]) == sum(w >= 10 for w in words) == 17679
    assert min(len(text.split()) for text in long["train"]["sentence"]) == 10
    assert long["train"]["sentence"] == [t for t, w in zip(plain["train"]["sentence"], words) if w >= 10]
    assert long["validation"]["sentence"] == plain["validation"]["sentence"]
    assert long["test"]["sentence"] == plain["test"]["sentence"]
    capped = task_splits(spec, DataSettings(data_dir=str(glue_dir), max_train_samples=500, min_train_words=10))
    assert len(capped["train"]) == 500 and min(len(t.split()) for t in capped["train"]["sentence"]) >= 10
    assert set(capped["train"]["sentence"]) <= set(long["train"]["sentence"])
    # recorded in the data identity only when set, so runs from before the option still resume
    assert DataSettings(min_train_words=10).identity()["min_train_words"] == 10
    assert "min_train_words" not in DataSettings().identity()
    with pytest.raises(ValueError, match="task .sst2. has 1000 words or more; lower --min-train-words"):
        load_splits(spec, glue_dir, seed=0, min_train_words=1000)


def test_min_train_words_counts_both_texts_of_a_pair(glue_dir):
    from benchmarks.tasks.loaders import example_words

    spec = get_task("rte")
    train = load_splits(spec, glue_dir, seed=0)["train"].select(range(3))
    expected = [len(a.split()) + len(b.split()) for a, b in zip(train["sentence1"], train["sentence2"])]
    assert example_words(spec, train).tolist() == expected


def test_train_loader_shuffles_with_seed(glue_dir, tokenizer):
    splits = datasets.DatasetDict(train=load_splits(get_task("rte"), glue_dir, seed=0, max_train_samples=64)["train"])

    def first_epoch_labels(**kwargs):
        loader = make_dataloaders(get_task("rte"), splits, tokenizer, batch_size=64, **kwargs)["train"]
        return [next(iter(loader))["input_ids"][:, 1].tolist() for _ in range(2)]

    same_a, same_b = first_epoch_labels(seed=1), first_epoch_labels(seed=1)
    other = first_epoch_labels(seed=2)
    unshuffled = first_epoch_labels(shuffle_train=False)
    assert same_a == same_b  # same seed, same orders
    assert same_a[0] != same_a[1]  # a new order every epoch
    assert same_a[0] != other[0]
    assert unshuffled[0] == unshuffled[1]
    assert sorted(same_a[0]) == sorted(unshuffled[0])


def test_regression_labels_and_no_token_type_ids(glue_dir, tokenizer):
    test = load_official_splits(get_task("stsb"), glue_dir)["test"].select(range(10))
    no_types = copy.deepcopy(tokenizer)
    no_types.model_input_names = ["input_ids", "attention_mask"]
    batch = next(iter(make_dataloaders(get_task("stsb"), {"test": test}, no_types, batch_size=4,
                                       sort_eval_by_length=False)["test"]))
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    assert batch["labels"].dtype == torch.float32
    assert batch["labels"].tolist() == pytest.approx([5.0, 4.75, 5.0, 2.4])


def test_multiple_choice_batches(tokenizer):
    swag = get_task("swag")
    rows = {
        "sent1": ["A man sits down.", "She runs."],
        "sent2": ["He", "The dog"],
        "ending0": ["eats.", "barks loudly at the mailman who runs away."],
        "ending1": ["sleeps.", "sits."],
        "ending2": ["reads.", "jumps."],
        "ending3": ["leaves.", "runs."],
        "label": [1, 3],
    }
    dataset = datasets.Dataset.from_dict(rows, features=data.task_features(swag))
    tokenized = tokenize_split(swag, dataset, tokenizer)
    assert tokenized[0]["input_ids"][1] == tokenizer("A man sits down.", "He sleeps.")["input_ids"]
    batch = next(iter(make_dataloaders(swag, {"test": dataset}, tokenizer, batch_size=2)["test"]))
    longest = max(len(ids) for example in tokenized.columns["input_ids"] for ids in example)
    assert batch["input_ids"].shape == (2, 4, longest)
    # evaluation batches go longest first (the second example has the longest choice)
    assert batch["labels"].tolist() == [3, 1]
    assert batch["attention_mask"][1].sum(1).tolist() == [len(ids) for ids in tokenized[0]["input_ids"]]


def test_tokenizer_without_pad_token_is_rejected(tokenizer):
    no_pad = copy.deepcopy(tokenizer)
    no_pad.pad_token = None
    with pytest.raises(ValueError, match="no pad token"):
        make_dataloaders(get_task("rte"), {}, no_pad, batch_size=2)


@pytest.mark.parametrize("command", ["finetune", "train-supernet", "prune", "nas"])
def test_min_train_words_reaches_every_training_command(command):
    """``--min-train-words`` is what each command's training data settings read (fine-tuning, super-network,
    RFP's and layer dropping's training examples, every standard-NAS trial)."""
    from benchmarks.cli import COMMANDS, build_parser
    from benchmarks.commands.options import data_settings
    from benchmarks.nas.common import NasSettings
    from benchmarks.prune.context import PruneSettings

    argv = ["--task", "sst2", "--output-dir", "out", "--min-train-words", "10"]
    if command == "prune":
        argv += ["--method", "rfp", "--finetuned", "ft"]
    args = build_parser(command, COMMANDS[command]).parse_args(argv)
    if command == "prune":
        data = PruneSettings.from_args(args).data(0)
    elif command == "nas":
        data = NasSettings.from_args(args).protocol.data(None)
    else:
        data = data_settings(args)
    assert data.min_train_words == 10
    assert data.identity()["min_train_words"] == 10
