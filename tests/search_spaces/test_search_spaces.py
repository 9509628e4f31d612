"""Search spaces: bounds from the model shape, exact mask semantics and special sub-networks."""
from __future__ import annotations

import pytest
import torch
from syne_tune.config_space import Categorical, Integer, Ordinal, config_space_size
from transformers import BertConfig, RobertaConfig

from search_spaces import (
    SEARCH_SPACES,
    ModelShape,
    SubNetworkMasks,
    get_search_space,
    power_of_two_head_counts,
)

from space_fixtures import (
    ALL,
    SHAPES,
    TINY,
    assert_masks_equal,
    masks_of,
    prefix_masks,
    space_for,
)


# ------------------------------------------------------------------------------------------- registry / factory
def test_registry_names_and_unknown_name():
    assert list(SEARCH_SPACES) == ["small", "smallpower2", "layer", "medium", "large"]
    valid = "small, smallpower2, layer, medium, large"
    with pytest.raises(ValueError, match=f"unknown search space 'tiny'; choose from {valid}"):
        get_search_space("tiny", TINY)


def test_accepts_hf_configs():
    bert = BertConfig(hidden_size=24, num_attention_heads=6, num_hidden_layers=2, intermediate_size=7)
    space = get_search_space("medium", bert)
    assert space.shape == ModelShape.from_config(bert)
    assert space.config_space["num_heads_1"].upper == 6 and space.config_space["num_units_1"].upper == 7
    roberta = RobertaConfig(hidden_size=16, num_attention_heads=4, num_hidden_layers=5, intermediate_size=9)
    assert get_search_space("layer", roberta).num_dimensions == 5
    with pytest.raises(ValueError, match="needs a ModelShape or a Hugging Face BERT/RoBERTa config, got str"):
        get_search_space("small", "bert-base-uncased")


# ---------------------------------------------------------------------------------------------------- domains
@pytest.mark.parametrize("shape_name", SHAPES)
def test_domain_bounds_follow_shape(shape_name):
    s = SHAPES[shape_name]
    L, H, U = s.num_layers, s.num_heads, s.num_units

    small = space_for("small", shape_name).config_space
    assert list(small) == ["num_layers", "num_heads", "num_units"]
    assert all(isinstance(d, Integer) for d in small.values())
    assert [(d.lower, d.upper) for d in small.values()] == [(0, L), (1, H), (1, U)]

    p2 = space_for("smallpower2", shape_name).config_space
    assert isinstance(p2["num_heads"], Ordinal) and p2["num_heads"].categories == power_of_two_head_counts(H)
    assert (p2["num_layers"].upper, p2["num_units"].upper) == (L, U)

    layer = space_for("layer", shape_name).config_space
    assert list(layer) == [f"layer_{i}" for i in range(L)]
    assert all(isinstance(d, Categorical) and d.categories == [0, 1] for d in layer.values())

    medium = space_for("medium", shape_name).config_space
    assert len(medium) == 2 * L
    for i in range(L):
        assert (medium[f"num_heads_{i}"].lower, medium[f"num_heads_{i}"].upper) == (0, H)
        assert (medium[f"num_units_{i}"].lower, medium[f"num_units_{i}"].upper) == (0, U)

    large = space_for("large", shape_name)
    keys = large.keys
    assert large.num_dimensions == len(keys) == L * H + L * U
    assert keys[0] == "head_0_0" and keys[L * H - 1] == f"head_{L - 1}_{H - 1}"
    assert keys[L * H] == "unit_0_0" and keys[-1] == f"unit_{L - 1}_{U - 1}"
    assert len(set(keys)) == len(keys)
    assert all(d.categories == [0, 1] for d in large.config_space.values())


def test_minilm_large_space_has_9288_dimensions():
    assert space_for("large", "minilm").num_dimensions == 6 * 12 + 6 * 1536 == 9288


@pytest.mark.parametrize(
    "num_heads, expected",
    [(12, [1, 2, 4, 8, 12]), (16, [1, 2, 4, 8, 16]), (3, [1, 2, 3]), (1, [1]), (6, [1, 2, 4, 6])],
)
def test_power_of_two_head_counts(num_heads, expected):
    assert power_of_two_head_counts(num_heads) == expected


def test_sizes():
    assert space_for("small", "minilm").size() == 7 * 12 * 1536
    assert space_for("smallpower2", "minilm").size() == 7 * 5 * 1536
    assert space_for("layer", "bert-base").size() == 2**12
    assert space_for("medium", "tiny").size() == (4 * 11) ** 3
    assert space_for("large", "minilm").size() == 2**9288
    for name in ("small", "smallpower2", "layer", "medium"):
        space = space_for(name, "tiny")
        assert space.size() == config_space_size(space.config_space, upper_limit=2**40)
    assert [space_for(n, "tiny").num_dimensions for n in SEARCH_SPACES] == [3, 3, 3, 6, 39]


# ------------------------------------------------------------------------------------------- mask semantics
def test_small_masks_keep_first_layers_heads_units():
    masks = space_for("small", "tiny").to_masks({"num_layers": 2, "num_heads": 2, "num_units": 3})
    assert_masks_equal(
        masks,
        masks_of(
            [[1, 1, 0], [1, 1, 0], [0, 0, 0]],
            [[1, 1, 1, 0, 0, 0, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0, 0, 0, 0], [0] * 10],
        ),
    )
    empty = space_for("small", "tiny").to_masks({"num_layers": 0, "num_heads": 3, "num_units": 10})
    assert not empty.heads.any() and not empty.units.any()


def test_smallpower2_masks():
    masks = space_for("smallpower2", "minilm").to_masks({"num_layers": 4, "num_heads": 8, "num_units": 100})
    assert masks.heads_per_layer == [8, 8, 8, 8, 0, 0]
    assert masks.units_per_layer == [100, 100, 100, 100, 0, 0]
    assert masks.is_prefix()


def test_layer_masks_keep_whole_layers():
    masks = space_for("layer", "tiny").to_masks({"layer_0": 0, "layer_1": 1, "layer_2": 1})
    assert_masks_equal(masks, masks_of([[0, 0, 0], [1, 1, 1], [1, 1, 1]], [[0] * 10, [1] * 10, [1] * 10]))


def test_medium_masks_are_per_layer_prefixes():
    config = {"num_heads_0": 0, "num_units_0": 10, "num_heads_1": 3, "num_units_1": 0,
              "num_heads_2": 1, "num_units_2": 4}
    masks = space_for("medium", "tiny").to_masks(config)
    assert_masks_equal(
        masks,
        masks_of([[0, 0, 0], [1, 1, 1], [1, 0, 0]], [[1] * 10, [0] * 10, [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]]),
    )


def test_large_masks_follow_individual_bits():
    space = space_for("large", "tiny")
    config = {key: 0 for key in space.keys}
    config.update({"head_1_2": 1, "head_0_0": 1, "unit_2_9": 1, "unit_0_5": 1})
    expected_units = [[0] * 10 for _ in range(3)]
    expected_units[2][9] = expected_units[0][5] = 1
    assert_masks_equal(space.to_masks(config), masks_of([[1, 0, 0], [0, 0, 1], [0, 0, 0]], expected_units))


@pytest.mark.parametrize("name, shape_name", ALL)
def test_masks_are_bool_and_fit_shape(name, shape_name):
    space = space_for(name, shape_name)
    masks = space.to_masks(space.midpoint())
    assert masks.heads.dtype == torch.bool and masks.units.dtype == torch.bool
    masks.check_shape(space.shape)


# -------------------------------------------------------------------------------------- special sub-networks
@pytest.mark.parametrize("name, shape_name", ALL)
def test_largest_is_full_model(name, shape_name):
    space = space_for(name, shape_name)
    assert_masks_equal(space.to_masks(space.largest()), SubNetworkMasks.full(space.shape))


@pytest.mark.parametrize("shape_name", SHAPES)
def test_smallest_is_smallest_non_empty(shape_name):
    s = SHAPES[shape_name]
    L, H, U = s.num_layers, s.num_heads, s.num_units
    zeros = [0] * (L - 1)
    for name in ("small", "smallpower2"):
        masks = space_for(name, shape_name).to_masks(space_for(name, shape_name).smallest())
        assert_masks_equal(masks, prefix_masks(s, [1] + zeros, [1] + zeros))
    masks = space_for("medium", shape_name).to_masks(space_for("medium", shape_name).smallest())
    assert_masks_equal(masks, prefix_masks(s, [1] * L, [1] * L))
    masks = space_for("layer", shape_name).to_masks(space_for("layer", shape_name).smallest())
    assert_masks_equal(masks, prefix_masks(s, [H] + zeros, [U] + zeros))
    masks = space_for("large", shape_name).to_masks(space_for("large", shape_name).smallest())
    assert_masks_equal(masks, prefix_masks(s, [1] + zeros, [1] + zeros))


@pytest.mark.parametrize("shape_name", SHAPES)
def test_midpoint_keeps_half_of_every_count_rounded_up(shape_name):
    s = SHAPES[shape_name]
    L, H, U = s.num_layers, s.num_heads, s.num_units
    half_l, half_h, half_u = (L + 1) // 2, (H + 1) // 2, (U + 1) // 2
    first_half = [1] * half_l + [0] * (L - half_l)
    small = space_for("small", shape_name).to_masks(space_for("small", shape_name).midpoint())
    assert_masks_equal(small, prefix_masks(s, [half_h * k for k in first_half], [half_u * k for k in first_half]))
    for name in ("medium", "large"):
        masks = space_for(name, shape_name).to_masks(space_for(name, shape_name).midpoint())
        assert_masks_equal(masks, prefix_masks(s, [half_h] * L, [half_u] * L))
    layer = space_for("layer", shape_name).to_masks(space_for("layer", shape_name).midpoint())
    assert_masks_equal(layer, prefix_masks(s, [H * k for k in first_half], [U * k for k in first_half]))


def test_midpoint_numbers():
    assert space_for("small", "minilm").midpoint() == {"num_layers": 3, "num_heads": 6, "num_units": 768}
    assert space_for("small", "tiny").midpoint() == {"num_layers": 2, "num_heads": 2, "num_units": 5}
    assert space_for("smallpower2", "minilm").midpoint()["num_heads"] == 4  # largest of 1,2,4,8,12 <= 6
    assert space_for("smallpower2", "tiny").midpoint()["num_heads"] == 2

