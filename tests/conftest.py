"""Shared pytest fixtures."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
REQUIRE_DATA_ENV = "PLM_NAS_REQUIRE_DATA"  # CI sets it to 1: missing data fails instead of skipping


def skip_or_fail_missing(reason: str) -> None:
    """Skip a test whose data is absent, or fail it when ``PLM_NAS_REQUIRE_DATA=1``."""
    if os.environ.get(REQUIRE_DATA_ENV) == "1":
        pytest.fail(f"{reason} (and {REQUIRE_DATA_ENV}=1 requires it)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def glue_dir() -> Path:
    """The offline GLUE copy in the original TSV layout: ``$GLUE_DIR``, else ``../shared/data/glue``."""
    path = Path(os.environ.get("GLUE_DIR") or REPO_ROOT.parent / "shared" / "data" / "glue").resolve()
    if not path.is_dir():
        skip_or_fail_missing(f"no GLUE data folder at {path}; set GLUE_DIR")
    return path


def save_tiny_bert(folder: Path, num_labels: int = 2, **overrides) -> Path:
    """A tiny random BERT with the real MiniLM tokenizer, saved like any checkpoint (for end-to-end runs)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from supernet.loading import load_tokenizer

    tokenizer = load_tokenizer(None)
    settings = dict(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=16, max_position_embeddings=128, initializer_range=0.3, num_labels=num_labels,
    )
    settings.update(overrides)
    torch.manual_seed(0)
    BertForSequenceClassification(BertConfig(**settings)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A saved tiny random BERT (2 layers, 4 heads, 16 units) with the MiniLM tokenizer."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))
