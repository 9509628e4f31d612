"""Diagonal Fisher information of head and unit gates (Kwon et al., 2022, section 4.1).

With the empirical Fisher, the loss increase of removing a set of gates is approximated from per-example
gradients of the loss w.r.t. the gates at 1; its diagonal, ``sum_x g_i(x)^2``, scores each gate alone.
"""
from __future__ import annotations

from typing import Iterable, Mapping

import torch
from transformers import PreTrainedModel

from baselines.pruning.masking import MaskGradients, mask_gradients
from supernet.precision import FP32, Precision


def diagonal_fisher(grads: torch.Tensor) -> torch.Tensor:
    """``[L, n]`` diagonal of the empirical Fisher from per-example gradients ``[examples, L, n]``."""
    return grads.double().pow(2).sum(dim=0)


def fisher_gradients(
    model: PreTrainedModel,
    batches: Iterable[Mapping[str, torch.Tensor]],
    progress: bool = False,
    precision: Precision = FP32,
) -> MaskGradients:
    """Per-example gradients of all head and unit gates of the full model over ``batches`` (the sample), with
    forward passes in ``precision``."""
    return mask_gradients(model, batches, None, heads=True, units=True, progress=progress,
                          description="Fisher gradients", precision=precision)


def fisher_importance(
    model: PreTrainedModel, batches: Iterable[Mapping[str, torch.Tensor]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Importance of every head ``[L, H]`` and unit ``[L, U]``: the diagonal Fisher of its gate over ``batches``."""
    grads = fisher_gradients(model, batches)
    return diagonal_fisher(grads.heads), diagonal_fisher(grads.units)
