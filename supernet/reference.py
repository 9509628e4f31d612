"""Masked (zeroing) reference of a sub-network: the full model's compute with removed heads and units zeroed.

This is how the authors' research code evaluated sub-networks, and it gives no speed-up; here it only serves
as an independent check that the sliced super-network and the extracted model compute the right function,
and as the "masked" column of the speed benchmark. Forward hooks on the unmodified HF model
- zero the removed heads' context vectors before the attention output projection,
- zero the removed units' activations after the FFN's first dense layer and activation,
- return the block's input for a layer whose attention block has no heads or whose FFN has no units
  (post-LN blocks: zeroing alone would still add the output bias and apply the LayerNorm).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch.utils.hooks import RemovableHandle
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from search_spaces.masks import SubNetworkMasks
from supernet.loading import model_shape


def _scale_input(scale: torch.Tensor):
    def hook(module: torch.nn.Module, args: tuple) -> tuple:
        return (args[0] * scale.to(args[0].dtype), *args[1:])

    return hook


def _scale_output(scale: torch.Tensor):
    def hook(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        return output * scale.to(output.dtype)

    return hook


def _skip_attention(module: torch.nn.Module, args: tuple, kwargs: dict, output: tuple) -> tuple:
    """Attention block output = its input hidden states (attention weights: none)."""
    hidden_states = args[0] if args else kwargs["hidden_states"]
    return (hidden_states, None)


def _skip_ffn(module: torch.nn.Module, args: tuple, kwargs: dict, output: torch.Tensor) -> torch.Tensor:
    """FFN block output (``layer.output(intermediate, input_tensor)``) = its residual input."""
    return args[1] if len(args) > 1 else kwargs["input_tensor"]


def register_mask_hooks(model: PreTrainedModel, masks: SubNetworkMasks) -> list[RemovableHandle]:
    """Install the zeroing hooks of ``masks`` on ``model``; remove them with ``handle.remove()``."""
    shape = model_shape(model)
    masks.check_shape(shape)
    device = next(model.parameters()).device
    handles: list[RemovableHandle] = []
    for layer, heads, units in zip(model.base_model.encoder.layer, masks.heads.cpu(), masks.units.cpu()):
        if not heads.any():
            handles.append(layer.attention.register_forward_hook(_skip_attention, with_kwargs=True))
        elif not heads.all():
            scale = heads.repeat_interleave(shape.head_dim).float().to(device)
            handles.append(layer.attention.output.dense.register_forward_pre_hook(_scale_input(scale)))
        if not units.any():
            handles.append(layer.output.register_forward_hook(_skip_ffn, with_kwargs=True))
        elif not units.all():
            handles.append(layer.intermediate.register_forward_hook(_scale_output(units.float().to(device))))
    return handles


@contextmanager
def masked(model: PreTrainedModel, masks: SubNetworkMasks | None) -> Iterator[PreTrainedModel]:
    """Inside the block, ``model`` computes the sub-network ``masks`` by zeroing (``None``: the full model)."""
    handles = [] if masks is None else register_mask_hooks(model, masks)
    try:
        yield model
    finally:
        for handle in handles:
            handle.remove()


def masked_forward(model: PreTrainedModel, masks: SubNetworkMasks | None, **batch: Any) -> ModelOutput:
    """One forward pass of the zeroing reference of ``masks``."""
    with masked(model, masks):
        return model(**batch)
