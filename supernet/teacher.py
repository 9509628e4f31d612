"""A frozen teacher for super-network training: a fine-tuned model whose logits every pass learns from.

In-place distillation (the ``kd`` and ``full`` strategies) lets sub-networks learn from the super-network's own full
network, a moving target that is itself still learning. A *frozen* teacher, such as the plain fine-tuned model
that every study trains anyway for its pruning baselines, gives every pass (the full network too) a fixed,
good target: its softened predictions beside the labels (:func:`supernet.strategies.losses.distillation_loss`).
The teacher runs once per training step, without gradients, in the run's precision.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch

from supernet.precision import FP32, Precision

DEFAULT_TEACHER_TEMPERATURE = 2.0


@dataclass
class Teacher:
    """A frozen model and the temperature its logits are softened with; ``model`` is put in eval mode."""

    model: torch.nn.Module
    temperature: float = DEFAULT_TEACHER_TEMPERATURE

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"the teacher's temperature must be positive, got {self.temperature}")
        self.model.eval()
        for param in self.model.parameters():
            param.requires_grad_(False)

    @torch.no_grad()
    def logits(self, inputs: Mapping[str, Any], precision: Precision = FP32) -> torch.Tensor:
        """The teacher's float32 logits for one batch (without labels)."""
        with precision.autocast(self.model):
            logits = self.model(**inputs).logits
        return logits.float()
