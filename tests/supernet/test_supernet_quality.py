"""Super-network training must train: the full network as well as plain fine-tuning, sub-networks above the floor.

A tiny BERT learns a synthetic regression task (how many of six marker tokens a sequence holds) that it can
solve in a few hundred steps. Sandwich training used to pull the full network off the task (its loss 1.3-1.5x
that of plain training on this task, as it wrecked MiniLM on STS-B); with the default warm-up of full-network
steps it must stay within 10% of plain training, and the mid-point sub-network must learn the task too.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from search_spaces import get_search_space
from supernet.model import SuperNetwork
from supernet.strategies import get_strategy
from supernet.training import Trainer, TrainerConfig

pytestmark = pytest.mark.usefixtures("one_thread")

MARKERS = (7, 8, 9, 10, 11, 12)


def marker_count_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random 12-token sequences (CLS first); the label is how many marker tokens the other 11 hold."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, 50, size=(n, 12))
    ids[:, 0] = 2
    labels = np.isin(ids[:, 1:], MARKERS).sum(axis=1).astype(np.float32)
    return torch.tensor(ids), torch.tensor(labels)


def as_batches(ids: torch.Tensor, labels: torch.Tensor, size: int) -> list[dict[str, torch.Tensor]]:
    return [{"input_ids": ids[i:i + size], "attention_mask": torch.ones_like(ids[i:i + size]),
             "labels": labels[i:i + size]} for i in range(0, len(ids), size)]


def train_and_score(strategy: str) -> dict[str, float]:
    """Train a tiny 4-layer BERT with ``strategy`` (its defaults) for 3 epochs; test MSE of full and mid-point."""
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=60, hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=32,
        max_position_embeddings=16, num_labels=1, problem_type="regression",
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    supernet = SuperNetwork(BertForSequenceClassification(config))
    space = get_search_space("small", supernet.shape)
    train = as_batches(*marker_count_data(1024, seed=0), size=16)
    test = as_batches(*marker_count_data(512, seed=1), size=512)[0]
    built = get_strategy(strategy, space if strategy != "standard" else None)
    Trainer(supernet, built, train, TrainerConfig(epochs=3, lr=1e-3, progress=False, seed=0)).fit()
    supernet.eval()
    scores = {"constant": float(test["labels"].var(unbiased=False))}
    inputs = {key: value for key, value in test.items() if key != "labels"}
    with torch.no_grad():
        for name, masks in (("full", None), ("midpoint", space.to_masks(space.midpoint()))):
            with supernet.sub_network(masks):
                predictions = supernet(**inputs).logits.view(-1)
            scores[name] = float(((predictions - test["labels"]) ** 2).mean())
    return scores


def test_sandwich_keeps_the_full_network_and_teaches_the_mid_point_on_regression():
    plain = train_and_score("standard")
    sandwich = train_and_score("sandwich")
    assert plain["full"] < 0.5 * plain["constant"]  # the task is learnable at this budget
    assert sandwich["full"] <= 1.1 * plain["full"], (sandwich, plain)
    assert sandwich["midpoint"] < 0.6 * sandwich["constant"], sandwich
