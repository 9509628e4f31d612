"""Iterative head pruning without retraining (Michel et al., 2019).

Starting from the full model, each step removes the least important remaining heads, globally across layers,
then re-scores importance on the pruned model. A step removes ``step_fraction`` of all heads; the last head of
the whole model is never removed, but a layer may lose all of its heads (its attention block is skipped).
FFN units are never pruned.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Mapping

import torch
from transformers import PreTrainedModel

from baselines.pruning.head_importance import head_importance
from search_spaces.masks import SubNetworkMasks
from supernet.loading import model_shape
from supernet.precision import FP32, Precision


@dataclass(frozen=True)
class HeadPruneConfig:
    """``step_fraction`` of all heads removed per step; importance normalised per layer (Michel et al.)."""

    step_fraction: float = 0.1
    normalise: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.step_fraction <= 1.0:
            raise ValueError(f"step_fraction must be in (0, 1], got {self.step_fraction}")

    def heads_per_step(self, total_heads: int) -> int:
        return max(1, round(self.step_fraction * total_heads))


@dataclass(frozen=True)
class HeadPruneStep:
    """The sub-network after ``step`` pruning steps and the importance scores it was chosen by."""

    step: int
    masks: SubNetworkMasks
    importance: torch.Tensor | None  # [L, H] scores of the previous sub-network (None for the full model)


def prune_least_important(masks: SubNetworkMasks, importance: torch.Tensor, count: int) -> SubNetworkMasks:
    """Remove the ``count`` kept heads with the lowest importance (ties: lowest index), keeping at least one."""
    kept = masks.heads.clone()
    count = min(count, int(kept.sum()) - 1)
    if count <= 0:
        return masks
    scores = importance.detach().float().cpu().clone()
    scores[~kept] = math.inf
    order = torch.argsort(scores.flatten(), stable=True)[:count]
    kept.view(-1)[order] = False
    return SubNetworkMasks(heads=kept, units=masks.units.clone())


ImportanceFn = Callable[[SubNetworkMasks], torch.Tensor]


def iterative_head_pruning(
    masks: SubNetworkMasks, importance_fn: ImportanceFn, config: HeadPruneConfig
) -> Iterator[HeadPruneStep]:
    """Yield the full sub-network (step 0), then one sub-network per pruning step down to a single head."""
    total = masks.heads.numel()
    per_step = config.heads_per_step(total)
    yield HeadPruneStep(step=0, masks=masks, importance=None)
    step = 0
    while int(masks.heads.sum()) > 1:
        importance = importance_fn(masks)
        masks = prune_least_important(masks, importance, per_step)
        step += 1
        yield HeadPruneStep(step=step, masks=masks, importance=importance)


def head_pruning_steps(
    model: PreTrainedModel,
    batches: Iterable[Mapping[str, torch.Tensor]],
    config: HeadPruneConfig = HeadPruneConfig(),
    progress: bool = False,
    precision: Precision = FP32,
) -> Iterator[HeadPruneStep]:
    """Michel et al.'s schedule on ``model``, scoring importance over ``batches`` (a re-iterable loader) with
    forward passes in ``precision``."""
    shape = model_shape(model)

    def score(current: SubNetworkMasks) -> torch.Tensor:
        return head_importance(model, batches, current, normalise=config.normalise, progress=progress,
                               precision=precision)

    return iterative_head_pruning(SubNetworkMasks.full(shape), score, config)
