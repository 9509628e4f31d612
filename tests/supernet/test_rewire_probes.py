"""Probe sub-networks (fixed MAC fractions, chosen deterministically) and rewiring by importance."""
from __future__ import annotations

import pytest
import torch

from search_spaces import SEARCH_SPACES, cost_of, get_search_space
from search_spaces.masks import SubNetworkMasks
from search_spaces.shape import ModelShape
from supernet.loading import load_config, model_shape
from supernet.model import SuperNetwork
from supernet.probes import probe_at, probe_sub_networks
from supernet.rewire import RewireCallback, importance_orders, rewire
from supernet.strategies import get_strategy
from supernet.training import Trainer, TrainerConfig

from conftest import tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def minilm_shape() -> ModelShape:
    return ModelShape.from_config(load_config("minilm"))


def test_probes_of_minilm_small_space_are_uniform_shapes_at_the_asked_fractions(minilm_shape):
    probes = probe_sub_networks(get_search_space("small", minilm_shape))
    assert list(probes) == ["full", "mac75", "mac50", "mac25", "smallest"]
    assert [probes[name].config for name in ("mac75", "mac50", "mac25")] == [
        {"num_layers": 6, "num_heads": 9, "num_units": 1152},
        {"num_layers": 6, "num_heads": 6, "num_units": 768},
        {"num_layers": 6, "num_heads": 3, "num_units": 384},
    ]
    assert probes["full"].masks is None and probes["full"].encoder_mac_fraction == 1.0
    assert probes["smallest"].config == {"num_layers": 1, "num_heads": 1, "num_units": 1}
    for probe in list(probes.values())[1:]:
        assert probe.encoder_mac_fraction == cost_of(minilm_shape, probe.masks).encoder_mac_fraction


@pytest.mark.parametrize("name", sorted(SEARCH_SPACES))
def test_every_space_gets_valid_deterministic_probes_within_reach_of_the_target(name, minilm_shape):
    space = get_search_space(name, minilm_shape)
    first, second = probe_sub_networks(space), probe_sub_networks(space)
    for key, probe in first.items():
        assert probe.config == second[key].config
        space.validate(probe.config)
        if probe.masks is not None:
            assert torch.equal(space.to_masks(probe.config).heads, probe.masks.heads)
    for target in (0.75, 0.5, 0.25):
        probe = first[f"mac{round(target * 100)}"]
        # whole layers of a 6-layer model come in sixths: at worst 1/12 away from the target
        assert abs(probe.encoder_mac_fraction - target) <= (0.02 if name != "layer" else 1 / 12 + 1e-9)


def test_layer_space_probes_keep_the_first_whole_layers(minilm_shape):
    probe = probe_at(get_search_space("layer", minilm_shape), 0.5)
    assert probe.config == {f"layer_{i}": int(i < 3) for i in range(6)}
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        probe_at(get_search_space("layer", minilm_shape), 1.0)


def _batch(seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 97, (4, 9), generator=generator)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _scores(shape: ModelShape, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(shape.num_layers, shape.num_heads, generator=generator),
            torch.rand(shape.num_layers, shape.num_units, generator=generator))


@pytest.mark.parametrize("kind", ["bert-seq", "roberta-regression"])
def test_rewiring_keeps_the_full_network_and_makes_prefixes_the_most_important_parts(kind):
    model = tiny_model(kind)
    shape = model_shape(model)
    batch = _batch()
    heads, units = _scores(shape)
    full_before = model(**batch).logits.detach()
    # the sub-network that keeps each layer's 2 best heads and 7 best units, before rewiring...
    keep_heads, keep_units = 2, 7
    best = SubNetworkMasks(
        heads=torch.zeros(shape.num_layers, shape.num_heads, dtype=torch.bool).scatter(
            1, heads.topk(keep_heads, dim=1).indices, True),
        units=torch.zeros(shape.num_layers, shape.num_units, dtype=torch.bool).scatter(
            1, units.topk(keep_units, dim=1).indices, True),
    )
    supernet = SuperNetwork(model)
    with supernet.sub_network(best):
        best_before = supernet(**batch).logits.detach()
    rewire(model, heads, units)
    # ... is the prefix sub-network after it; the full network is unchanged
    prefix = get_search_space("medium", shape).to_masks(
        {key: keep_heads if key.startswith("num_heads") else keep_units
         for key in get_search_space("medium", shape).keys})
    with supernet.sub_network(prefix):
        prefix_after = supernet(**batch).logits.detach()
    torch.testing.assert_close(model(**batch).logits.detach(), full_before, rtol=0, atol=1e-5)
    torch.testing.assert_close(prefix_after, best_before, rtol=0, atol=1e-5)
    assert (prefix_after - supernet.model(**batch).logits).abs().max() > 1e-2  # the prefix is a real sub-network


def test_importance_orders_are_descending_and_stable():
    orders = importance_orders(torch.tensor([[0.1, 0.5, 0.5, 0.2]]), torch.tensor([[3.0, 1.0, 2.0]]))
    assert orders.heads.tolist() == [[1, 2, 3, 0]] and orders.units.tolist() == [[0, 2, 1]]
    with pytest.raises(ValueError, match="importance scores must be"):
        rewire(tiny_model("bert-seq"), torch.zeros(2, 2), torch.zeros(2, 2))


def test_rewiring_permutes_the_optimiser_moments_with_the_weights():
    """Step, then rewire == rewire (moments included), then step: training goes on as if never reordered."""
    batch = {**_batch(), "labels": torch.tensor([0, 1, 2, 1])}
    heads, units = _scores(model_shape(tiny_model("bert-seq")))

    def train(rewire_after: int) -> torch.nn.Module:
        model = tiny_model("bert-seq", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        for step in range(3):
            if step == rewire_after:
                rewire(model, heads, units, optimizer)
            optimizer.zero_grad()
            model(**batch).loss.backward()
            optimizer.step()
        if rewire_after >= 3:
            rewire(model, heads, units)
        return model.eval()

    early, late = train(rewire_after=1), train(rewire_after=3)
    for (name, a), b in zip(early.named_parameters(), late.parameters()):
        if name.endswith("key.bias"):
            # softmax ignores a key bias: its gradient is rounding noise, which Adam normalises to full steps
            continue
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
    torch.testing.assert_close(early(**_batch(5)).logits, late(**_batch(5)).logits, rtol=1e-4, atol=1e-4)


class _Loader(list):
    """A list of batches with a DataLoader's length (the Trainer only iterates and counts)."""


def test_rewire_callback_fires_once_when_sub_networks_join_and_is_recorded():
    model = tiny_model("bert-seq")
    supernet = SuperNetwork(model)
    space = get_search_space("small", supernet.shape)
    batches = _Loader({**_batch(seed), "labels": torch.tensor([0, 1, 2, 1])} for seed in range(4))
    calls = []

    def importance(model, sample):
        calls.append(len(sample))
        return _scores(supernet.shape)

    strategy = get_strategy("sandwich", space, full_warmup=0.5)
    callback = RewireCallback(at_step=4, importance=importance, batches=list(batches[:2]))
    trainer = Trainer(supernet, strategy, batches, TrainerConfig(epochs=2, lr=1e-3, progress=False),
                      callbacks=[callback])
    history = trainer.fit()
    assert calls == [2]
    assert [record.get("rewired_at_step") for record in history] == [None, 4]
    assert callback.applied is not None and callback.applied.heads.shape == (supernet.shape.num_layers,
                                                                            supernet.shape.num_heads)


def test_rewire_callback_at_the_total_steps_rewires_after_training_before_validation():
    model = tiny_model("bert-seq")
    supernet = SuperNetwork(model)
    batches = _Loader({**_batch(seed), "labels": torch.tensor([0, 1, 2, 1])} for seed in range(3))
    callback = RewireCallback(at_step=6, importance=lambda m, b: _scores(supernet.shape), batches=list(batches))
    trainer = Trainer(supernet, get_strategy("standard"), batches, TrainerConfig(epochs=2, lr=1e-3, progress=False),
                      callbacks=[callback])
    history = trainer.fit()
    assert [record.get("rewired_at_step") for record in history] == [None, 6]
    assert callback.applied is not None
