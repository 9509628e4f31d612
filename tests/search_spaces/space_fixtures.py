"""Shapes, cached spaces and mask builders that the search-space tests share."""
from __future__ import annotations

import torch

from search_spaces import SEARCH_SPACES, ModelShape, SubNetworkMasks, get_search_space


def make_shape(layers: int, heads: int, units: int, head_dim: int) -> ModelShape:
    return ModelShape(
        model_type="bert",
        num_layers=layers,
        num_heads=heads,
        head_dim=head_dim,
        hidden_size=heads * head_dim,
        intermediate_size=units,
        vocab_size=100,
        max_position_embeddings=64,
        type_vocab_size=2,
    )


MINILM = make_shape(6, 12, 1536, 32)
BERT_BASE = make_shape(12, 12, 3072, 64)
TINY = make_shape(3, 3, 10, 4)
SHAPES = {"minilm": MINILM, "bert-base": BERT_BASE, "tiny": TINY}
ALL = [(name, shape) for name in SEARCH_SPACES for shape in SHAPES]

_SPACE_CACHE: dict[tuple[str, str], object] = {}


def space_for(name: str, shape_name: str):
    """Spaces are immutable; build each once (the large BERT-base space has 37,008 keys)."""
    key = (name, shape_name)
    if key not in _SPACE_CACHE:
        _SPACE_CACHE[key] = get_search_space(name, SHAPES[shape_name])
    return _SPACE_CACHE[key]


def masks_of(heads: list[list[int]], units: list[list[int]]) -> SubNetworkMasks:
    return SubNetworkMasks(torch.tensor(heads, dtype=torch.bool), torch.tensor(units, dtype=torch.bool))


def assert_masks_equal(actual: SubNetworkMasks, expected: SubNetworkMasks) -> None:
    assert torch.equal(actual.heads, expected.heads), (actual.heads, expected.heads)
    assert torch.equal(actual.units, expected.units), (actual.units, expected.units)


def prefix_masks(shape: ModelShape, heads: list[int], units: list[int]) -> SubNetworkMasks:
    return SubNetworkMasks(
        torch.arange(shape.num_heads)[None, :] < torch.tensor(heads)[:, None],
        torch.arange(shape.num_units)[None, :] < torch.tensor(units)[:, None],
    )
