"""Head importance of Michel et al. (2019, "Are Sixteen Heads Really Better than One?").

The importance of head h is the expected absolute sensitivity of the loss to a gate on that head,
``I_h = sum_x |dL(x) / d xi_h|`` over a data set (here per example), normalised per layer by its L2 norm.
"""
from __future__ import annotations

from typing import Iterable, Mapping

import torch
from transformers import PreTrainedModel

from baselines.pruning.masking import mask_gradients
from search_spaces.masks import SubNetworkMasks
from supernet.precision import FP32, Precision

NORM_EPS = 1e-12


def normalise_per_layer(importance: torch.Tensor) -> torch.Tensor:
    """Divide each layer's scores by their L2 norm, as Michel et al. do (a layer of zeros stays zero)."""
    return importance / importance.norm(dim=-1, keepdim=True).clamp_min(NORM_EPS)


def importance_from_gradients(head_grads: torch.Tensor, normalise: bool = True) -> torch.Tensor:
    """``[L, H]`` importance from per-example head-gate gradients ``[examples, L, H]``."""
    importance = head_grads.abs().sum(dim=0)
    return normalise_per_layer(importance) if normalise else importance


def head_importance(
    model: PreTrainedModel,
    batches: Iterable[Mapping[str, torch.Tensor]],
    masks: SubNetworkMasks | None = None,
    normalise: bool = True,
    progress: bool = False,
    precision: Precision = FP32,
) -> torch.Tensor:
    """Importance ``[L, H]`` of every head of the sub-network ``masks`` (default: full model) over ``batches``.

    Heads already removed by ``masks`` get a gradient too (the loss' sensitivity to putting them back), but
    callers usually ignore them.
    """
    grads = mask_gradients(
        model, batches, masks, heads=True, units=False, progress=progress, description="head importance",
        precision=precision,
    )
    return importance_from_gradients(grads.heads, normalise=normalise)
