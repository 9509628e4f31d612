"""The Trainer (one optimiser step per batch, exact resume), evaluation, and the finetune/train-supernet runners."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset
from transformers import AutoModelForSequenceClassification

from benchmarks.tasks.registry import get_task
from search_spaces import get_search_space
from supernet.evaluation import evaluate
from supernet.model import SuperNetwork
from supernet.strategies import get_strategy
from supernet.training import CHECKPOINT_FILE, Trainer, TrainerCallback, TrainerConfig

from conftest import save_tiny_bert, tiny_bert_supernet

VOCAB = 60

pytestmark = pytest.mark.usefixtures("one_thread")


class TokenDataset(Dataset):
    """Random token sequences whose label is whether the first token is in the upper half of the vocabulary."""

    def __init__(self, size: int, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.input_ids = torch.randint(1, VOCAB, (size, 8), generator=gen)
        self.labels = (self.input_ids[:, 0] >= VOCAB // 2).long()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.input_ids[index], "labels": self.labels[index]}


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    batch = {key: torch.stack([item[key] for item in items]) for key in items[0]}
    batch["attention_mask"] = torch.ones_like(batch["input_ids"])
    return batch


def train_loader(size: int = 24) -> DataLoader:
    return DataLoader(
        TokenDataset(size, seed=0), batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(7),
        collate_fn=collate,
    )


def valid_loader() -> DataLoader:
    return DataLoader(TokenDataset(12, seed=1), batch_size=5, collate_fn=collate)


def tiny_supernet() -> SuperNetwork:
    return tiny_bert_supernet(
        vocab_size=VOCAB, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=24,
        max_position_embeddings=16, num_labels=2, initializer_range=0.3,
        hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.2,
    )


class Validate(TrainerCallback):
    def on_epoch_end(self, trainer: Trainer, epoch: int) -> dict[str, float]:
        result = evaluate(trainer.supernet, valid_loader())
        return {"valid_accuracy": float((result.predictions == result.labels).mean())}


class Killed(Exception):
    """Stands in for a killed process."""


def make_trainer(checkpoint_dir, epochs: int = 2, kill_at_step: int | None = None, strategy: str = "sandwich"):
    """Fresh objects, as a new process would build them; optionally dying at one training step."""
    supernet = tiny_supernet()
    chosen = get_strategy(strategy, get_search_space("small", supernet.shape))
    if kill_at_step is not None:
        original = chosen.step_loss

        def step_loss(supernet, batch, step, total_steps, rng, **kwargs):
            if step == kill_at_step:
                raise Killed
            return original(supernet, batch, step, total_steps, rng, **kwargs)

        chosen.step_loss = step_loss
    config = TrainerConfig(epochs=epochs, lr=3e-3, warmup_ratio=0.2, seed=0, device="cpu", progress=False)
    return Trainer(supernet, chosen, train_loader(), config, checkpoint_dir=checkpoint_dir, callbacks=[Validate()])


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in trainer.supernet.state_dict().items()}


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def without_times(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in record.items() if not k.endswith("_time_s")} for record in history]


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    trainer = make_trainer(tmp_path_factory.mktemp("straight"))
    history = trainer.fit()
    return weights(trainer), history, trainer


def test_one_optimiser_step_per_batch_and_linear_schedule(tmp_path):
    trainer = make_trainer(tmp_path, epochs=2)
    calls = []
    trainer.optimizer.register_step_pre_hook(lambda *_: calls.append(trainer.scheduler.get_last_lr()[0]))
    before = weights(trainer)
    trainer.fit()
    assert len(calls) == 2 * len(trainer.train_loader) == 12 == trainer.step
    # Warm-up over ceil(0.2 * 12) = 3 steps to lr=3e-3, then linear decay to 0.
    np.testing.assert_allclose(calls[:4], [0.0, 1e-3, 2e-3, 3e-3], atol=1e-12)
    np.testing.assert_allclose(calls[-1], 3e-3 / 9, rtol=1e-6)
    assert trainer.scheduler.get_last_lr()[0] == 0.0
    assert any(not torch.equal(before[k], v) for k, v in weights(trainer).items())
    assert [record["epoch"] for record in trainer.history] == [1, 2]
    assert all("valid_accuracy" in record and "train_loss" in record for record in trainer.history)


@pytest.mark.parametrize("kill_at_step", [6, 8], ids=["between-epochs", "inside-epoch-2"])
def test_resume_reproduces_an_uninterrupted_run(tmp_path, straight_run, kill_at_step):
    straight_weights, straight_history, _ = straight_run
    with pytest.raises(Killed):
        make_trainer(tmp_path, kill_at_step=kill_at_step).fit()
    saved = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)
    assert saved["epoch"] == 1 and saved["step"] == 6
    resumed = make_trainer(tmp_path)
    history = resumed.fit(resume=True)
    assert_same_weights(weights(resumed), straight_weights)
    assert without_times(history) == without_times(straight_history)


@pytest.mark.parametrize("part", ["torch", "strategy", "loader"])
def test_resume_needs_every_random_state(tmp_path, straight_run, part):
    """Control: perturbing one saved random state changes the result, so the equivalence test can fail."""
    straight_weights = straight_run[0]
    with pytest.raises(Killed):
        make_trainer(tmp_path, kill_at_step=6).fit()
    path = tmp_path / CHECKPOINT_FILE
    state = torch.load(path, weights_only=True)
    other = {
        "torch": lambda: torch.Generator().manual_seed(123).get_state(),
        "strategy": lambda: np.random.default_rng(123).bit_generator.state,
        "loader": lambda: [torch.Generator().manual_seed(123).get_state()],
    }
    state["rng"][part] = other[part]()
    torch.save(state, path)
    resumed = make_trainer(tmp_path)
    resumed.fit(resume=True)
    assert any(not torch.equal(straight_weights[k], v) for k, v in weights(resumed).items())


def test_resume_of_a_finished_run_trains_nothing(tmp_path):
    trainer = make_trainer(tmp_path, epochs=1)
    trainer.fit()
    again = make_trainer(tmp_path, epochs=1)
    again.optimizer.step = lambda *a, **k: pytest.fail("a finished run must not train again")
    history = again.fit(resume=True)
    assert len(history) == 1
    assert_same_weights(weights(again), weights(trainer))


def test_resume_rejects_a_checkpoint_of_other_data_or_strategy(tmp_path):
    with pytest.raises(Killed):
        make_trainer(tmp_path, kill_at_step=6).fit()
    other = make_trainer(tmp_path, strategy="random")
    with pytest.raises(ValueError, match="strategy 'sandwich'"):
        other.fit(resume=True)
    longer = make_trainer(tmp_path, epochs=3)
    with pytest.raises(ValueError, match="epochs: 2 -> 3"):
        longer.fit(resume=True)
    smaller = make_trainer(tmp_path)
    smaller.train_loader = train_loader(size=20)
    smaller.steps_per_epoch = len(smaller.train_loader)
    with pytest.raises(ValueError, match="batches per epoch"):
        smaller.fit(resume=True)


def test_evaluate_scores_a_sub_network_and_restores_the_model_state():
    supernet = tiny_supernet()
    space = get_search_space("small", supernet.shape)
    masks = space.to_masks(space.midpoint())
    supernet.train()
    result = evaluate(supernet, valid_loader(), masks=masks, metrics_fn=lambda p, y: {"acc": float((p == y).mean())})
    assert supernet.training and supernet.active_masks is None
    supernet.eval()
    with torch.no_grad(), supernet.sub_network(masks):
        logits = torch.cat([supernet(**{k: v for k, v in b.items() if k != "labels"}).logits for b in valid_loader()])
    np.testing.assert_allclose(result.logits, logits.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(result.predictions, logits.argmax(-1).numpy())
    np.testing.assert_array_equal(result.labels, TokenDataset(12, seed=1).labels.numpy())
    assert result.metrics["acc"] == pytest.approx(float((result.predictions == result.labels).mean()))
    full = evaluate(supernet, valid_loader())
    assert not np.allclose(full.logits, result.logits)


def test_trainer_config_rejects_bad_values():
    with pytest.raises(ValueError, match="epochs"):
        TrainerConfig(epochs=0)
    with pytest.raises(ValueError, match="warmup_ratio"):
        TrainerConfig(warmup_ratio=1.5)


# ------------------------------------------------------------------------------------ runners, end to end


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A tiny random BERT (BERT's default initializer_range) with the real MiniLM tokenizer, saved like a checkpoint."""
    return save_tiny_bert(
        tmp_path_factory.mktemp("tiny-bert"), hidden_size=16, num_attention_heads=2, intermediate_size=32,
        initializer_range=0.02,
    )


def parse(module, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(argv)


def common_argv(model_dir, glue_dir, output_dir, epochs: int) -> list[str]:
    return [
        "--model", str(model_dir), "--task", "rte", "--data-dir", str(glue_dir), "--output-dir", str(output_dir),
        "--epochs", str(epochs), "--lr", "1e-3", "--batch-size", "8", "--max-train-samples", "32",
        "--max-valid-samples", "32", "--dataset-seed", "1", "--seed", "2", "--device", "cpu", "--no-progress",
        "--threads", "1",
    ]


def validation_loader(model_dir, glue_dir):
    from benchmarks.tasks.loaders import load_splits, make_dataloaders
    from supernet.loading import load_tokenizer

    splits = load_splits(get_task("rte"), data_dir=glue_dir, seed=1, max_valid_samples=32, max_train_samples=32)
    return make_dataloaders(get_task("rte"), splits, load_tokenizer(str(model_dir)), batch_size=8)["validation"]


def test_finetune_end_to_end(tiny_model_dir, glue_dir, tmp_path):
    from benchmarks.commands import finetune

    out = tmp_path / "ft"
    assert finetune.run(parse(finetune, common_argv(tiny_model_dir, glue_dir, out, epochs=2))) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert [record["epoch"] for record in metrics["history"]] == [1, 2]
    best = metrics["history"][metrics["best_epoch"] - 1]
    assert best["valid_error"] == min(record["valid_error"] for record in metrics["history"])
    assert metrics["valid"]["accuracy"] == best["valid_accuracy"]
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
    assert metrics["test"]["error"] == pytest.approx(1.0 - metrics["test"]["main"])
    # The saved best model reproduces its recorded validation accuracy.
    model = AutoModelForSequenceClassification.from_pretrained(out / "best_model")
    result = evaluate(model, validation_loader(out / "best_model", glue_dir))
    assert len(result.labels) == 32
    assert float((result.predictions == result.labels).mean()) == pytest.approx(best["valid_accuracy"])
    info = json.loads((out / "run.json").read_text())
    assert info["arguments"]["task"] == "rte" and info["seed"] == 2
    assert info["versions"]["torch"] == torch.__version__ and info["versions"]["python"]
    assert "transformers" in info["versions"] and "syne-tune" in info["versions"] and info["started_at"]
    assert (out / "checkpoint" / CHECKPOINT_FILE).is_file()


def test_train_supernet_end_to_end_and_resume(tiny_model_dir, glue_dir, tmp_path, monkeypatch):
    from benchmarks.artifacts import read_supernet_info
    from benchmarks.commands import train_supernet

    extra = ["--search-space", "small", "--strategy", "kd", "--num-random", "2", "--temperature", "4",
             "--init-from", "pretrained"]  # the warm-up default of a pre-trained start
    straight = tmp_path / "straight"
    assert train_supernet.run(parse(train_supernet, common_argv(tiny_model_dir, glue_dir, straight, 2) + extra)) == 0
    metrics = json.loads((straight / "metrics.json").read_text())
    assert len(metrics["history"]) == 2
    for name in ("full", "mac75", "mac50", "mac25", "smallest"):  # the probes of supernet.probes
        for record in metrics["history"]:
            assert 0.0 <= record[f"valid_{name}_error"] <= 1.0
        assert 0.0 <= metrics["test"][f"test_{name}_error"] <= 1.0
    assert metrics["strategy_options"] == {"num_random": 2, "temperature": 4.0, "full_warmup": 0.3,
                                           "sub_network_loss_weight": 1.0}
    folder = straight / "supernet"
    info = read_supernet_info(folder)
    assert (info["search_space"], info["strategy"], info["task"], info["dataset_seed"]) == ("small", "kd", "rte", 1)
    # The saved weights, reloaded, reproduce the last validation error of the full network.
    supernet = SuperNetwork(AutoModelForSequenceClassification.from_pretrained(folder))
    result = evaluate(supernet, validation_loader(folder, glue_dir))
    assert float((result.predictions != result.labels).mean()) == pytest.approx(
        metrics["history"][-1]["valid_full_error"]
    )

    # Killed right after the first epoch's checkpoint, then the same command with --resume: the same result.
    resumed = tmp_path / "resumed"
    argv = common_argv(tiny_model_dir, glue_dir, resumed, 2) + extra
    save = Trainer.save_checkpoint

    def save_then_die(self, path):
        save(self, path)
        raise Killed

    monkeypatch.setattr(Trainer, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        train_supernet.run(parse(train_supernet, argv))
    monkeypatch.undo()
    assert not (resumed / "supernet").exists()
    other_data = list(argv)  # same batches per epoch, other examples: only the data identity tells
    other_data[other_data.index("--dataset-seed") + 1] = "2"
    with pytest.raises(ValueError, match="other training data.*dataset_seed"):
        train_supernet.run(parse(train_supernet, other_data + ["--resume"]))
    assert train_supernet.run(parse(train_supernet, argv + ["--resume"])) == 0
    assert len(json.loads((resumed / "metrics.json").read_text())["history"]) == 2
    a = AutoModelForSequenceClassification.from_pretrained(folder).state_dict()
    b = AutoModelForSequenceClassification.from_pretrained(resumed / "supernet").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    run_info = json.loads((resumed / "run.json").read_text())
    assert run_info["arguments"]["resume"] is True and len(run_info["previous"]) == 1  # a refused resume writes nothing


def test_train_supernet_rejects_options_its_strategy_ignores(tiny_model_dir, glue_dir, tmp_path):
    from benchmarks.commands import train_supernet

    argv = common_argv(tiny_model_dir, glue_dir, tmp_path, 1) + ["--strategy", "sandwich", "--temperature", "3"]
    with pytest.raises(ValueError, match="does not use temperature"):
        train_supernet.run(parse(train_supernet, argv))


def test_fresh_trainers_sharing_a_loader_see_the_same_batches():
    """A second fresh run on the same loader object trains exactly like the first (the loader is reseeded)."""
    loader = train_loader()
    trained = []
    for _ in range(2):
        trainer = make_trainer(None, epochs=1)
        trainer.train_loader = loader
        trainer.fit()
        trained.append(weights(trainer))
    assert all(torch.equal(trained[0][key], trained[1][key]) for key in trained[0])


def test_a_checkpoint_from_before_min_train_words_was_trained_on_every_example():
    """Data settings recorded only when set count as their default when absent, on either side: an SST-2 run
    checkpointed on every example is not resumed on its sentence-like examples (the new default), nor back."""
    from supernet.training import TrainerConfig, check_resumable

    config = TrainerConfig(epochs=1, lr=1e-3, batch_size=8, seed=0, device="cpu")
    base = {"dataset_seed": 0, "max_train_samples": 5000}
    state = {"strategy": "sandwich", "config": {k: v for k, v in config.__dict__.items()}, "data": dict(base)}
    check_resumable(state, config, "sandwich", base)
    with pytest.raises(ValueError, match=r"min_train_words.*\(None, 10\).*--min-train-words"):
        check_resumable(state, config, "sandwich", {**base, "min_train_words": 10})
    state["data"]["min_train_words"] = 10
    check_resumable(state, config, "sandwich", {**base, "min_train_words": 10})
    with pytest.raises(ValueError, match=r"\(10, None\)"):
        check_resumable(state, config, "sandwich", base)
