"""Loss functions of super-network training: the task loss and in-place knowledge distillation."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def is_regression(config: Any, head: str = "sequence-classification") -> bool:
    """True for a one-output sequence-regression head (STS-B); a multiple-choice head never regresses."""
    if head == "multiple-choice":
        return False
    return getattr(config, "problem_type", None) == "regression" or int(getattr(config, "num_labels", 2)) == 1


def task_loss(logits: torch.Tensor, labels: torch.Tensor, regression: bool) -> torch.Tensor:
    """Cross-entropy for classification/multiple choice, mean squared error for regression."""
    if regression:
        return F.mse_loss(logits.view(-1).float(), labels.view(-1).float())
    return F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1))


def distillation_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
    regression: bool,
) -> torch.Tensor:
    """In-place distillation towards the (detached) teacher plus the task loss on the labels.

    Classification: ``T^2 * CE(student / T, softmax(teacher / T)) + CE(student, y)``.
    Regression has no distribution to soften: ``MSE(student, teacher) + MSE(student, y)``.
    The soft cross-entropy includes the teacher's entropy, a constant with no gradient, so its value stays
    above zero even for a perfect student.
    """
    teacher = teacher.detach()
    if regression:
        soft = F.mse_loss(student.view(-1).float(), teacher.view(-1).float())
    else:
        num_classes = student.shape[-1]
        targets = F.softmax(teacher.view(-1, num_classes) / temperature, dim=-1)
        soft = temperature**2 * F.cross_entropy(student.view(-1, num_classes) / temperature, targets)
    return soft + task_loss(student, labels, regression)


def hidden_state_loss(
    student: torch.Tensor, teacher: torch.Tensor, attention_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared error between two ``batch x tokens x hidden`` states over the real (unpadded) tokens.

    ``attention_mask`` (1 for real tokens) may carry extra leading dimensions (multiple choice's ``batch x
    choices x tokens``); without it every token counts.
    """
    student, teacher = student.float(), teacher.detach().float()
    squared = (student - teacher).pow(2).mean(dim=-1)  # per token
    if attention_mask is None:
        return squared.mean()
    weights = attention_mask.reshape(squared.shape).to(squared.dtype)
    return (squared * weights).sum() / weights.sum().clamp(min=1.0)
