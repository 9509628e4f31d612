"""Shared pytest fixtures."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
REQUIRE_DATA_ENV = "PLM_NAS_REQUIRE_DATA"  # CI sets it to 1: missing data fails instead of skipping
# Sizes of `tiny_model`: big enough for every search space, small enough to run in milliseconds.
TINY_SIZES = dict(
    vocab_size=97, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=20,
    max_position_embeddings=40, initializer_range=0.3,
)


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


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module (tiny models run fastest so, above all on a busy machine), then restored.

    Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(family: str, **settings):
    """A BERT or RoBERTa config with exactly ``settings`` (RoBERTa also gets its padding id, 1)."""
    from transformers import BertConfig, RobertaConfig

    factories = {"bert": BertConfig, "roberta": lambda **kw: RobertaConfig(**kw, pad_token_id=1)}
    if family not in factories:
        raise ValueError(f"unknown model family {family!r}; valid: {sorted(factories)}")
    return factories[family](**settings)


def tiny_model(kind: str, **settings):
    """A tiny random model in eval mode, seeded with 0; ``kind`` is ``{bert,roberta}-{seq,regression,mc}``.

    ``settings`` replace entries of ``TINY_SIZES`` (whose initializer_range 0.3 makes wrong sub-networks show).
    Sequence classification has 3 labels, regression 1.
    """
    import torch
    from transformers import (
        BertForMultipleChoice,
        BertForSequenceClassification,
        RobertaForMultipleChoice,
        RobertaForSequenceClassification,
    )

    classes = {
        ("bert", "seq"): BertForSequenceClassification, ("bert", "mc"): BertForMultipleChoice,
        ("roberta", "seq"): RobertaForSequenceClassification, ("roberta", "mc"): RobertaForMultipleChoice,
    }
    family, head = kind.split("-", 1)
    if (family, "mc" if head == "mc" else "seq") not in classes or head not in ("seq", "regression", "mc"):
        raise ValueError(f"unknown tiny model kind {kind!r}; valid: {{bert,roberta}}-{{seq,regression,mc}}")
    torch.manual_seed(0)
    config = tiny_config(family, **{**TINY_SIZES, **settings})
    if head == "regression":
        config.num_labels, config.problem_type = 1, "regression"
    elif head == "seq":
        config.num_labels = 3
    return classes[family, "mc" if head == "mc" else "seq"](config).eval()


def tiny_bert_supernet(**settings):
    """A SuperNetwork over a random BertForSequenceClassification with exactly ``settings``, seeded with 0."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from supernet.model import SuperNetwork

    torch.manual_seed(0)
    return SuperNetwork(BertForSequenceClassification(BertConfig(**settings)))


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


def train_tiny_supernet(output_dir: Path, model_dir: Path, glue_dir: Path, search_space: str = "small",
                        max_valid_samples: int = 40, *extra: str) -> Path:
    """``plm-nas train-supernet``: a sandwich super-network of ``model_dir`` trained one epoch on 32 RTE examples,
    from the pre-trained model (fast, and what the tests of the strategies expect)."""
    from benchmarks.cli import run_command as main  # raises, so a failure shows its traceback

    assert main([
        "train-supernet", "--model", str(model_dir), "--task", "rte", "--data-dir", str(glue_dir), "--output-dir",
        str(output_dir), "--epochs", "1", "--max-train-samples", "32", "--max-valid-samples", str(max_valid_samples),
        "--lr", "1e-3", "--strategy", "sandwich", "--search-space", search_space, "--threads", "1", "--no-progress",
        "--init-from", "pretrained", *extra,
    ]) == 0
    return output_dir


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A saved tiny random BERT (2 layers, 4 heads, 16 units) with the MiniLM tokenizer."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def pytest_collection_modifyitems(config, items):
    """Tests that read the GLUE copy are marked ``data`` (and ``slow``), so ``-m "not slow"`` runs the quick ones."""
    for item in items:
        if "glue_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.data)
            item.add_marker(pytest.mark.slow)
