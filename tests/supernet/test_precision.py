"""Mixed precision: choosing it, training and scoring under autocast, and keeping it across a resume."""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from search_spaces import get_search_space
from supernet import precision as precision_module
from supernet.evaluation import evaluate
from supernet.precision import Precision, check_precision, resolve_precision
from supernet.strategies import get_strategy
from supernet.training import Trainer, TrainerConfig, check_resumable, checkpoint_precision

from conftest import tiny_bert_supernet

pytestmark = pytest.mark.usefixtures("one_thread")
VOCAB = 50
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


class FirstTokenDataset(Dataset):
    """Label 1 when the first token is in the upper half of the vocabulary: learnable in a few dozen steps."""

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


def loader(size: int, seed: int, shuffle: bool) -> DataLoader:
    return DataLoader(FirstTokenDataset(size, seed), batch_size=8, shuffle=shuffle,
                      generator=torch.Generator().manual_seed(3) if shuffle else None, collate_fn=collate)


def supernet():
    return tiny_bert_supernet(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=32, max_position_embeddings=16, num_labels=2, initializer_range=0.02,
                              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def train(precision: str, strategy: str = "standard", epochs: int = 6, checkpoint_dir=None, device: str = "cpu"):
    """A tiny super-network trained on the first-token task; returns (trainer, validation accuracy)."""
    net = supernet()
    space = get_search_space("small", net.shape)
    chosen = get_strategy(strategy) if strategy == "standard" else get_strategy(strategy, space)
    config = TrainerConfig(epochs=epochs, lr=1e-3, batch_size=8, warmup_ratio=0.1, seed=0, device=device,
                           progress=False, precision=precision)
    trainer = Trainer(net, chosen, loader(160, 0, True), config, checkpoint_dir=checkpoint_dir)
    trainer.fit()
    result = evaluate(trainer.supernet, loader(64, 1, False), precision=trainer.precision)
    return trainer, float((result.predictions == result.labels).mean())


# ------------------------------------------------------------------------------------------ choosing a precision


def test_auto_picks_bf16_exactly_where_the_cpu_has_native_bf16(monkeypatch):
    monkeypatch.setattr(precision_module, "cpu_bf16_feature", lambda: "avx512_bf16")
    chosen = resolve_precision("auto", "cpu")
    assert chosen.name == "bf16" and chosen.dtype == torch.bfloat16 and "avx512_bf16" in chosen.describe()
    monkeypatch.setattr(precision_module, "cpu_bf16_feature", lambda: None)
    chosen = resolve_precision("auto", "cpu")
    assert chosen.name == "fp32" and not chosen.mixed and "neither AMX nor AVX512-BF16" in chosen.reason
    assert resolve_precision("bf16", "cpu").name == "bf16"  # asked for: runs (emulated where not native)


def test_cpu_feature_is_read_from_the_machine():
    feature = precision_module.cpu_bf16_feature()
    assert feature in (None, *precision_module.CPU_BF16_FLAGS)
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        pytest.skip("no /proc/cpuinfo")
    assert (feature is not None) == any(f" {flag}" in flags for flag in precision_module.CPU_BF16_FLAGS)


def test_fp16_on_a_cpu_and_unknown_names_are_refused_with_what_to_use():
    with pytest.raises(ValueError, match="fp16 runs on CUDA only.*use bf16 or fp32"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        check_precision("fp8", torch.device("cpu"))
    with pytest.raises(ValueError, match="resolved"):
        TrainerConfig(precision="auto")
    with pytest.raises(ValueError, match="fp16 runs on CUDA only"):
        Trainer(supernet(), get_strategy("standard"), loader(8, 0, True), TrainerConfig(device="cpu", precision="fp16"))


def test_autocast_runs_matrix_products_in_bf16_and_fp32_not_at_all():
    layer = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4)
    with Precision("bf16", "cpu").autocast():
        assert layer(x).dtype == torch.bfloat16
    with Precision("fp32", "cpu").autocast():
        assert layer(x).dtype == torch.float32
    assert Precision("bf16").grad_scaler() is None and Precision("fp32").grad_scaler() is None


# -------------------------------------------------------------------------------------------- training


def test_bf16_training_learns_and_keeps_float32_master_weights():
    """The pitfall this design avoids: one autocast around many optimiser steps caches the first bf16 copy of every
    weight, so the forward passes never see an update. Autocast per forward pass learns as fp32 does."""
    trainer, accuracy = train("bf16")
    reference, accuracy_fp32 = train("fp32")
    assert accuracy >= 0.85 and accuracy_fp32 >= 0.85
    assert abs(accuracy - accuracy_fp32) <= 0.1
    # every epoch's loss follows fp32's (with one autocast around an epoch's steps, epoch 3 ends at 0.49 vs 0.29)
    for record, expected in zip(trainer.history, reference.history):
        assert record["train_loss"] == pytest.approx(expected["train_loss"], rel=0.05, abs=0.01)
    assert all(param.dtype == torch.float32 for param in trainer.supernet.parameters())
    states = [state for group in trainer.optimizer.state.values() for state in group.values() if torch.is_tensor(state)]
    assert states and all(state.dtype == torch.float32 for state in states if state.dim() > 0)
    losses = [record["train_loss"] for record in trainer.history]
    assert losses[-1] < 0.5 * losses[0]


def test_one_autocast_around_all_steps_would_train_nothing():
    """The negative control of the test above: inside one autocast region a linear layer keeps computing with the
    bf16 copy of its weight cast at its first use, whatever the optimiser does to the weight."""
    layer = torch.nn.Linear(4, 4)
    x = torch.randn(8, 4)
    optimizer = torch.optim.SGD(layer.parameters(), lr=1.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        first = layer(x)
        first.float().pow(2).sum().backward()
        optimizer.step()
        stale = layer(x).detach()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fresh = layer(x).detach()
    assert torch.equal(stale, first.detach())  # the weight changed, its cached copy did not
    assert not torch.equal(fresh, stale)


def test_sandwich_super_network_trains_in_bf16_like_fp32():
    _, accuracy = train("bf16", strategy="sandwich", epochs=6)
    _, accuracy_fp32 = train("fp32", strategy="sandwich", epochs=6)
    assert accuracy >= 0.8 and abs(accuracy - accuracy_fp32) <= 0.1


def test_bf16_scoring_agrees_with_fp32_on_the_same_weights():
    trainer, _ = train("fp32", epochs=3)
    valid = loader(64, 1, False)
    bf16 = evaluate(trainer.supernet, valid, precision=Precision("bf16", "cpu"))
    fp32 = evaluate(trainer.supernet, valid, precision=Precision("fp32", "cpu"))
    assert bf16.logits.dtype.name == fp32.logits.dtype.name == "float32"
    assert (bf16.predictions == fp32.predictions).mean() >= 0.95
    assert abs(bf16.logits - fp32.logits).max() < 0.1 * abs(fp32.logits).max()
    assert not (bf16.logits == fp32.logits).all()  # bf16 really ran


# -------------------------------------------------------------------------------------------- resuming


def test_a_checkpoint_keeps_its_precision_and_refuses_another(tmp_path):
    trainer, _ = train("bf16", epochs=1, checkpoint_dir=tmp_path)
    assert checkpoint_precision(tmp_path) == "bf16"
    state = torch.load(tmp_path / "checkpoint.pt", map_location="cpu", weights_only=True)
    fp32 = TrainerConfig(epochs=1, lr=1e-3, batch_size=8, warmup_ratio=0.1, seed=0, device="cpu", precision="fp32")
    with pytest.raises(ValueError, match=r"precision: 'bf16' -> 'fp32'.*--precision"):
        check_resumable(state, fp32, "standard", None)
    check_resumable(state, TrainerConfig(**{**fp32.__dict__, "precision": "bf16"}), "standard", None)
    # a checkpoint from before mixed precision has no precision: it was fp32
    del state["config"]["precision"]
    check_resumable(state, fp32, "standard", None)
    torch.save(state, tmp_path / "checkpoint.pt")
    assert checkpoint_precision(tmp_path) == "fp32"
    assert checkpoint_precision(tmp_path / "nothing-here") is None


# ---------------------------------------------------------------------------------------------- CUDA


@CUDA
@pytest.mark.parametrize("name", ["bf16", "fp16"])
def test_cuda_training_and_scoring_under_autocast(name):
    if name == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    trainer, accuracy = train(name, device="cuda")
    assert accuracy >= 0.85
    assert (trainer.scaler is not None) == (name == "fp16")
    assert all(param.dtype == torch.float32 for param in trainer.supernet.parameters())


@CUDA
def test_auto_on_cuda_picks_bf16_where_the_gpu_has_it():
    expected = "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp32"
    assert resolve_precision("auto", "cuda").name == expected


@pytest.mark.parametrize("kind", ["bert-regression", "roberta-regression", "bert-seq"])
def test_the_task_head_runs_in_float32_under_mixed_precision(kind):
    """bf16 keeps about three digits: a regression head computed in it gives STS-B-like scores in steps of 1/64.
    The head (pooler and classifier) runs in fp32 on the bf16 encoder's output, so scores do not tie."""
    from supernet.precision import head_modules

    from conftest import tiny_model

    model = tiny_model(kind)
    assert len(head_modules(model)) == (2 if kind.startswith("bert") else 1)
    batch = {"input_ids": torch.randint(5, 90, (64, 12), generator=torch.Generator().manual_seed(0)),
             "attention_mask": torch.ones(64, 12, dtype=torch.long)}
    with torch.no_grad():
        with Precision("bf16").autocast(model):
            head_fp32 = model(**batch).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            head_bf16 = model(**batch).logits
    assert head_fp32.dtype == torch.float32 and head_bf16.dtype == torch.bfloat16
    if kind.endswith("regression"):
        shifted = head_fp32 + 2.5  # scores around STS-B's middle, where bf16's step is 1/64
        assert len(torch.unique(shifted)) == 64
        assert len(torch.unique(shifted.bfloat16())) < 64
    assert torch.allclose(head_fp32, head_bf16.float(), atol=0.1, rtol=0.05)  # the same network
    assert "forward" not in model.classifier.__dict__  # the head is itself again after the block
