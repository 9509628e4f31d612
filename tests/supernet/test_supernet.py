"""The super-network computes sub-networks by slicing, exactly like the zeroing reference, and trains shared weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from search_spaces.cost import count_parameters
from search_spaces.masks import SubNetworkMasks
from search_spaces.spaces import SEARCH_SPACES, get_search_space
from supernet.loading import load_model
from supernet.model import LayerPlan, Selection, SuperNetwork, attention_function, sliced_layer_forward
from supernet.reference import masked, masked_forward

from conftest import tiny_model

TOL = 1e-4
SEQ = 12

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_batch(model: torch.nn.Module, labels: bool = False) -> dict[str, torch.Tensor]:
    """Batch of 3 (or 2 x 3 choices) with one padded row and random token types."""
    generator = torch.Generator().manual_seed(1)
    multiple_choice = "MultipleChoice" in type(model).__name__
    size = (2, 3, SEQ) if multiple_choice else (3, SEQ)
    ids = torch.randint(5, model.config.vocab_size, size, generator=generator)
    attention = torch.ones_like(ids)
    attention.view(-1, SEQ)[1, SEQ // 2 :] = 0
    batch = {"input_ids": ids, "attention_mask": attention}
    if model.config.model_type == "bert":
        batch["token_type_ids"] = torch.randint(0, 2, size, generator=generator)
    if labels:
        if multiple_choice:
            batch["labels"] = torch.tensor([0, 2])
        elif model.config.num_labels == 1:
            batch["labels"] = torch.randn(3, generator=generator)
        else:
            batch["labels"] = torch.tensor([0, 2, 1])
    return batch


def hand_masks(shape) -> dict[str, SubNetworkMasks]:
    """Cases the search spaces reach only by chance: blocks without heads/units, dropped layers, empty."""
    full = SubNetworkMasks.full(shape)
    no_heads, no_units = full.heads.clone(), full.units.clone()
    no_heads[1] = False  # layer 1: FFN only
    no_units[2] = False  # layer 2: attention only
    dropped_h, dropped_u = full.heads.clone(), full.units.clone()
    dropped_h[0], dropped_u[0] = False, False  # layer 0 dropped
    dropped_h[1, 1:] = False  # layer 1: one head, all units
    return {
        "zero-blocks": SubNetworkMasks(no_heads, no_units),
        "dropped-layer": SubNetworkMasks(dropped_h, dropped_u),
        "empty": SubNetworkMasks(torch.zeros_like(full.heads), torch.zeros_like(full.units)),
    }


def space_masks(shape, seed: int = 0, samples: int = 3) -> list[tuple[str, SubNetworkMasks]]:
    """Smallest, midpoint and random sub-networks of every search space, plus the hand-made cases."""
    rng = np.random.default_rng(seed)
    cases = []
    for name in SEARCH_SPACES:
        space = get_search_space(name, shape)
        configs = [space.smallest(), space.midpoint()] + [space.sample(rng) for _ in range(samples)]
        cases += [(f"{name}-{i}", space.to_masks(config)) for i, config in enumerate(configs)]
    return cases + list(hand_masks(shape).items())


MODEL_KINDS = ["bert-seq", "bert-regression", "bert-mc", "roberta-seq", "roberta-mc"]


@pytest.fixture(scope="module", params=MODEL_KINDS)
def supernet(request) -> SuperNetwork:
    return SuperNetwork(tiny_model(request.param))


def test_full_network_is_the_wrapped_model(supernet):
    batch = tiny_batch(supernet.model, labels=True)
    with torch.no_grad():
        expected = supernet.model(**batch)
        for masks in (None, SubNetworkMasks.full(supernet.shape)):
            supernet.set_sub_network(masks)
            got = supernet(**batch)
            assert torch.equal(got.logits, expected.logits)
            assert torch.equal(got.loss, expected.loss)
    supernet.reset()


def test_sliced_matches_masked_reference_for_every_space(supernet):
    batch = tiny_batch(supernet.model)
    with torch.no_grad():
        full = supernet.model(**batch).logits
        for name, masks in space_masks(supernet.shape):
            with supernet.sub_network(masks):
                sliced = supernet(**batch).logits
            reference = masked_forward(supernet.model, masks, **batch).logits
            assert (sliced - reference).abs().max().item() <= TOL, name
            if not bool(masks.heads.all() and masks.units.all()):
                # the sub-network really computes something else than the full model
                assert (reference - full).abs().max().item() > 1e-3, name
    assert supernet.active_masks is None


def test_sliced_layer_with_everything_kept_equals_hf_layer():
    """The sliced code itself (not the unpatched full path) reproduces a HF layer when it keeps all."""
    model = tiny_model("bert-seq")
    shape = SuperNetwork(model).shape
    layer = model.bert.encoder.layer[0]
    plan = LayerPlan(shape.num_heads, Selection(shape.num_heads * shape.head_dim), Selection(shape.num_units))
    hidden = torch.randn(3, SEQ, shape.hidden_size)
    mask = torch.ones(3, 1, SEQ, SEQ, dtype=torch.bool)
    mask[1, :, :, SEQ // 2 :] = False
    with torch.no_grad():
        expected = layer(hidden, mask)
        got = sliced_layer_forward(layer, plan, attention_function(model), hidden, mask)
    assert (got - expected).abs().max().item() <= 1e-5


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
def test_attention_implementations_agree(implementation):
    model = tiny_model("bert-seq")
    model.config._attn_implementation = implementation
    supernet = SuperNetwork(model)
    space = get_search_space("large", supernet.shape)
    masks = space.to_masks(space.sample(np.random.default_rng(3)))
    batch = tiny_batch(model)
    with torch.no_grad(), supernet.sub_network(masks):
        sliced = supernet(**batch).logits
    reference = masked_forward(model, masks, **batch).logits
    assert (sliced - reference).abs().max().item() <= TOL


def test_model_is_untouched_outside_a_call():
    model = tiny_model("bert-seq")
    supernet = SuperNetwork(model)
    masks = hand_masks(supernet.shape)["zero-blocks"]
    batch = tiny_batch(model)
    full = model(**batch).logits
    supernet.set_sub_network(masks)
    sub = supernet(**batch).logits
    assert all("forward" not in layer.__dict__ for layer in model.bert.encoder.layer)
    assert torch.equal(model(**batch).logits, full)  # the wrapped model still computes the full network
    assert not torch.allclose(sub, full)
    with pytest.raises(IndexError):  # an exception inside the call still restores the layers
        supernet(**{**batch, "input_ids": batch["input_ids"] + 1000})
    assert all("forward" not in layer.__dict__ for layer in model.bert.encoder.layer)


def test_sub_network_context_restores_previous_and_validates():
    supernet = SuperNetwork(tiny_model("bert-seq"))
    cases = hand_masks(supernet.shape)
    supernet.set_sub_network(cases["zero-blocks"])
    with supernet.sub_network(cases["empty"]):
        assert supernet.active_masks is cases["empty"]
    assert supernet.active_masks is cases["zero-blocks"]
    supernet.reset()
    assert supernet.active_masks is None
    wrong = SubNetworkMasks(torch.ones(2, 4, dtype=torch.bool), torch.ones(2, 20, dtype=torch.bool))
    with pytest.raises(ValueError, match="do not fit"):
        supernet.set_sub_network(wrong)


def test_prefix_masks_use_views_and_arbitrary_masks_gather():
    supernet = SuperNetwork(tiny_model("bert-seq"))
    shape = supernet.shape
    medium = get_search_space("medium", shape)
    prefix = medium.to_masks({**medium.largest(), "num_heads_0": 2, "num_units_1": 7})
    supernet.set_sub_network(prefix)
    plans = supernet._active_plans()
    assert plans[2] is None  # untouched layer runs HF's own forward
    assert (plans[0].heads.count, plans[0].heads.index) == (2 * shape.head_dim, None)
    assert plans[0].units.index is None and plans[0].units.count == shape.num_units
    assert (plans[1].units.count, plans[1].units.index) == (7, None)
    heads = torch.tensor([[False, True, False, True]] * 3)
    units = torch.ones(3, shape.num_units, dtype=torch.bool)
    units[:, 0] = False
    supernet.set_sub_network(SubNetworkMasks(heads, units))
    plan = supernet._active_plans()[0]
    dh = shape.head_dim
    assert plan.heads.index.tolist() == list(range(dh, 2 * dh)) + list(range(3 * dh, 4 * dh))
    assert plan.units.index.tolist() == list(range(1, shape.num_units))


def test_plans_are_cached_per_sub_network_with_a_bounded_lru():
    supernet = SuperNetwork(tiny_model("bert-seq"), cache_size=2)
    cases = hand_masks(supernet.shape)
    supernet.set_sub_network(cases["zero-blocks"])
    first = supernet._active_plans()
    # an equal mask held in a different tensor hits the cache
    supernet.set_sub_network(SubNetworkMasks(cases["zero-blocks"].heads.clone(), cases["zero-blocks"].units.clone()))
    assert supernet._active_plans() is first
    for name in ("dropped-layer", "empty"):
        supernet.set_sub_network(cases[name])
        supernet._active_plans()
    assert len(supernet._plans) == 2
    supernet.set_sub_network(cases["zero-blocks"])
    assert supernet._active_plans() is not first  # evicted, rebuilt


@pytest.mark.parametrize("space", ["medium", "large"])
def test_gradients_reach_only_kept_weights(space):
    model = tiny_model("bert-seq").train()
    supernet = SuperNetwork(model)
    shape = supernet.shape
    rng = np.random.default_rng(7)
    search_space = get_search_space(space, shape)
    masks = search_space.to_masks(search_space.sample(rng))
    heads, units = masks.heads.clone(), masks.units.clone()
    heads[0], units[0] = torch.tensor([True, False, True, False]), units[0] | (torch.arange(20) < 3)
    heads[1] = False  # a layer without attention
    units[1, 5:] = False
    units[1, :5] = True
    masks = SubNetworkMasks(heads, units)
    with supernet.sub_network(masks):
        supernet(**tiny_batch(model, labels=True)).loss.backward()
    dh = shape.head_dim
    for i, layer in enumerate(model.bert.encoder.layer):
        row_heads = heads[i].repeat_interleave(dh)
        attention = layer.attention
        if not heads[i].any():
            assert all(p.grad is None or not p.grad.any() for p in attention.parameters()), i
        else:
            for linear in (attention.self.query, attention.self.key, attention.self.value):
                row_norms = linear.weight.grad.abs().sum(dim=1)
                assert (row_norms[row_heads] > 0).all() and not row_norms[~row_heads].any(), i
            column_norms = attention.output.dense.weight.grad.abs().sum(dim=0)
            assert (column_norms[row_heads] > 0).all() and not column_norms[~row_heads].any(), i
        unit_rows = layer.intermediate.dense.weight.grad.abs().sum(dim=1)
        assert (unit_rows[units[i]] > 0).all() and not unit_rows[~units[i]].any(), i
        unit_columns = layer.output.dense.weight.grad.abs().sum(dim=0)
        assert (unit_columns[units[i]] > 0).all() and not unit_columns[~units[i]].any(), i
    assert model.classifier.weight.grad.abs().sum() > 0


def test_train_mode_applies_dropout_in_sliced_layers():
    model = tiny_model("bert-seq")
    supernet = SuperNetwork(model).train()
    masks = hand_masks(supernet.shape)["dropped-layer"]
    batch = tiny_batch(model)
    with supernet.sub_network(masks):
        torch.manual_seed(0)
        first = supernet(**batch).logits
        torch.manual_seed(1)
        second = supernet(**batch).logits
        supernet.eval()
        evaluated = [supernet(**batch).logits for _ in range(2)]
    assert not torch.allclose(first, second)
    assert torch.equal(*evaluated)


def test_output_hidden_states_in_sliced_mode():
    model = tiny_model("bert-seq")
    supernet = SuperNetwork(model)
    masks = hand_masks(supernet.shape)["zero-blocks"]
    batch = tiny_batch(model)
    with torch.no_grad(), supernet.sub_network(masks):
        out = supernet(**batch, output_hidden_states=True)
    assert len(out.hidden_states) == supernet.shape.num_layers + 1
    # layer 1 keeps no heads: its output is its FFN block applied to its input, not its input
    assert not torch.allclose(out.hidden_states[2], out.hidden_states[1])


def test_masked_reference_removes_its_hooks():
    model = tiny_model("bert-seq")
    masks = hand_masks(SuperNetwork(model).shape)["zero-blocks"]
    batch = tiny_batch(model)
    full = model(**batch).logits
    with masked(model, masks):
        assert not torch.allclose(model(**batch).logits, full)
    assert torch.equal(model(**batch).logits, full)


@pytest.fixture(scope="module")
def minilm() -> SuperNetwork:
    return SuperNetwork(load_model(None, device="cpu").eval())


def test_real_minilm_sliced_matches_reference(minilm):
    shape = minilm.shape
    assert (shape.num_layers, shape.num_heads, shape.hidden_size, shape.num_units) == (6, 12, 384, 1536)
    assert sum(p.numel() for p in minilm.parameters()) == count_parameters(shape) == 22_713_986
    ids = torch.randint(1000, 20000, (2, 16), generator=torch.Generator().manual_seed(0))
    attention = torch.ones_like(ids)
    attention[1, 10:] = 0
    batch = {"input_ids": ids, "attention_mask": attention}
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for name in SEARCH_SPACES:
            space = get_search_space(name, shape)
            masks = space.to_masks(space.sample(rng))
            with minilm.sub_network(masks):
                sliced = minilm(**batch).logits
            reference = masked_forward(minilm.model, masks, **batch).logits
            assert (sliced - reference).abs().max().item() <= TOL, name
