"""Search spaces: bounds from the model shape, exact mask semantics, special sub-networks, sampling, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from syne_tune.config_space import Categorical, Integer, Ordinal, config_space_size
from transformers import BertConfig, RobertaConfig

from search_spaces import (
    SEARCH_SPACES,
    LargeSearchSpace,
    ModelShape,
    SubNetworkMasks,
    get_search_space,
    power_of_two_head_counts,
)


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


# --------------------------------------------------------------------------------------------------- sampling
def _sample_matrix(space, seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    configs = [space.sample(rng) for _ in range(n)]
    for config in configs[:3]:
        assert list(config) == list(space.keys)
    for config in configs:
        space.validate(config)
        assert all(type(v) is int for v in config.values())
    return np.array([list(c.values()) for c in configs])


@pytest.mark.parametrize("name, shape_name", ALL)
def test_samples_stay_in_space_and_cover_bounds(name, shape_name):
    space = space_for(name, shape_name)
    n = 40 if name == "large" and shape_name != "tiny" else 200  # P(a key never flips) = 2**-40 per key
    values = _sample_matrix(space, seed=1, n=n)
    for j, (key, domain) in enumerate(space.config_space.items()):
        allowed = list(domain.categories) if isinstance(domain, Categorical) else list(
            range(domain.lower, domain.upper + 1))
        column = values[:, j]
        assert set(column.tolist()) <= set(allowed), key
        lo, hi = min(allowed), max(allowed)
        if len(allowed) <= 20:
            assert column.min() == lo and column.max() == hi, key
        else:
            assert column.min() <= lo + 0.05 * (hi - lo) and column.max() >= hi - 0.05 * (hi - lo), key


def test_sampling_is_uniform_over_each_domain():
    values = _sample_matrix(space_for("smallpower2", "minilm"), seed=3, n=1000)
    counts = {v: int((values[:, 1] == v).sum()) for v in (1, 2, 4, 8, 12)}
    assert all(150 <= c <= 250 for c in counts.values()), counts  # 200 expected each
    layers = np.bincount(values[:, 0], minlength=7)
    assert layers.min() >= 100 and layers.max() <= 190, layers  # 1000/7 = 143 expected


def test_large_default_sampling_flips_one_coin_per_key():
    values = _sample_matrix(space_for("large", "minilm"), seed=4, n=50)
    kept = values.mean(axis=1)
    assert 0.47 < kept.min() and kept.max() < 0.53  # 9288 fair coins: sd of the fraction is 0.005


def test_large_count_uniform_sampling_spreads_sizes():
    space = LargeSearchSpace(TINY, count_uniform=True)
    values = _sample_matrix(space, seed=5, n=200)
    kept = values.sum(axis=1)
    assert kept.min() <= 3 and kept.max() >= 36  # of 39 keys
    # every key is still switched on and off somewhere
    assert values.min(axis=0).max() == 0 and values.max(axis=0).min() == 1
    assert get_search_space("large", TINY, count_uniform=True).count_uniform


@pytest.mark.parametrize("name", SEARCH_SPACES)
def test_sampling_is_reproducible(name):
    space = space_for(name, "minilm")
    first = [space.sample(np.random.default_rng(7)) for _ in range(2)]
    rng_a, rng_b = np.random.default_rng(11), np.random.default_rng(11)
    assert [space.sample(rng_a) for _ in range(5)] == [space.sample(rng_b) for _ in range(5)]
    assert first[0] == first[1]
    other = np.random.default_rng(12)
    assert [space.sample(other) for _ in range(5)] != [space.sample(np.random.default_rng(11)) for _ in range(5)]


# ------------------------------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("name, shape_name", ALL)
def test_round_trip_config_masks_config(name, shape_name):
    space = space_for(name, shape_name)
    rng = np.random.default_rng(2)
    num_samples = 5 if name == "large" else 20
    configs = [space.sample(rng) for _ in range(num_samples)] + [space.smallest(), space.largest(), space.midpoint()]
    for config in configs:
        masks = space.to_masks(config)
        back = space.from_masks(masks)
        assert_masks_equal(space.to_masks(back), masks)
        if not (name.startswith("small") and config["num_layers"] == 0):
            assert back == config


@pytest.mark.parametrize("name", ["small", "smallpower2"])
def test_small_empty_network_maps_to_canonical_config(name):
    space = space_for(name, "minilm")
    empty = SubNetworkMasks(torch.zeros(6, 12, dtype=torch.bool), torch.zeros(6, 1536, dtype=torch.bool))
    assert space.from_masks(empty) == {"num_layers": 0, "num_heads": 1, "num_units": 1}


def test_large_expresses_any_masks():
    space = space_for("large", "tiny")
    gen = torch.Generator().manual_seed(0)
    masks = SubNetworkMasks(torch.rand(3, 3, generator=gen) < 0.5, torch.rand(3, 10, generator=gen) < 0.5)
    assert_masks_equal(space.to_masks(space.from_masks(masks)), masks)


def test_medium_and_layer_masks_map_across_spaces():
    medium_masks = space_for("layer", "tiny").to_masks({"layer_0": 1, "layer_1": 0, "layer_2": 1})
    assert space_for("medium", "tiny").from_masks(medium_masks) == {
        "num_heads_0": 3, "num_units_0": 10, "num_heads_1": 0, "num_units_1": 0, "num_heads_2": 3, "num_units_2": 10}
    small_masks = space_for("small", "tiny").to_masks({"num_layers": 2, "num_heads": 1, "num_units": 7})
    assert space_for("medium", "tiny").from_masks(small_masks)["num_units_1"] == 7


# ------------------------------------------------------------------------------------------- unrepresentable
def test_from_masks_rejects_what_a_space_cannot_express():
    tiny = TINY
    non_prefix = masks_of([[0, 1, 0]] * 3, [[1] * 10] * 3)
    for name in ("small", "medium"):
        with pytest.raises(ValueError, match=f"not representable in search space '{name}': .*not its first ones"):
            space_for(name, "tiny").from_masks(non_prefix)
    skipped_layer = prefix_masks(tiny, [0, 2, 0], [0, 5, 0])
    with pytest.raises(ValueError, match=r"kept layers \[1\] are not the first 1"):
        space_for("small", "tiny").from_masks(skipped_layer)
    uneven = prefix_masks(tiny, [2, 1, 0], [5, 5, 0])
    with pytest.raises(ValueError, match=r"different \(heads, units\) counts \[\(1, 5\), \(2, 5\)\]"):
        space_for("small", "tiny").from_masks(uneven)
    no_units = prefix_masks(tiny, [2, 2, 0], [0, 0, 0])
    with pytest.raises(ValueError, match="keep 2 heads and 0 units"):
        space_for("small", "tiny").from_masks(no_units)
    three_heads = prefix_masks(MINILM, [3] * 6, [10] * 6)
    with pytest.raises(ValueError, match=r"allowed head counts \[1, 2, 4, 8, 12\]"):
        space_for("smallpower2", "minilm").from_masks(three_heads)
    partial = prefix_masks(tiny, [3, 3, 3], [10, 4, 10])
    with pytest.raises(ValueError, match=r"layer\(s\) \[1\] are kept only in part"):
        space_for("layer", "tiny").from_masks(partial)
    with pytest.raises(ValueError, match="do not fit a model"):
        space_for("large", "tiny").from_masks(SubNetworkMasks.full(MINILM))


# ---------------------------------------------------------------------------------------------- invalid input
def test_invalid_configs_raise_clear_errors():
    small = space_for("small", "minilm")
    good = {"num_layers": 3, "num_heads": 6, "num_units": 768}
    with pytest.raises(ValueError, match=r"missing key\(s\) \['num_units'\]"):
        small.to_masks({"num_layers": 3, "num_heads": 6})
    with pytest.raises(ValueError, match=r"unexpected key\(s\) \['foo'\].*Expected the 3 key\(s\)"):
        small.to_masks({**good, "foo": 1})
    with pytest.raises(ValueError, match=r"config\['num_heads'\]=13 is out of range for search space 'small': "
                                         r"allowed integers in \[1, 12\]"):
        small.to_masks({**good, "num_heads": 13})
    with pytest.raises(ValueError, match=r"config\['num_layers'\]=-1 is out of range.*\[0, 6\]"):
        small.validate({**good, "num_layers": -1})
    with pytest.raises(ValueError, match=r"config\['num_units'\]=100000000000000000000 is out of range"):
        small.to_masks({**good, "num_units": 10**20})
    with pytest.raises(ValueError, match=r"config\['num_units'\] must be an int, got float 3.0"):
        small.to_masks({**good, "num_units": 3.0})
    with pytest.raises(ValueError, match=r"config\['num_heads'\] must be an int, got bool True"):
        small.to_masks({**good, "num_heads": True})
    with pytest.raises(ValueError, match=r"config\['num_layers'\] must be an int, got str '3'"):
        small.to_masks({**good, "num_layers": "3"})
    with pytest.raises(ValueError, match="a config must be a dict of hyperparameter values, got list"):
        small.to_masks([3, 6, 768])
    with pytest.raises(ValueError, match=r"config\['num_heads'\]=3 is out of range for search space "
                                         r"'smallpower2': allowed values \[1, 2, 4, 8, 12\]"):
        space_for("smallpower2", "minilm").to_masks({**good, "num_heads": 3})
    # numpy integers (e.g. from a searcher's array) are fine
    assert small.to_masks({k: np.int64(v) for k, v in good.items()}).heads_per_layer == [6, 6, 6, 0, 0, 0]


def test_invalid_large_config_names_the_key():
    space = space_for("large", "minilm")
    config = space.largest()
    config["unit_3_7"] = 2
    with pytest.raises(ValueError, match=r"config\['unit_3_7'\]=2 is out of range for search space 'large': "
                                         r"allowed integers in \[0, 1\]"):
        space.to_masks(config)
    del config["unit_3_7"]
    with pytest.raises(ValueError, match=r"missing key\(s\) \['unit_3_7'\].*Expected the 9288 key\(s\) "
                                         r"\['head_0_0', 'head_0_1', 'head_0_2', 'head_0_3', 'head_0_4', \.\.\.\]"):
        space.to_masks(config)


# ------------------------------------------------------------------------------------- Syne Tune compatibility
@pytest.mark.parametrize("name", SEARCH_SPACES)
def test_configs_sampled_by_syne_tune_domains_are_valid(name):
    space = space_for(name, "tiny")
    random_state = np.random.RandomState(0)
    for _ in range(30):
        config = {k: d.sample(random_state=random_state) for k, d in space.config_space.items()}
        masks = space.to_masks(config)
        assert space.from_masks(masks) == config or name.startswith("small")
