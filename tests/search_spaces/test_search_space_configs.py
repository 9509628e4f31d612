"""Search-space configs: sampling, round trips through masks, what a space cannot express, invalid input, Syne Tune."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from syne_tune.config_space import Categorical

from search_spaces import (
    SEARCH_SPACES,
    LargeSearchSpace,
    SubNetworkMasks,
    get_search_space,
)

from space_fixtures import (
    ALL,
    MINILM,
    TINY,
    assert_masks_equal,
    masks_of,
    prefix_masks,
    space_for,
)


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
