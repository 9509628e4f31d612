"""Differentiable head and unit mask variables on an unmodified HF encoder, and gradients with respect to them.

Pruning criteria (Michel et al.'s head importance, Kwon et al.'s Fisher information) need the loss as a
function of one real-valued gate per head and per FFN unit. Transformers 5 has no ``head_mask`` argument, so
forward hooks multiply each head's context vector (the input of the attention output projection) and each
unit's activation (the input of the FFN output layer) by its gate. Gates may be shared by the whole batch
(``[layers, heads]``) or given per sequence (``[sequences, layers, heads]``): the gradient of the summed loss
with respect to per-sequence gates is the per-example gradient, from one backward pass.

A layer whose gates are all zero skips its block (output = residual input), as the extracted sub-network does;
with 0/1 gates the hooked model therefore computes exactly the sub-network of ``supernet.extract``. Real-valued
gates of kept heads/units act as scale factors, which :func:`fold_scales` moves into the weights.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping

import torch
from torch.utils.hooks import RemovableHandle
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from search_spaces.masks import SubNetworkMasks
from supernet.loading import model_shape
from supernet.precision import FP32, Precision
from supernet.strategies.losses import is_regression, task_loss


def encoder_layers(model: PreTrainedModel) -> torch.nn.ModuleList:
    """The transformer layers of a BERT/RoBERTa model with a task head."""
    return model.base_model.encoder.layer


def _gate_input(gate: torch.Tensor, repeat: int):
    """Pre-hook multiplying the first input [..., tokens, features] by ``gate`` ([g] or [sequences, g])."""

    def hook(module: torch.nn.Module, args: tuple) -> tuple:
        scale = gate.repeat_interleave(repeat, dim=-1) if repeat > 1 else gate
        if scale.dim() == 2:  # per sequence: broadcast over tokens
            scale = scale.unsqueeze(1)
        return (args[0] * scale.to(args[0].dtype), *args[1:])

    return hook


def _skip_attention(module: torch.nn.Module, args: tuple, kwargs: dict, output: tuple) -> tuple:
    """The attention block returns its input hidden states (the sub-network has no head in this layer)."""
    return (args[0] if args else kwargs["hidden_states"], None)


def _skip_ffn(module: torch.nn.Module, args: tuple, kwargs: dict, output: torch.Tensor) -> torch.Tensor:
    """The FFN output block returns its residual input (the sub-network has no unit in this layer)."""
    return args[1] if len(args) > 1 else kwargs["input_tensor"]


def _all_zero(gates: torch.Tensor, layer: int) -> bool:
    return not bool(gates.detach().select(-2, layer).ne(0).any())


def register_gates(
    model: PreTrainedModel, head_gates: torch.Tensor | None = None, unit_gates: torch.Tensor | None = None
) -> list[RemovableHandle]:
    """Install gate hooks (``None``: leave heads or units as they are); remove them with ``handle.remove()``."""
    shape = model_shape(model)
    handles: list[RemovableHandle] = []
    for index, layer in enumerate(encoder_layers(model)):
        if head_gates is not None:
            if _all_zero(head_gates, index):
                handles.append(layer.attention.register_forward_hook(_skip_attention, with_kwargs=True))
            else:
                hook = _gate_input(head_gates.select(-2, index), shape.head_dim)
                handles.append(layer.attention.output.dense.register_forward_pre_hook(hook))
        if unit_gates is not None:
            if _all_zero(unit_gates, index):
                handles.append(layer.output.register_forward_hook(_skip_ffn, with_kwargs=True))
            else:
                hook = _gate_input(unit_gates.select(-2, index), 1)
                handles.append(layer.output.dense.register_forward_pre_hook(hook))
    return handles


@contextmanager
def gated(
    model: PreTrainedModel, head_gates: torch.Tensor | None = None, unit_gates: torch.Tensor | None = None
) -> Iterator[PreTrainedModel]:
    """Inside the block, ``model`` runs with the given head/unit gates."""
    handles = register_gates(model, head_gates, unit_gates)
    try:
        yield model
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def frozen(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Eval mode and no parameter gradients inside the block (gates are the only leaves); restored after."""
    was_training = model.training
    flags = [(param, param.requires_grad) for param in model.parameters()]
    model.eval()
    for param, _ in flags:
        param.requires_grad_(False)
    try:
        yield model
    finally:
        for param, flag in flags:
            param.requires_grad_(flag)
        model.train(was_training)


def masks_as_gates(
    masks: SubNetworkMasks, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """0/1 float gates of a sub-network."""
    return masks.heads.to(device=device, dtype=dtype), masks.units.to(device=device, dtype=dtype)


@dataclass
class MaskGradients:
    """Per-example gradients of the loss w.r.t. head gates ``[examples, L, H]`` and unit gates ``[examples, L, U]``."""

    heads: torch.Tensor | None
    units: torch.Tensor | None


def _batch_size(batch: Mapping[str, torch.Tensor]) -> int:
    return int(batch["input_ids"].shape[0])


def _sequences_per_example(batch: Mapping[str, torch.Tensor]) -> int:
    """1 for sequence classification, the number of choices for multiple choice ([batch, choices, tokens])."""
    ids = batch["input_ids"]
    return int(ids.shape[1]) if ids.dim() == 3 else 1


def mask_gradients(
    model: PreTrainedModel,
    batches: Iterable[Mapping[str, torch.Tensor]],
    masks: SubNetworkMasks | None = None,
    heads: bool = True,
    units: bool = True,
    progress: bool = False,
    description: str = "mask gradients",
    precision: Precision = FP32,
) -> MaskGradients:
    """Per-example gradients of the task loss w.r.t. gates set to the 0/1 ``masks`` (default: all ones).

    Gates of removed heads/units stay 0 (their gradient is still reported); layers whose gates are all 0 are
    skipped as in the extracted model. Batches go to the model's device; gradients are kept on the CPU in float32.
    The forward passes run under ``precision``'s autocast (gates and the loss stay float32).
    """
    if not (heads or units):
        raise ValueError("ask for the gradients of head gates, unit gates or both")
    shape = model_shape(model)
    masks = masks if masks is not None else SubNetworkMasks.full(shape)
    masks.check_shape(shape)
    param = next(model.parameters())
    device = param.device
    regression = is_regression(model.config, shape.head)
    base_heads, base_units = masks_as_gates(masks, param.dtype, device)
    head_grads: list[torch.Tensor] = []
    unit_grads: list[torch.Tensor] = []
    with frozen(model):
        for batch in tqdm(batches, desc=description, disable=not progress, leave=False, dynamic_ncols=True):
            batch = {key: value.to(device) for key, value in batch.items()}
            examples, per_example = _batch_size(batch), _sequences_per_example(batch)
            sequences = examples * per_example
            gates = {
                "head_gates": base_heads.expand(sequences, -1, -1).clone().requires_grad_() if heads else None,
                "unit_gates": base_units.expand(sequences, -1, -1).clone().requires_grad_() if units else None,
            }
            labels = batch.pop("labels")
            with gated(model, **gates), precision.autocast(model):
                logits = model(**batch).logits
            logits = logits.float()
            # Summed (not averaged) loss: the gradient w.r.t. sequence i's gates is example i's gradient.
            loss = task_loss(logits, labels, regression) * examples
            leaves = [gate for gate in gates.values() if gate is not None]
            grads = iter(torch.autograd.grad(loss, leaves))
            for wanted, store in ((heads, head_grads), (units, unit_grads)):
                if wanted:
                    grad = next(grads).detach().float()
                    store.append(grad.view(examples, per_example, *grad.shape[1:]).sum(1).cpu())
    return MaskGradients(
        heads=torch.cat(head_grads) if head_grads else None,
        units=torch.cat(unit_grads) if unit_grads else None,
    )


@torch.no_grad()
def fold_scales(
    model: PreTrainedModel, head_scales: torch.Tensor | None = None, unit_scales: torch.Tensor | None = None
) -> PreTrainedModel:
    """Multiply each head's output-projection columns and each unit's FFN-output column by its scale, in place.

    Afterwards the plain model computes what the gated model computed with these gates (zero gates excepted:
    extract the sub-network to drop those). Biases are not scaled, exactly as gating leaves them.
    """
    shape = model_shape(model)
    for index, layer in enumerate(encoder_layers(model)):
        if head_scales is not None:
            weight = layer.attention.output.dense.weight  # [d, heads * head_dim]
            scale = head_scales[index].repeat_interleave(shape.head_dim).to(weight)
            weight.mul_(scale.unsqueeze(0))
        if unit_scales is not None:
            weight = layer.output.dense.weight  # [d, units]
            weight.mul_(unit_scales[index].to(weight).unsqueeze(0))
    return model

