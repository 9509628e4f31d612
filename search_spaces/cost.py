"""Exact size and compute of a sub-network of a BERT/RoBERTa classifier, from its shape and masks alone.

Parameters (method.md section 3) count what the physically extracted model keeps: the embeddings, the task
head, and per layer an attention block only when it keeps h > 0 heads and an FFN block only when it keeps
u > 0 units. Which heads or units are kept never matters, only how many per layer.

MACs count multiply-accumulates of one input sequence of ``seq_len`` tokens (for multiple choice: of one
choice). Additions (biases, residuals), LayerNorm, softmax and embedding look-ups are not MACs.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from search_spaces.masks import SubNetworkMasks
from search_spaces.shape import ModelShape

DEFAULT_SEQ_LEN = 128


# ------------------------------------------------------------------------------------------------- parameters
def embedding_parameters(shape: ModelShape) -> int:
    """Word, position and token-type embeddings plus their LayerNorm (always kept)."""
    d = shape.hidden_size
    return (shape.vocab_size + shape.max_position_embeddings + shape.type_vocab_size) * d + 2 * d


def task_head_parameters(shape: ModelShape) -> int:
    """A d x d dense layer plus the d -> outputs classifier (always kept).

    BERT (both heads) and RoBERTa multiple choice: pooler + classifier; RoBERTa sequence classification has
    no pooler but its classification head has the same two layers (``dense`` + ``out_proj``).
    Multiple choice has one output per choice.
    """
    d, k = shape.hidden_size, shape.num_outputs
    return d * d + d + d * k + k


def attention_block_parameters(shape: ModelShape, num_heads: int) -> int:
    """Q, K, V and output projection restricted to ``num_heads`` heads, plus LayerNorm; 0 when no heads."""
    if num_heads == 0:
        return 0
    d, width = shape.hidden_size, num_heads * shape.head_dim
    return 3 * (d * width + width) + (width * d + d) + 2 * d


def ffn_block_parameters(shape: ModelShape, num_units: int) -> int:
    """Intermediate and output dense layers restricted to ``num_units`` units, plus LayerNorm; 0 when none."""
    if num_units == 0:
        return 0
    d = shape.hidden_size
    return 2 * d * num_units + num_units + d + 2 * d


def count_encoder_parameters(shape: ModelShape, masks: SubNetworkMasks | None = None) -> int:
    """Parameters of the kept transformer layers only (no embeddings, no task head)."""
    return _encoder_parameters(shape, *_per_layer_counts(shape, masks))


def count_parameters(shape: ModelShape, masks: SubNetworkMasks | None = None) -> int:
    """Parameters of the extracted sub-network (``masks=None``: the full model)."""
    return _parameters(shape, *_per_layer_counts(shape, masks))


def paper_layer_parameters(shape: ModelShape, num_heads: int, num_units: int) -> int:
    """One layer as the authors' ``compute_parameters`` counts it.

    Their code charges the full d x d output projection, the FFN output bias and both LayerNorms in every
    layer, even one with no heads or no units (method.md words it as "whenever h > 0"; the code does it
    always), and counts Q, K, V and the FFN for the kept heads and units.
    """
    d, dh = shape.hidden_size, shape.head_dim
    return 3 * num_heads * (d * dh + dh) + (d * d + d) + (2 * d * num_units + num_units + d) + 4 * d


def count_parameters_paper(shape: ModelShape, masks: SubNetworkMasks | None = None) -> int:
    """Embeddings + task head + every layer by the authors' convention; equals ours for the full model."""
    return _parameters_paper(shape, *_per_layer_counts(shape, masks))


def parameter_fraction(shape: ModelShape, masks: SubNetworkMasks | None) -> float:
    """Parameters of the sub-network over those of the full model."""
    return count_parameters(shape, masks) / count_parameters(shape)


def encoder_parameter_fraction(shape: ModelShape, masks: SubNetworkMasks | None) -> float:
    """Encoder parameters of the sub-network over those of the full encoder (what pruning papers report)."""
    return count_encoder_parameters(shape, masks) / count_encoder_parameters(shape)


# ------------------------------------------------------------------------------------------------------- MACs
def attention_block_macs(shape: ModelShape, num_heads: int, seq_len: int = DEFAULT_SEQ_LEN) -> int:
    """Per head: Q, K, V and output projections (4*n*d*dh) and the two n x n products (2*n*n*dh)."""
    n, d, dh = _check_seq_len(seq_len), shape.hidden_size, shape.head_dim
    return num_heads * (4 * n * d * dh + 2 * n * n * dh)


def ffn_block_macs(shape: ModelShape, num_units: int, seq_len: int = DEFAULT_SEQ_LEN) -> int:
    """Per unit: one input and one output weight per token and hidden dimension (2*n*d)."""
    return num_units * 2 * _check_seq_len(seq_len) * shape.hidden_size


def task_head_macs(shape: ModelShape) -> int:
    """The d x d dense layer and the classifier, applied to the first token only."""
    d = shape.hidden_size
    return d * d + d * shape.num_outputs


def count_encoder_macs(
    shape: ModelShape, masks: SubNetworkMasks | None = None, seq_len: int = DEFAULT_SEQ_LEN
) -> int:
    """MACs of the kept transformer layers for one sequence of ``seq_len`` tokens."""
    return _encoder_macs(shape, *_per_layer_counts(shape, masks), seq_len)


def count_macs(shape: ModelShape, masks: SubNetworkMasks | None = None, seq_len: int = DEFAULT_SEQ_LEN) -> int:
    """MACs of the whole sub-network (encoder + task head) for one sequence of ``seq_len`` tokens."""
    return count_encoder_macs(shape, masks, seq_len) + task_head_macs(shape)


def mac_fraction(shape: ModelShape, masks: SubNetworkMasks | None, seq_len: int = DEFAULT_SEQ_LEN) -> float:
    """MACs of the sub-network over those of the full model, at the same sequence length."""
    return count_macs(shape, masks, seq_len) / count_macs(shape, None, seq_len)


# ---------------------------------------------------------------------------------------------------- summary
@dataclass(frozen=True)
class SubNetworkCost:
    """Every size and compute measure of one sub-network, as the result rows need them."""

    params: int
    encoder_params: int
    params_paper: int
    macs: int
    encoder_macs: int
    param_fraction: float
    encoder_param_fraction: float
    params_paper_fraction: float
    mac_fraction: float
    encoder_mac_fraction: float
    seq_len: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cost_of(
    shape: ModelShape, masks: SubNetworkMasks | None = None, seq_len: int = DEFAULT_SEQ_LEN
) -> SubNetworkCost:
    """All measures of the sub-network ``masks`` (``None``: the full model) from one count of its masks."""
    heads, units = _per_layer_counts(shape, masks)
    full_heads, full_units = _per_layer_counts(shape, None)
    params = _parameters(shape, heads, units)
    encoder_params = _encoder_parameters(shape, heads, units)
    params_paper = _parameters_paper(shape, heads, units)
    encoder_macs = _encoder_macs(shape, heads, units, seq_len)
    macs = encoder_macs + task_head_macs(shape)
    full_params = _parameters(shape, full_heads, full_units)
    full_encoder_macs = _encoder_macs(shape, full_heads, full_units, seq_len)
    return SubNetworkCost(
        params=params,
        encoder_params=encoder_params,
        params_paper=params_paper,
        macs=macs,
        encoder_macs=encoder_macs,
        param_fraction=params / full_params,
        encoder_param_fraction=encoder_params / _encoder_parameters(shape, full_heads, full_units),
        params_paper_fraction=params_paper / full_params,
        mac_fraction=macs / (full_encoder_macs + task_head_macs(shape)),
        encoder_mac_fraction=encoder_macs / full_encoder_macs,
        seq_len=seq_len,
    )


# ---------------------------------------------------------------------------------------------------- helpers
def _per_layer_counts(shape: ModelShape, masks: SubNetworkMasks | None) -> tuple[list[int], list[int]]:
    """Kept heads and units per layer (all of them when ``masks`` is None); counted in numpy, which beats
    torch's thread pool on such tiny tensors."""
    if masks is None:
        return [shape.num_heads] * shape.num_layers, [shape.num_units] * shape.num_layers
    masks.check_shape(shape)
    heads = masks.heads.cpu().numpy().sum(axis=1)
    units = masks.units.cpu().numpy().sum(axis=1)
    return heads.tolist(), units.tolist()


def _encoder_parameters(shape: ModelShape, heads: list[int], units: list[int]) -> int:
    return sum(attention_block_parameters(shape, h) + ffn_block_parameters(shape, u) for h, u in zip(heads, units))


def _parameters(shape: ModelShape, heads: list[int], units: list[int]) -> int:
    return embedding_parameters(shape) + _encoder_parameters(shape, heads, units) + task_head_parameters(shape)


def _parameters_paper(shape: ModelShape, heads: list[int], units: list[int]) -> int:
    layers = sum(paper_layer_parameters(shape, h, u) for h, u in zip(heads, units))
    return embedding_parameters(shape) + layers + task_head_parameters(shape)


def _encoder_macs(shape: ModelShape, heads: list[int], units: list[int], seq_len: int) -> int:
    return attention_block_macs(shape, sum(heads), seq_len) + ffn_block_macs(shape, sum(units), seq_len)


def _check_seq_len(seq_len: int) -> int:
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len <= 0:
        raise ValueError(f"seq_len must be a positive int, got {seq_len!r}")
    return seq_len
