"""Mask rescaling (Kwon et al., 2022, section 4.4): layer-wise least squares for the kept heads' and units' scales.

Layer by layer, the pruned model's sublayer output before its LayerNorm is a sum of one term per kept head
(its context times its slice of the output projection) or per kept unit (its activation times its column of
the FFN output layer), plus bias and residual. Scale factors s minimise
``|| sum_i s_i A_i - (teacher pre-LN output - bias - pruned residual) ||^2`` over the sample's tokens, given
the pruned model's own (already rescaled) inputs to that layer; the teacher runs on its own inputs. Padding
tokens are left out, and in the last layer only the first token, the only one the classifier reads.

The normal equations are accumulated in float64 and solved with ``torch.linalg.lstsq``; a solution that is
not finite, has a scale beyond ``max_scale`` or does not lower the fitted error keeps scales of 1. Scales
multiply gates, so :func:`baselines.pruning.masking.fold_scales` moves them into the weights.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from baselines.pruning.masking import encoder_layers, frozen, gated, masks_as_gates
from search_spaces.masks import SubNetworkMasks
from supernet.loading import model_shape

BLOCKS = ("attention", "ffn")


@dataclass(frozen=True)
class RescaleConfig:
    """``max_scale``: reject fitted scales larger in magnitude (as Kwon et al.); ``progress``: a bar per layer."""

    max_scale: float = 10.0
    progress: bool = False

    def __post_init__(self) -> None:
        if self.max_scale <= 0:
            raise ValueError(f"max_scale must be positive, got {self.max_scale}")


@dataclass
class RescaleResult:
    """Fitted gates (0 for removed heads/units) and the per-layer squared errors ``[L, 2]`` (attention, FFN).

    ``errors_before`` uses scales of 1 and ``errors_after`` the fitted scales, both on the fitting sample and
    both given the rescaled earlier layers; NaN where a block was not fitted.
    """

    head_scales: torch.Tensor
    unit_scales: torch.Tensor
    errors_before: torch.Tensor
    errors_after: torch.Tensor


class _StopForward(Exception):
    """Raised by a hook to end a forward pass once what it is run for has been recorded."""


def _stop(*_: Any) -> None:
    raise _StopForward


@dataclass
class _LayerInput:
    """One batch as an encoder layer sees it: hidden states, the other call arguments, the tokens to fit on."""

    hidden: torch.Tensor
    args: tuple
    kwargs: dict[str, Any]
    tokens: torch.Tensor  # bool [sequences, seq_len]: real (non-padding) tokens


def _first_layer_inputs(
    model: PreTrainedModel, batches: Iterable[Mapping[str, torch.Tensor]], device: torch.device
) -> list[_LayerInput]:
    """Embedding outputs and the encoder's per-layer call arguments (prepared attention mask) of every batch."""
    seen: list[tuple[torch.Tensor, tuple, dict[str, Any]]] = []

    def capture(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        kwargs = dict(kwargs)
        hidden = args[0] if args else kwargs.pop("hidden_states")
        seen.append((hidden.detach(), tuple(args[1:]), kwargs))
        _stop()

    captured: list[_LayerInput] = []
    handle = encoder_layers(model)[0].register_forward_pre_hook(capture, with_kwargs=True)
    try:
        for batch in batches:
            inputs = {key: value.to(device) for key, value in batch.items() if key != "labels"}
            try:
                model(**inputs)
            except _StopForward:
                pass
            hidden, args, kwargs = seen.pop()
            mask = inputs.get("attention_mask")
            if mask is None:
                tokens = torch.ones(hidden.shape[:2], dtype=torch.bool, device=device)
            else:
                tokens = mask.reshape(hidden.shape[:2]).bool()
            captured.append(_LayerInput(hidden, args, kwargs, tokens))
    finally:
        handle.remove()
    return captured


class _Recorder:
    """Hooks on one layer recording pre-LayerNorm sums, output-projection inputs and the FFN residual input."""

    def __init__(self, layer: torch.nn.Module) -> None:
        self.values: dict[str, torch.Tensor] = {}
        self.handles = [
            layer.attention.output.LayerNorm.register_forward_pre_hook(self._keep("attention_pre_ln")),
            layer.output.LayerNorm.register_forward_pre_hook(self._keep("ffn_pre_ln")),
            layer.attention.output.dense.register_forward_pre_hook(self._keep("context")),
            layer.output.dense.register_forward_pre_hook(self._keep("activations")),
            layer.output.register_forward_pre_hook(self._keep("ffn_residual", position=1), with_kwargs=True),
        ]

    def _keep(self, name: str, position: int = 0):
        def hook(module: torch.nn.Module, args: tuple, kwargs: dict | None = None) -> None:
            self.values[name] = args[position].detach()

        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _run_layer(
    model: PreTrainedModel, index: int, item: _LayerInput, hidden: torch.Tensor,
    head_gates: torch.Tensor, unit_gates: torch.Tensor, attention_only: bool = False,
) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
    """Run encoder layer ``index`` on ``hidden`` with gates; return its output and the recorded values.

    With ``attention_only`` the pass ends before the FFN block (and returns no output).
    """
    layer = encoder_layers(model)[index]
    recorder = _Recorder(layer)
    if attention_only:
        recorder.handles.append(layer.intermediate.register_forward_pre_hook(_stop))
    try:
        with gated(model, head_gates, unit_gates):
            output = layer(hidden, *item.args, **item.kwargs)
    except _StopForward:
        return None, recorder.values
    finally:
        recorder.remove()
    output = output[0] if isinstance(output, tuple) else output
    return output, recorder.values


@dataclass
class _NormalEquations:
    """``A^T A``, ``A^T b`` and ``b^T b`` of one least-squares problem, accumulated batch by batch in float64."""

    gram: torch.Tensor
    rhs: torch.Tensor
    target: float = 0.0

    @classmethod
    def zeros(cls, size: int) -> "_NormalEquations":
        return cls(torch.zeros(size, size, dtype=torch.float64), torch.zeros(size, dtype=torch.float64))

    def error(self, scales: torch.Tensor) -> float:
        """``||A s - b||^2`` from the accumulated sums."""
        s = scales.double()
        return float(s @ self.gram @ s - 2 * s @ self.rhs + self.target)

    def solve(self, max_scale: float) -> torch.Tensor | None:
        """Least-squares scales, or None when they are unusable or do not lower the error of scales 1."""
        # Solve for the change from 1, so directions the sample cannot identify keep a scale of 1.
        ones = torch.ones_like(self.rhs)
        change = torch.linalg.lstsq(self.gram, (self.rhs - self.gram @ ones).unsqueeze(1), driver="gelsd").solution
        solution = ones + change.squeeze(1)
        if not torch.isfinite(solution).all() or solution.abs().max() > max_scale:
            return None
        if self.error(solution) > self.error(torch.ones_like(solution)):
            return None
        return solution


def _attention_terms(context: torch.Tensor, weight: torch.Tensor, kept: torch.Tensor, head_dim: int) -> torch.Tensor:
    """Per kept head, its context times its output-projection slice: ``[tokens, kept heads, hidden]``."""
    tokens = context.shape[0]
    per_head = context.view(tokens, -1, head_dim)[:, kept]  # [t, k, dh]
    w = weight.view(weight.shape[0], -1, head_dim)[:, kept]  # [d, k, dh]
    return torch.einsum("tkh,dkh->tkd", per_head, w)


# Products over a batch's tokens run in the model's precision; the sums over batches are float64.
def _accumulate_attention(eq: _NormalEquations, terms: torch.Tensor, target: torch.Tensor) -> None:
    eq.gram += torch.einsum("tkd,tjd->kj", terms, terms).double().cpu()
    eq.rhs += torch.einsum("tkd,td->k", terms, target).double().cpu()
    eq.target += float(target.double().pow(2).sum())


def _accumulate_ffn(
    eq: _NormalEquations, activations: torch.Tensor, weight: torch.Tensor, target: torch.Tensor
) -> None:
    """Unit j's term is ``h_j w_j``: ``A^T A = (H^T H) * (W^T W)`` and ``A^T b = sum_t h_t * (b_t W)``."""
    h = activations
    eq.gram += ((h.T @ h).double() * (weight.T @ weight).double()).cpu()
    eq.rhs += (h * (target @ weight)).sum(dim=0).double().cpu()
    eq.target += float(target.double().pow(2).sum())


def _fit_tokens(item: _LayerInput, last: bool) -> torch.Tensor:
    """The tokens a layer is fitted on: real tokens, or in the last layer only the first token."""
    if not last:
        return item.tokens
    tokens = torch.zeros_like(item.tokens)
    tokens[:, 0] = item.tokens[:, 0]
    return tokens


@dataclass
class _Walk:
    """One pass over the layers: the batches, the teacher's and the student's hidden states, the student's gates."""

    model: PreTrainedModel
    inputs: list[_LayerInput]
    teacher_gates: tuple[torch.Tensor, torch.Tensor]
    heads: torch.Tensor  # float64 [L, H] student gates (0 = removed, else scale), on the CPU; fitted in place
    units: torch.Tensor
    head_dim: int
    teacher_states: list[torch.Tensor] = field(init=False)
    student_states: list[torch.Tensor] = field(init=False)

    def __post_init__(self) -> None:
        self.teacher_states = [item.hidden for item in self.inputs]
        self.student_states = list(self.teacher_states)
        param = next(self.model.parameters())
        self.device, self.dtype = param.device, param.dtype

    def student_gates(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads.to(self.device, self.dtype), self.units.to(self.device, self.dtype)

    def teacher_pass(self, index: int, last: bool) -> list[dict[str, torch.Tensor]]:
        """Advance the teacher through layer ``index``; return its pre-LayerNorm sums on the fitted tokens."""
        targets = []
        for b, item in enumerate(self.inputs):
            self.teacher_states[b], recorded = _run_layer(
                self.model, index, item, self.teacher_states[b], *self.teacher_gates
            )
            tokens = _fit_tokens(item, last)
            targets.append({key: recorded[key][tokens] for key in ("attention_pre_ln", "ffn_pre_ln")})
        return targets

    def attention_equations(self, index: int, last: bool, targets: list[dict[str, torch.Tensor]]) -> _NormalEquations:
        dense = encoder_layers(self.model)[index].attention.output.dense
        kept = self.heads[index] != 0
        eq = _NormalEquations.zeros(int(kept.sum()))
        for b, item in enumerate(self.inputs):
            _, student = _run_layer(
                self.model, index, item, self.student_states[b], *self.student_gates(), attention_only=True
            )
            tokens = _fit_tokens(item, last)
            target = targets[b]["attention_pre_ln"] - dense.bias - self.student_states[b][tokens]
            terms = _attention_terms(student["context"][tokens], dense.weight, kept.to(self.device), self.head_dim)
            _accumulate_attention(eq, terms, target)
        return eq

    def ffn_equations(self, index: int, last: bool, targets: list[dict[str, torch.Tensor]]) -> _NormalEquations:
        dense = encoder_layers(self.model)[index].output.dense
        kept = (self.units[index] != 0).to(self.device)
        eq = _NormalEquations.zeros(int(kept.sum()))
        for b, item in enumerate(self.inputs):
            _, student = _run_layer(self.model, index, item, self.student_states[b], *self.student_gates())
            tokens = _fit_tokens(item, last)
            target = targets[b]["ffn_pre_ln"] - dense.bias - student["ffn_residual"][tokens]
            _accumulate_ffn(eq, student["activations"][tokens][:, kept], dense.weight[:, kept], target)
        return eq

    def student_pass(self, index: int) -> None:
        for b, item in enumerate(self.inputs):
            self.student_states[b], _ = _run_layer(
                self.model, index, item, self.student_states[b], *self.student_gates()
            )


def _update(gates: torch.Tensor, eq: _NormalEquations, fit: bool, max_scale: float) -> tuple[float, float]:
    """Set the kept entries of one layer's ``gates`` (fitted, or kept as given); return errors at 1 and after."""
    kept = gates != 0
    ones = torch.ones(int(kept.sum()), dtype=torch.float64)
    if fit:
        solution = eq.solve(max_scale)
        gates[kept] = solution if solution is not None else ones
    return eq.error(ones), eq.error(gates[kept])


def _layerwise(
    model: PreTrainedModel,
    masks: SubNetworkMasks,
    batches: Iterable[Mapping[str, torch.Tensor]],
    teacher: SubNetworkMasks | None,
    head_scales: torch.Tensor | None,
    unit_scales: torch.Tensor | None,
    config: RescaleConfig,
) -> RescaleResult:
    """Walk the layers once; fit scales where given ``None``, else only measure the errors of the given ones."""
    shape = model_shape(model)
    masks.check_shape(shape)
    teacher = teacher if teacher is not None else SubNetworkMasks.full(shape)
    teacher.check_shape(shape)
    param = next(model.parameters())
    heads, units = masks_as_gates(masks, torch.float64, torch.device("cpu"))
    if head_scales is not None:
        heads = heads * head_scales.double().cpu()
    if unit_scales is not None:
        units = units * unit_scales.double().cpu()
    before = torch.full((shape.num_layers, len(BLOCKS)), float("nan"), dtype=torch.float64)
    after = before.clone()
    with frozen(model), torch.no_grad():
        walk = _Walk(
            model=model,
            inputs=_first_layer_inputs(model, batches, param.device),
            teacher_gates=masks_as_gates(teacher, param.dtype, param.device),
            heads=heads,
            units=units,
            head_dim=shape.head_dim,
        )
        for index in tqdm(range(shape.num_layers), desc="rescale", disable=not config.progress, leave=False):
            last = index == shape.num_layers - 1
            targets = walk.teacher_pass(index, last)
            if masks.heads[index].any() and teacher.heads[index].any():
                eq = walk.attention_equations(index, last, targets)
                before[index, 0], after[index, 0] = _update(heads[index], eq, head_scales is None, config.max_scale)
            if masks.units[index].any() and teacher.units[index].any():
                eq = walk.ffn_equations(index, last, targets)
                before[index, 1], after[index, 1] = _update(units[index], eq, unit_scales is None, config.max_scale)
            walk.student_pass(index)
    return RescaleResult(head_scales=heads.float(), unit_scales=units.float(), errors_before=before, errors_after=after)


def rescale_masks(
    model: PreTrainedModel,
    masks: SubNetworkMasks,
    batches: Iterable[Mapping[str, torch.Tensor]],
    teacher: SubNetworkMasks | None = None,
    config: RescaleConfig = RescaleConfig(),
) -> RescaleResult:
    """Fit scales of the kept heads and units of ``masks`` so each layer reconstructs the teacher's (default: full)."""
    return _layerwise(model, masks, batches, teacher, None, None, config)


def reconstruction_errors(
    model: PreTrainedModel,
    masks: SubNetworkMasks,
    batches: Iterable[Mapping[str, torch.Tensor]],
    head_scales: torch.Tensor | None = None,
    unit_scales: torch.Tensor | None = None,
    teacher: SubNetworkMasks | None = None,
) -> torch.Tensor:
    """``[L, 2]`` squared layer-wise errors of the sub-network with given scales (default 1) against the teacher."""
    shape = model_shape(model)
    head_scales = torch.ones(shape.num_layers, shape.num_heads) if head_scales is None else head_scales
    unit_scales = torch.ones(shape.num_layers, shape.num_units) if unit_scales is None else unit_scales
    return _layerwise(model, masks, batches, teacher, head_scales, unit_scales, RescaleConfig()).errors_after
