"""Extract a sub-network as a standalone, physically smaller model, and save/load it.

Two kinds of extracted model, chosen by :func:`extract_sub_network`:

* **Plain** Hugging Face model (loads with ``transformers.AutoModelFor...from_pretrained(dir)`` without this
  package). Possible only when every kept layer keeps ALL heads and all kept layers keep the same number
  u > 0 of units: plain ``transformers`` derives the head size as ``hidden_size // num_attention_heads``, so
  a plain config cannot express fewer heads, nor per-layer sizes, nor skipped blocks. The config then gets
  ``num_hidden_layers`` = kept layers and ``intermediate_size`` = u.
* **Pruned** model of this package (every other case: fewer heads, non-uniform layers, layers without
  heads or without units). Its config (model type ``plm_nas_bert``/``plm_nas_roberta``) keeps the source's
  ``hidden_size``/``num_attention_heads`` and adds ``plm_nas_heads_per_layer``, ``plm_nas_units_per_layer``
  (one entry per kept layer) and ``plm_nas_head_dim``; a layer with 0 heads has no attention block
  (LayerNorm included) and a layer with 0 units no FFN block. Importing this module registers the classes
  with ``AutoConfig``/``AutoModelFor{SequenceClassification,MultipleChoice}``, so after ``import supernet``
  the Auto classes load them too; :func:`load_extracted` loads either kind.

Layers that keep neither heads nor units are dropped (renumbered), so the extracted model's parameter count
equals the sub-network's count in method.md section 3.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForMultipleChoice,
    AutoModelForSequenceClassification,
    BertConfig,
    BertForMultipleChoice,
    BertForSequenceClassification,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    RobertaConfig,
    RobertaForMultipleChoice,
    RobertaForSequenceClassification,
)
from transformers.models.bert.modeling_bert import BertLayer
from transformers.models.roberta.modeling_roberta import RobertaLayer

from search_spaces.masks import SubNetworkMasks
from search_spaces.shape import ModelShape
from supernet.loading import model_shape, resolve_device
from supernet.model import Selection, SuperNetwork

MASKS_FILE = "plm_nas_masks.json"


# --------------------------------------------------------------------------------------------------------------
# Configs and model classes of pruned (non-plain) sub-networks
# --------------------------------------------------------------------------------------------------------------


class PrunedBertConfig(BertConfig):
    """``BertConfig`` plus per-layer head and unit counts of an extracted sub-network."""

    model_type = "plm_nas_bert"
    plm_nas_heads_per_layer: list[int] | None = None
    plm_nas_units_per_layer: list[int] | None = None
    plm_nas_head_dim: int | None = None


class PrunedRobertaConfig(RobertaConfig):
    """``RobertaConfig`` plus per-layer head and unit counts of an extracted sub-network."""

    model_type = "plm_nas_roberta"
    plm_nas_heads_per_layer: list[int] | None = None
    plm_nas_units_per_layer: list[int] | None = None
    plm_nas_head_dim: int | None = None


def _resize_linear(linear: nn.Linear, in_features: int, out_features: int) -> nn.Linear:
    """A fresh ``nn.Linear`` of the given size on the same device/dtype (weights are loaded afterwards)."""
    return nn.Linear(in_features, out_features, device=linear.weight.device, dtype=linear.weight.dtype)


class PrunedLayerMixin:
    """A BERT/RoBERTa encoder layer with ``num_heads`` heads and ``num_units`` units; 0 removes the block."""

    def __init__(self, config: PretrainedConfig, layer_idx: int, num_heads: int, num_units: int) -> None:
        super().__init__(config, layer_idx=layer_idx)
        hidden, head_dim = config.hidden_size, config.plm_nas_head_dim
        if num_heads:
            attn, out = self.attention.self, self.attention.output
            attn.num_attention_heads, attn.all_head_size = num_heads, num_heads * head_dim
            attn.attention_head_size, attn.scaling = head_dim, head_dim**-0.5
            for name in ("query", "key", "value"):
                setattr(attn, name, _resize_linear(getattr(attn, name), hidden, attn.all_head_size))
            out.dense = _resize_linear(out.dense, attn.all_head_size, hidden)
        else:
            self.attention = None
        if num_units:
            self.intermediate.dense = _resize_linear(self.intermediate.dense, hidden, num_units)
            self.output.dense = _resize_linear(self.output.dense, num_units, hidden)
        else:
            self.intermediate = None
            self.output = None

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        cache: Any = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        """Post-LN attention block (if any heads), then post-LN FFN block (if any units)."""
        if self.attention is not None:
            hidden_states = self.attention(hidden_states, attention_mask, cache=cache, **kwargs)[0]
        if self.output is not None:
            hidden_states = self.output(self.intermediate(hidden_states), hidden_states)
        return hidden_states


class PrunedBertLayer(PrunedLayerMixin, BertLayer):
    """``BertLayer`` with per-layer sizes."""


class PrunedRobertaLayer(PrunedLayerMixin, RobertaLayer):
    """``RobertaLayer`` with per-layer sizes."""


class PrunedModelMixin:
    """Builds the HF model, then replaces its encoder layers by pruned layers of the config's per-layer sizes."""

    layer_class: type[nn.Module]

    def __init__(self, config: PretrainedConfig) -> None:
        super().__init__(config)
        _check_pruned_config(config)
        self.base_model.encoder.layer = nn.ModuleList(
            self.layer_class(config, layer_idx=i, num_heads=h, num_units=u)
            for i, (h, u) in enumerate(zip(config.plm_nas_heads_per_layer, config.plm_nas_units_per_layer))
        )
        self.post_init()


class PrunedBertForSequenceClassification(PrunedModelMixin, BertForSequenceClassification):
    config_class = PrunedBertConfig
    layer_class = PrunedBertLayer


class PrunedBertForMultipleChoice(PrunedModelMixin, BertForMultipleChoice):
    config_class = PrunedBertConfig
    layer_class = PrunedBertLayer


class PrunedRobertaForSequenceClassification(PrunedModelMixin, RobertaForSequenceClassification):
    config_class = PrunedRobertaConfig
    layer_class = PrunedRobertaLayer


class PrunedRobertaForMultipleChoice(PrunedModelMixin, RobertaForMultipleChoice):
    config_class = PrunedRobertaConfig
    layer_class = PrunedRobertaLayer


def _check_pruned_config(config: PretrainedConfig) -> None:
    heads, units = config.plm_nas_heads_per_layer, config.plm_nas_units_per_layer
    if heads is None or units is None or config.plm_nas_head_dim is None:
        raise ValueError(
            "a pruned config needs plm_nas_heads_per_layer, plm_nas_units_per_layer and plm_nas_head_dim; "
            "create pruned models with supernet.extract.extract_sub_network"
        )
    if not len(heads) == len(units) == config.num_hidden_layers:
        raise ValueError(
            f"plm_nas_heads_per_layer ({len(heads)}) and plm_nas_units_per_layer ({len(units)}) must have "
            f"num_hidden_layers={config.num_hidden_layers} entries"
        )


@dataclass(frozen=True)
class Family:
    """The plain and pruned classes of one model family, per task head."""

    pruned_config: type[PretrainedConfig]
    plain_models: dict[str, type[PreTrainedModel]]
    pruned_models: dict[str, type[PreTrainedModel]]


FAMILIES: dict[str, Family] = {
    "bert": Family(
        pruned_config=PrunedBertConfig,
        plain_models={
            "sequence-classification": BertForSequenceClassification,
            "multiple-choice": BertForMultipleChoice,
        },
        pruned_models={
            "sequence-classification": PrunedBertForSequenceClassification,
            "multiple-choice": PrunedBertForMultipleChoice,
        },
    ),
    "roberta": Family(
        pruned_config=PrunedRobertaConfig,
        plain_models={
            "sequence-classification": RobertaForSequenceClassification,
            "multiple-choice": RobertaForMultipleChoice,
        },
        pruned_models={
            "sequence-classification": PrunedRobertaForSequenceClassification,
            "multiple-choice": PrunedRobertaForMultipleChoice,
        },
    ),
}

AUTO_CLASSES: dict[str, Any] = {
    "sequence-classification": AutoModelForSequenceClassification,
    "multiple-choice": AutoModelForMultipleChoice,
}


def _register_auto_classes() -> None:
    """Let ``AutoConfig``/``AutoModelFor...`` load pruned models (idempotent)."""
    for family in FAMILIES.values():
        AutoConfig.register(family.pruned_config.model_type, family.pruned_config, exist_ok=True)
        for head, model_class in family.pruned_models.items():
            AUTO_CLASSES[head].register(family.pruned_config, model_class, exist_ok=True)


_register_auto_classes()


# --------------------------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtractionPlan:
    """Which source layers survive, what each keeps, and whether a plain HF config can express it."""

    kept_layers: list[int]
    heads_per_layer: list[int]
    units_per_layer: list[int]
    plain: bool

    @classmethod
    def from_masks(cls, masks: SubNetworkMasks, shape: ModelShape) -> "ExtractionPlan":
        kept = [i for i, keep in enumerate(masks.layers_kept) if keep]
        heads = [masks.heads_per_layer[i] for i in kept]
        units = [masks.units_per_layer[i] for i in kept]
        plain = all(h == shape.num_heads for h in heads) and len(set(units)) <= 1 and all(u > 0 for u in units)
        return cls(kept, heads, units, plain)


def is_plain(masks: SubNetworkMasks, shape: ModelShape) -> bool:
    """True when the extracted sub-network loads as a plain ``transformers`` model (see module docstring)."""
    return ExtractionPlan.from_masks(masks, shape).plain


def _extracted_config(source: PretrainedConfig, shape: ModelShape, plan: ExtractionPlan) -> PretrainedConfig:
    values = source.to_dict()
    for key in ("model_type", "architectures", "transformers_version"):
        values.pop(key, None)
    values["num_hidden_layers"] = len(plan.kept_layers)
    if plan.plain:
        config = type(source).from_dict(values)
        if plan.units_per_layer:
            config.intermediate_size = plan.units_per_layer[0]
    else:
        config = FAMILIES[shape.model_type].pruned_config.from_dict(
            values,
            plm_nas_heads_per_layer=list(plan.heads_per_layer),
            plm_nas_units_per_layer=list(plan.units_per_layer),
            plm_nas_head_dim=shape.head_dim,
        )
    config._attn_implementation = source._attn_implementation
    return config


def _slice_layer_entry(name: str, tensor: torch.Tensor, heads: Selection, units: Selection) -> torch.Tensor | None:
    """The kept part of one encoder-layer state-dict entry (name relative to the layer); None if removed."""
    if name.startswith("attention."):
        if heads.count == 0:
            return None
        if name.startswith("attention.self.") and name.split(".")[2] in ("query", "key", "value"):
            return heads.rows(tensor)
        if name == "attention.output.dense.weight":
            return heads.columns(tensor)
        return tensor
    if name.startswith(("intermediate.", "output.")):
        if units.count == 0:
            return None
        if name.startswith("intermediate.dense."):
            return units.rows(tensor)
        if name == "output.dense.weight":
            return units.columns(tensor)
        return tensor
    raise ValueError(f"unexpected encoder-layer parameter {name!r}")


def _extracted_state_dict(
    model: PreTrainedModel, masks: SubNetworkMasks, shape: ModelShape, plan: ExtractionPlan
) -> dict[str, torch.Tensor]:
    """Deep copies of the kept weights, with encoder layers renumbered."""
    layer_prefix = f"{model.base_model_prefix}.encoder.layer."
    new_index = {old: new for new, old in enumerate(plan.kept_layers)}
    state: dict[str, torch.Tensor] = {}
    for key, tensor in model.state_dict().items():
        if not key.startswith(layer_prefix):
            state[key] = tensor.detach().clone()
            continue
        index, name = key[len(layer_prefix) :].split(".", 1)
        if int(index) not in new_index:
            continue
        heads = Selection.from_mask(masks.heads[int(index)].cpu(), shape.head_dim, tensor.device)
        units = Selection.from_mask(masks.units[int(index)].cpu(), 1, tensor.device)
        kept = _slice_layer_entry(name, tensor, heads, units)
        if kept is not None:
            state[f"{layer_prefix}{new_index[int(index)]}.{name}"] = kept.detach().clone()
    return state


def extract_sub_network(
    model_or_supernet: PreTrainedModel | SuperNetwork, masks: SubNetworkMasks | None = None
) -> PreTrainedModel:
    """A standalone model holding copies of only the weights the sub-network ``masks`` keeps (``None``: all).

    The source is left unchanged. The result is a plain HF model when a plain config can express the
    sub-network and a ``Pruned...`` model of this package otherwise (see the module docstring); it is on the
    source's device and dtype, in eval mode (as ``from_pretrained`` returns models).
    """
    model = model_or_supernet.model if isinstance(model_or_supernet, SuperNetwork) else model_or_supernet
    shape = model_shape(model)
    masks = SubNetworkMasks.full(shape) if masks is None else masks
    masks.check_shape(shape)
    plan = ExtractionPlan.from_masks(masks, shape)
    family = FAMILIES[shape.model_type]
    config = _extracted_config(model.config, shape, plan)
    model_class = (family.plain_models if plan.plain else family.pruned_models)[shape.head]
    reference = next(model.parameters())
    extracted = model_class(config)
    extracted.load_state_dict(_extracted_state_dict(model, masks, shape, plan), strict=True)
    return extracted.to(device=reference.device, dtype=reference.dtype).eval()


# --------------------------------------------------------------------------------------------------------------
# Saving and loading
# --------------------------------------------------------------------------------------------------------------


def save_extracted(
    model: PreTrainedModel,
    directory: str | Path,
    tokenizer: PreTrainedTokenizerBase | None = None,
    masks: SubNetworkMasks | None = None,
) -> Path:
    """Save an extracted model (and its tokenizer, and the masks it came from, when given) to ``directory``."""
    directory = Path(directory)
    model.save_pretrained(directory)
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)
    if masks is not None:
        (directory / MASKS_FILE).write_text(json.dumps(masks.to_dict()))
    return directory


def load_extracted(directory: str | Path, device: str | torch.device | None = None) -> PreTrainedModel:
    """Load a model saved by :func:`save_extracted`, plain or pruned, with the right task head."""
    config = AutoConfig.from_pretrained(str(directory))
    architectures = getattr(config, "architectures", None) or []
    head = "multiple-choice" if any("MultipleChoice" in name for name in architectures) else "sequence-classification"
    model = AUTO_CLASSES[head].from_pretrained(str(directory))
    return model.to(resolve_device(device)).eval()


def load_extracted_masks(directory: str | Path) -> SubNetworkMasks | None:
    """The masks saved beside an extracted model, if any."""
    path = Path(directory) / MASKS_FILE
    return SubNetworkMasks.from_dict(json.loads(path.read_text())) if path.is_file() else None
