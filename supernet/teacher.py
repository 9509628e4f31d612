"""A frozen teacher for super-network training: a fine-tuned model whose logits every pass learns from.

In-place distillation (the ``kd`` and ``full`` strategies) lets sub-networks learn from the super-network's own full
network, a moving target that is itself still learning. A *frozen* teacher, such as the plain fine-tuned model
that every study trains anyway for its pruning baselines, gives every pass (the full network too) a fixed,
good target: its softened predictions beside the labels (:func:`supernet.strategies.losses.distillation_loss`).
The teacher runs once per training step, without gradients, in the run's precision.

With ``hidden_weight > 0`` every pass also matches the teacher's last hidden states, token by token
(:func:`supernet.strategies.losses.hidden_state_loss`): a two-class task's logits say little about what a
sub-network should compute, the 384-dimensional representation of every token says much more (the layer-wise
distillation of DynaBERT and CoFi, here on the last layer only, which every sub-network of any depth has).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch

from supernet.precision import FP32, Precision

DEFAULT_TEACHER_TEMPERATURE = 2.0


@dataclass(frozen=True)
class TeacherTargets:
    """What one batch's passes learn from: the teacher's float32 logits and, when asked for, its last hidden
    states (batch x tokens x hidden)."""

    logits: torch.Tensor
    hidden: torch.Tensor | None = None


@dataclass
class Teacher:
    """A frozen model, the temperature its logits are softened with and the weight of its hidden states' loss
    (0: logits only); ``model`` is put in eval mode."""

    model: torch.nn.Module
    temperature: float = DEFAULT_TEACHER_TEMPERATURE
    hidden_weight: float = 0.0

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"the teacher's temperature must be positive, got {self.temperature}")
        if not self.hidden_weight >= 0:
            raise ValueError(f"the teacher's hidden-state weight must be >= 0, got {self.hidden_weight}")
        self.model.eval()
        for param in self.model.parameters():
            param.requires_grad_(False)

    @torch.no_grad()
    def logits(self, inputs: Mapping[str, Any], precision: Precision = FP32) -> torch.Tensor:
        """The teacher's float32 logits for one batch (without labels)."""
        with precision.autocast(self.model):
            logits = self.model(**inputs).logits
        return logits.float()

    @torch.no_grad()
    def targets(self, inputs: Mapping[str, Any], precision: Precision = FP32) -> TeacherTargets:
        """The teacher's float32 logits for one batch and, with ``hidden_weight > 0``, its last hidden states."""
        if not self.hidden_weight:
            return TeacherTargets(self.logits(inputs, precision))
        with precision.autocast(self.model):
            outputs = self.model(**inputs, output_hidden_states=True)
        return TeacherTargets(outputs.logits.float(), outputs.hidden_states[-1].float())
