"""Architecture facts of a transformer encoder, read from a Hugging Face config.

Everything that depends on the model's size (search-space bounds, parameter and MAC counts, masks) reads
these numbers, so nothing in the project assumes BERT-base's shape.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SUPPORTED_MODEL_TYPES = ("bert", "roberta")
SUPPORTED_HEADS = ("sequence-classification", "multiple-choice")


@dataclass(frozen=True)
class ModelShape:
    """Sizes of a BERT- or RoBERTa-family encoder with its task head."""

    model_type: str
    num_layers: int
    num_heads: int
    head_dim: int
    hidden_size: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    type_vocab_size: int
    num_labels: int = 2
    head: str = "sequence-classification"

    def __post_init__(self) -> None:
        if self.model_type not in SUPPORTED_MODEL_TYPES:
            raise ValueError(
                f"unsupported model_type {self.model_type!r}; supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
            )
        if self.head not in SUPPORTED_HEADS:
            raise ValueError(f"unsupported head {self.head!r}; supported: {', '.join(SUPPORTED_HEADS)}")
        for name in ("num_layers", "num_heads", "head_dim", "hidden_size", "intermediate_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def num_units(self) -> int:
        """FFN units (neurons of the intermediate layer) per layer."""
        return self.intermediate_size

    @property
    def num_outputs(self) -> int:
        """Width of the final classifier: 1 per choice for multiple choice, else ``num_labels``."""
        return 1 if self.head == "multiple-choice" else self.num_labels

    @classmethod
    def from_config(cls, config: Any, head: str = "sequence-classification") -> "ModelShape":
        """Build from a ``transformers`` ``BertConfig``/``RobertaConfig`` (or any object with those fields)."""
        model_type = getattr(config, "model_type", None)
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise ValueError(
                f"unsupported model_type {model_type!r}; supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
            )
        hidden = int(config.hidden_size)
        heads = int(config.num_attention_heads)
        if hidden % heads:
            raise ValueError(f"hidden_size {hidden} is not a multiple of num_attention_heads {heads}")
        return cls(
            model_type=model_type,
            num_layers=int(config.num_hidden_layers),
            num_heads=heads,
            head_dim=hidden // heads,
            hidden_size=hidden,
            intermediate_size=int(config.intermediate_size),
            vocab_size=int(config.vocab_size),
            max_position_embeddings=int(config.max_position_embeddings),
            type_vocab_size=int(config.type_vocab_size),
            num_labels=int(getattr(config, "num_labels", 2)),
            head=head,
        )
