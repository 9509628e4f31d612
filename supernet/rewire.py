"""Rewiring: reorder every layer's heads and FFN units by importance, so that prefixes keep the best ones.

The ``small`` and ``medium`` spaces keep the *first* heads and units of a layer. In a pre-trained or
fine-tuned model that order is arbitrary, so a prefix sub-network keeps a random half of what matters. A
permutation of heads (Q/K/V output rows and output-projection input columns, per head block) and of units
(FFN input rows and output columns) leaves the full network's function unchanged, but puts the most
important heads and units first (DynaBERT's "network rewiring", Hou et al. 2020). Done once, after the full
network has learnt the task, it gives every prefix sub-network the most useful part of the weights.

Optimiser moments are permuted with the weights, so training continues as if the model had always been
stored in the new order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import torch
from transformers import PreTrainedModel

from supernet.loading import model_shape
from supernet.model import block_rows
from supernet.training import Trainer, TrainerCallback

# (model, batches) -> (head scores [L, H], unit scores [L, U]); higher = more important.
ImportanceFn = Callable[[PreTrainedModel, Iterable[Mapping[str, torch.Tensor]]], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Rewiring:
    """The applied orders: ``heads[l]`` lists layer l's old head indices in their new positions (units likewise)."""

    heads: torch.Tensor
    units: torch.Tensor

    def to_dict(self) -> dict[str, list[list[int]]]:
        return {"heads": self.heads.tolist(), "units": self.units.tolist()}


def _permute(param: torch.nn.Parameter, index: torch.Tensor, dim: int, optimizer: torch.optim.Optimizer | None) -> None:
    """Reorder ``param`` along ``dim`` in place, and every same-shaped tensor of its optimiser state with it."""
    index = index.to(param.device)
    with torch.no_grad():
        param.copy_(param.index_select(dim, index))
    state = optimizer.state.get(param, {}) if optimizer is not None else {}
    for value in state.values():
        if torch.is_tensor(value) and value.shape == param.shape:
            value.copy_(value.index_select(dim, index.to(value.device)))


def permute_layer(
    layer: torch.nn.Module,
    head_order: torch.Tensor,
    unit_order: torch.Tensor,
    head_dim: int,
    optimizer: torch.optim.Optimizer | None = None,
) -> None:
    """Reorder one BERT/RoBERTa encoder layer's heads and units (new position i holds old ``order[i]``)."""
    rows = block_rows(head_order, head_dim)
    attention = layer.attention
    for linear in (attention.self.query, attention.self.key, attention.self.value):
        _permute(linear.weight, rows, 0, optimizer)
        _permute(linear.bias, rows, 0, optimizer)
    _permute(attention.output.dense.weight, rows, 1, optimizer)
    _permute(layer.intermediate.dense.weight, unit_order, 0, optimizer)
    _permute(layer.intermediate.dense.bias, unit_order, 0, optimizer)
    _permute(layer.output.dense.weight, unit_order, 1, optimizer)


def importance_orders(head_scores: torch.Tensor, unit_scores: torch.Tensor) -> Rewiring:
    """Per layer, heads and units by descending score (stable: equal scores keep their current order)."""
    heads = torch.argsort(-head_scores.double(), dim=1, stable=True)
    units = torch.argsort(-unit_scores.double(), dim=1, stable=True)
    return Rewiring(heads=heads, units=units)


def rewire(
    model: PreTrainedModel,
    head_scores: torch.Tensor,
    unit_scores: torch.Tensor,
    optimizer: torch.optim.Optimizer | None = None,
) -> Rewiring:
    """Put each layer's most important heads and units first, in place; returns the orders applied."""
    shape = model_shape(model)
    expected = ((shape.num_layers, shape.num_heads), (shape.num_layers, shape.num_units))
    if (tuple(head_scores.shape), tuple(unit_scores.shape)) != expected:
        raise ValueError(
            f"importance scores must be heads {expected[0]} and units {expected[1]}, got "
            f"{tuple(head_scores.shape)} and {tuple(unit_scores.shape)}"
        )
    orders = importance_orders(head_scores.cpu(), unit_scores.cpu())
    for layer, heads, units in zip(model.base_model.encoder.layer, orders.heads, orders.units):
        permute_layer(layer, heads, units, shape.head_dim, optimizer)
    return orders


class RewireCallback(TrainerCallback):
    """Rewire the super-network once, before training step ``at_step``, by ``importance`` over ``batches``.

    ``at_step`` equal to the run's total steps rewires after the last step (for plain fine-tuning, whose
    sub-networks are only searched afterwards). ``batches`` must not come from the training loader itself
    (that would advance its shuffling): pass a fixed, unshuffled sample of training batches. The epoch in
    which it happened records ``rewired_at_step``; a resumed run past that step does not rewire again.
    Put it before validation callbacks, so that an epoch-end rewiring is what they score.
    """

    def __init__(self, at_step: int, importance: ImportanceFn, batches: list[Mapping[str, torch.Tensor]]) -> None:
        if at_step < 0:
            raise ValueError(f"at_step must be >= 0, got {at_step}")
        self.at_step = at_step
        self.importance = importance
        self.batches = batches
        self.applied: Rewiring | None = None

    def _apply(self, trainer: Trainer) -> None:
        model = trainer.supernet.model
        head_scores, unit_scores = self.importance(model, self.batches)
        self.applied = rewire(model, head_scores, unit_scores, trainer.optimizer)

    def on_step_begin(self, trainer: Trainer, step: int) -> None:
        if step == self.at_step:
            self._apply(trainer)

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> dict[str, Any] | None:
        if trainer.step == self.at_step == trainer.total_steps:
            self._apply(trainer)
        if self.applied is not None and (epoch - 1) * trainer.steps_per_epoch <= self.at_step <= trainer.step:
            return {"rewired_at_step": self.at_step}
        return None
