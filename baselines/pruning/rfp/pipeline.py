"""Retraining-free pruning end to end (Kwon et al., 2022): Fisher mask search, rearrangement, rescaling.

For one MAC budget: search the mask by diagonal Fisher under the budget, rearrange it per layer with the
block-diagonal Fisher, fit layer-wise scales of the kept heads and units, and fold those scales into a copy
of the weights before extracting the smaller model, so the extracted model computes exactly the rescaled
sub-network. The per-example gate gradients of the sample are computed once and shared by all budgets.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

import torch
from transformers import PreTrainedModel

from baselines.pruning.masking import MaskGradients, fold_scales, masks_as_gates
from baselines.pruning.rfp.fisher import diagonal_fisher
from baselines.pruning.rfp.mask_search import search_masks
from baselines.pruning.rfp.rearrange import rearrange_masks
from baselines.pruning.rfp.rescale import RescaleConfig, RescaleResult, rescale_masks
from search_spaces.cost import DEFAULT_SEQ_LEN
from search_spaces.masks import SubNetworkMasks
from search_spaces.shape import ModelShape
from supernet.extract import extract_sub_network
from supernet.loading import model_shape

TeacherFn = Callable[[torch.Tensor, torch.Tensor, ModelShape, float, int], "SubNetworkMasks | None"]


def full_teacher(
    head_fisher: torch.Tensor, unit_fisher: torch.Tensor, shape: ModelShape, budget: float, seq_len: int
) -> None:
    """Reconstruct the unpruned model's layer outputs."""
    return None


def intermediate_teacher(
    head_fisher: torch.Tensor, unit_fisher: torch.Tensor, shape: ModelShape, budget: float, seq_len: int
) -> SubNetworkMasks:
    """Reconstruct the searched sub-network at budget ``sqrt(budget)``, half-way in log scale (Kwon et al.'s code)."""
    return search_masks(head_fisher, unit_fisher, shape, math.sqrt(budget), seq_len)


TEACHERS: dict[str, TeacherFn] = {"full": full_teacher, "intermediate": intermediate_teacher}


@dataclass(frozen=True)
class RFPConfig:
    """Stages and settings of retraining-free pruning; ``seq_len`` is the sequence length of the MAC model."""

    seq_len: int = DEFAULT_SEQ_LEN
    rearrange: bool = True
    rescale: bool = True
    teacher: str = "full"
    max_scale: float = 10.0
    progress: bool = False

    def __post_init__(self) -> None:
        if self.teacher not in TEACHERS:
            raise ValueError(f"unknown teacher {self.teacher!r}; choose from {', '.join(TEACHERS)}")


@dataclass
class RFPResult:
    """The pruned sub-network of one budget: searched and final masks, and the gates (scales) of kept parts."""

    budget: float
    searched: SubNetworkMasks
    masks: SubNetworkMasks
    head_scales: torch.Tensor
    unit_scales: torch.Tensor
    rescale: RescaleResult | None = None


def retraining_free_prune(
    model: PreTrainedModel,
    grads: MaskGradients,
    batches: Iterable[Mapping[str, torch.Tensor]],
    budget: float,
    config: RFPConfig = RFPConfig(),
) -> RFPResult:
    """Prune ``model`` to ``budget`` (fraction of the full MACs) from the sample's gate gradients and batches."""
    if grads.heads is None or grads.units is None:
        raise ValueError("retraining-free pruning needs the gradients of both head and unit gates")
    shape = model_shape(model)
    head_fisher, unit_fisher = diagonal_fisher(grads.heads), diagonal_fisher(grads.units)
    searched = search_masks(head_fisher, unit_fisher, shape, budget, config.seq_len)
    masks = rearrange_masks(searched, grads.heads, grads.units) if config.rearrange else searched
    if not config.rescale:
        head_scales, unit_scales = masks_as_gates(masks, torch.float32, torch.device("cpu"))
        return RFPResult(budget, searched, masks, head_scales, unit_scales)
    teacher = TEACHERS[config.teacher](head_fisher, unit_fisher, shape, budget, config.seq_len)
    fitted = rescale_masks(model, masks, batches, teacher, RescaleConfig(config.max_scale, config.progress))
    return RFPResult(budget, searched, masks, fitted.head_scales, fitted.unit_scales, fitted)


def pruned_model(model: PreTrainedModel, result: RFPResult) -> PreTrainedModel:
    """The extracted smaller model of ``result`` with its scales folded into the weights (``model`` unchanged)."""
    scaled = fold_scales(copy.deepcopy(model), result.head_scales, result.unit_scales)
    return extract_sub_network(scaled, result.masks)
