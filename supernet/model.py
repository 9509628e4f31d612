"""The weight-sharing super-network: one fine-tuned model whose sub-networks run SLICED on the shared weights.

A sub-network (:class:`~search_spaces.masks.SubNetworkMasks`) keeps some heads and FFN units per layer. While
it is active, every encoder layer multiplies only the kept heads' Q/K/V rows and output-projection columns and
only the kept units' FFN rows/columns, so compute scales with the sub-network's size. A layer without heads
skips its attention block (LayerNorm included: the block's output is its input), a layer without units skips
its FFN block, a layer with neither is the identity. Prefix selections (spaces ``small``, ``medium``,
``layer``) are views of the weights (``weight[:k]``); arbitrary selections (``large``) gather rows/columns
with ``index_select``. Either way gradients flow into the shared weights, and removed rows get zero gradient.

Embeddings, attention-mask construction, pooler, classifier, loss and multiple-choice flattening stay the
wrapped Hugging Face model's own: only the ``forward`` of the encoder layers that lose something is replaced,
and only for the duration of one call, so ``supernet.model`` is always the untouched full model (it can be
saved, copied or evaluated as is).
"""
from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.bert.modeling_bert import eager_attention_forward
from transformers.utils import ModelOutput

from search_spaces.masks import SubNetworkMasks
from search_spaces.shape import ModelShape
from supernet.loading import model_shape

# How many distinct sub-networks keep their index tensors cached (an LRU: random sampling sees many).
DEFAULT_CACHE_SIZE = 256


def block_rows(indices: torch.Tensor, block: int) -> torch.Tensor:
    """Row indices of the blocks ``indices`` in order, block i owning rows i*block .. (i+1)*block - 1 (a head: head_dim)."""
    return (indices[:, None] * block + torch.arange(block)).flatten()


@dataclass(frozen=True, eq=False)
class Selection:
    """Which rows of a block a layer keeps: the first ``count`` (``index is None``) or the rows in ``index``."""

    count: int
    index: torch.Tensor | None = None

    @classmethod
    def from_mask(cls, keep: torch.Tensor, block: int, device: torch.device) -> "Selection":
        """Rows kept when each True entry of ``keep`` stands for ``block`` consecutive rows (a head: head_dim)."""
        count = int(keep.sum())
        if bool(keep[:count].all()):
            return cls(count * block)
        rows = block_rows(keep.nonzero().flatten(), block)
        return cls(count * block, rows.to(device))

    def rows(self, tensor: torch.Tensor) -> torch.Tensor:
        """The kept rows (dim 0) of a weight or bias: a view for a prefix, a gather otherwise."""
        return tensor[: self.count] if self.index is None else tensor.index_select(0, self.index)

    def columns(self, weight: torch.Tensor) -> torch.Tensor:
        """The kept input columns (dim 1) of a weight."""
        return weight[:, : self.count] if self.index is None else weight.index_select(1, self.index)


@dataclass(frozen=True)
class LayerPlan:
    """What one encoder layer of a sub-network computes: its kept heads and kept units."""

    num_heads: int
    heads: Selection
    units: Selection

    @property
    def has_attention(self) -> bool:
        return self.num_heads > 0

    @property
    def has_ffn(self) -> bool:
        return self.units.count > 0


def plan_layers(
    masks: SubNetworkMasks, shape: ModelShape, device: torch.device
) -> tuple[LayerPlan | None, ...]:
    """One plan per layer; ``None`` for a layer that keeps everything (it runs the model's own forward)."""
    heads, units = masks.heads.cpu(), masks.units.cpu()
    plans: list[LayerPlan | None] = []
    for layer_heads, layer_units in zip(heads, units):
        if bool(layer_heads.all()) and bool(layer_units.all()):
            plans.append(None)
            continue
        plans.append(
            LayerPlan(
                num_heads=int(layer_heads.sum()),
                heads=Selection.from_mask(layer_heads, shape.head_dim, device),
                units=Selection.from_mask(layer_units, 1, device),
            )
        )
    return tuple(plans)


def sliced_attention(
    attention: torch.nn.Module,
    plan: LayerPlan,
    hidden_states: torch.Tensor,
    attention_mask: torch.Tensor | None,
    attention_fn: Callable,
) -> torch.Tensor:
    """Post-LN attention block on the kept heads only: ``LN(x + W_o[:, kept] attn(x W_qkv[kept]))``."""
    self_attn, output = attention.self, attention.output
    heads = plan.heads
    head_shape = (*hidden_states.shape[:-1], plan.num_heads, self_attn.attention_head_size)

    def project(linear: torch.nn.Linear) -> torch.Tensor:
        return F.linear(hidden_states, heads.rows(linear.weight), heads.rows(linear.bias)).view(head_shape)

    query, key, value = (project(p).transpose(1, 2) for p in (self_attn.query, self_attn.key, self_attn.value))
    context, _ = attention_fn(
        self_attn,
        query,
        key,
        value,
        attention_mask,
        dropout=self_attn.dropout.p if self_attn.training else 0.0,
        scaling=self_attn.scaling,
    )
    context = context.reshape(*hidden_states.shape[:-1], heads.count)
    projected = F.linear(context, heads.columns(output.dense.weight), output.dense.bias)
    return output.LayerNorm(output.dropout(projected) + hidden_states)


def sliced_ffn(layer: torch.nn.Module, plan: LayerPlan, hidden_states: torch.Tensor) -> torch.Tensor:
    """Post-LN FFN block on the kept units only: ``LN(h + W2[:, kept] act(W1[kept] h))``."""
    intermediate, output = layer.intermediate, layer.output
    units = plan.units
    activations = intermediate.intermediate_act_fn(
        F.linear(hidden_states, units.rows(intermediate.dense.weight), units.rows(intermediate.dense.bias))
    )
    projected = F.linear(activations, units.columns(output.dense.weight), output.dense.bias)
    return output.LayerNorm(output.dropout(projected) + hidden_states)


def sliced_layer_forward(
    layer: torch.nn.Module,
    plan: LayerPlan,
    attention_fn: Callable,
    hidden_states: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    *args: Any,
    **kwargs: Any,
) -> torch.Tensor:
    """Drop-in ``forward`` of a BERT/RoBERTa encoder layer that computes only what ``plan`` keeps."""
    if plan.has_attention:
        hidden_states = sliced_attention(layer.attention, plan, hidden_states, attention_mask, attention_fn)
    if plan.has_ffn:
        hidden_states = sliced_ffn(layer, plan, hidden_states)
    return hidden_states


def encoder_layers(model: PreTrainedModel) -> torch.nn.ModuleList:
    """The ``ModuleList`` of encoder layers of a BERT/RoBERTa model with any head."""
    return model.base_model.encoder.layer


def attention_function(model: PreTrainedModel) -> Callable:
    """The attention kernel the model is configured with (``sdpa``, ``eager``, ...)."""
    return ALL_ATTENTION_FUNCTIONS.get_interface(model.config._attn_implementation, eager_attention_forward)


MaskKey = tuple[tuple[int, ...], bytes, bytes]


def _mask_key(masks: SubNetworkMasks) -> MaskKey:
    """A hashable identity of the masks' contents (equal masks in different tensors share cached plans)."""
    heads, units = masks.heads.cpu(), masks.units.cpu()
    return (*heads.shape, units.shape[1]), heads.numpy().tobytes(), units.numpy().tobytes()


class SuperNetwork(torch.nn.Module):
    """Wraps a HF ``{Bert,Roberta}For{SequenceClassification,MultipleChoice}`` and runs any sub-network sliced.

    ``set_sub_network(masks)`` (or ``with supernet.sub_network(masks):``) selects what the next forward passes
    compute; ``None`` is the full network, which runs the wrapped model unchanged. The forward takes and
    returns exactly what the wrapped model does. Per-sub-network index tensors are cached (LRU of
    ``cache_size``), so evaluating the same sub-network again costs no planning. Not supported while a
    sub-network is active: gradient checkpointing and ``output_attentions`` (the kept layers run their own
    code); ``output_hidden_states`` works.
    """

    def __init__(self, model: PreTrainedModel, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        super().__init__()
        self.model = model
        self.shape: ModelShape = model_shape(model)
        self.active_masks: SubNetworkMasks | None = None
        self._active_key: MaskKey | None = None
        self._cache_size = cache_size
        self._plans: OrderedDict[tuple[MaskKey, torch.device], tuple[LayerPlan | None, ...]] = OrderedDict()

    def set_sub_network(self, masks: SubNetworkMasks | None) -> None:
        """Activate ``masks`` for the following forward passes; ``None`` means the full network."""
        if masks is not None:
            masks.check_shape(self.shape)
        self.active_masks = masks
        self._active_key = None if masks is None else _mask_key(masks)

    def reset(self) -> None:
        """Go back to the full network."""
        self.set_sub_network(None)

    @contextmanager
    def sub_network(self, masks: SubNetworkMasks | None) -> Iterator["SuperNetwork"]:
        """Activate ``masks`` inside a ``with`` block and restore the previously active sub-network after it."""
        previous = self.active_masks
        self.set_sub_network(masks)
        try:
            yield self
        finally:
            self.set_sub_network(previous)

    def forward(self, **batch: Any) -> ModelOutput:
        """Same inputs and outputs as the wrapped model (``logits``, and ``loss`` when ``labels`` are given)."""
        if self.active_masks is None:
            return self.model(**batch)
        with self._sliced_layers(self._active_plans()):
            return self.model(**batch)

    def _active_plans(self) -> tuple[LayerPlan | None, ...]:
        """Layer plans of the active sub-network on the model's device, from the LRU cache when possible."""
        device = next(self.model.parameters()).device
        key = (self._active_key, device)
        plans = self._plans.get(key)
        if plans is None:
            plans = plan_layers(self.active_masks, self.shape, device)
            self._plans[key] = plans
            while len(self._plans) > self._cache_size:
                self._plans.popitem(last=False)
        else:
            self._plans.move_to_end(key)
        return plans

    @contextmanager
    def _sliced_layers(self, plans: tuple[LayerPlan | None, ...]) -> Iterator[None]:
        """Give the layers that lose heads/units a sliced ``forward`` for one call, then restore them."""
        attention_fn = attention_function(self.model)
        layers = encoder_layers(self.model)
        patched = []
        try:
            for layer, plan in zip(layers, plans):
                if plan is None:
                    continue
                patched.append((layer, layer.__dict__.get("forward")))
                layer.forward = partial(sliced_layer_forward, layer, plan, attention_fn)
            yield
        finally:
            for layer, previous in patched:
                if previous is None:
                    del layer.forward
                else:
                    layer.forward = previous
