"""Extracted sub-networks are standalone models that compute exactly what the super-network's sub-network does."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import AutoModelForMultipleChoice, AutoModelForSequenceClassification, BertForSequenceClassification

from search_spaces.cost import count_parameters
from search_spaces.masks import SubNetworkMasks
from search_spaces.spaces import SEARCH_SPACES, get_search_space
from supernet.extract import (
    PrunedBertForMultipleChoice,
    PrunedBertForSequenceClassification,
    PrunedRobertaForSequenceClassification,
    extract_sub_network,
    is_plain,
    load_extracted,
    load_extracted_masks,
    save_extracted,
)
from supernet.loading import load_model
from supernet.model import SuperNetwork
from supernet.reference import masked_forward

from conftest import tiny_model

TOL = 1e-4
SEQ = 12
MODEL_KINDS = ["bert-seq", "bert-regression", "bert-mc", "roberta-seq", "roberta-mc"]

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_batch(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Batch of 3 (or 2 x 3 choices) with one padded row and random token types."""
    generator = torch.Generator().manual_seed(1)
    size = (2, 3, SEQ) if "MultipleChoice" in type(model).__name__ else (3, SEQ)
    ids = torch.randint(5, model.config.vocab_size, size, generator=generator)
    attention = torch.ones_like(ids)
    attention.view(-1, SEQ)[1, SEQ // 2 :] = 0
    batch = {"input_ids": ids, "attention_mask": attention}
    if model.config.model_type == "bert":
        batch["token_type_ids"] = torch.randint(0, 2, size, generator=generator)
    return batch


def mask_cases(shape, seed: int = 0) -> list[tuple[str, SubNetworkMasks]]:
    """Smallest, largest, midpoint and random sub-networks of every space, plus blocks without heads/units."""
    rng = np.random.default_rng(seed)
    cases = []
    for name in SEARCH_SPACES:
        space = get_search_space(name, shape)
        configs = [space.smallest(), space.largest(), space.midpoint(), space.sample(rng), space.sample(rng)]
        cases += [(f"{name}-{i}", space.to_masks(config)) for i, config in enumerate(configs)]
    full = SubNetworkMasks.full(shape)
    heads, units = full.heads.clone(), full.units.clone()
    heads[1], units[2], units[0, 3:] = False, False, False
    cases.append(("zero-blocks", SubNetworkMasks(heads, units)))
    cases.append(("empty", SubNetworkMasks(torch.zeros_like(full.heads), torch.zeros_like(full.units))))
    return cases


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_extracted_equals_sliced_and_masked_and_counts_parameters(kind):
    model = tiny_model(kind)
    supernet = SuperNetwork(model)
    batch = tiny_batch(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for name, masks in mask_cases(supernet.shape):
            extracted = extract_sub_network(supernet, masks)
            with supernet.sub_network(masks):
                sliced = supernet(**batch).logits
            reference = masked_forward(model, masks, **batch).logits
            got = extracted(**batch).logits
            assert max_diff(got, reference) <= TOL and max_diff(got, sliced) <= TOL, name
            assert sum(p.numel() for p in extracted.parameters()) == count_parameters(supernet.shape, masks), name
            assert not extracted.training
    # the source is unchanged
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_plain_or_pruned_class_is_chosen_by_what_a_plain_config_can_express():
    model = tiny_model("bert-seq")
    shape = SuperNetwork(model).shape
    small = get_search_space("small", shape)
    layer = get_search_space("layer", shape)
    plain_cases = [
        small.to_masks({"num_layers": 2, "num_heads": 4, "num_units": 7}),
        layer.to_masks({"layer_0": 1, "layer_1": 0, "layer_2": 1}),
        small.to_masks({"num_layers": 0, "num_heads": 1, "num_units": 1}),  # empty: 0 layers
    ]
    for masks in plain_cases:
        extracted = extract_sub_network(model, masks)
        assert is_plain(masks, shape) and type(extracted) is BertForSequenceClassification
        assert extracted.config.num_hidden_layers == sum(masks.layers_kept)
        assert not any(key.startswith("plm_nas") for key in extracted.config.to_dict())
    assert extract_sub_network(model, plain_cases[0]).config.intermediate_size == 7
    medium = get_search_space("medium", shape)
    pruned_cases = [
        small.to_masks({"num_layers": 3, "num_heads": 2, "num_units": 7}),  # fewer heads
        medium.to_masks(medium.midpoint()),
    ]
    full = SubNetworkMasks.full(shape)
    units = full.units.clone()
    units[1] = False
    pruned_cases.append(SubNetworkMasks(full.heads, units))  # all heads, but a layer without FFN
    for masks in pruned_cases:
        extracted = extract_sub_network(model, masks)
        assert not is_plain(masks, shape) and type(extracted) is PrunedBertForSequenceClassification
        kept_heads = [h for h, kept in zip(masks.heads_per_layer, masks.layers_kept) if kept]
        assert extracted.config.plm_nas_heads_per_layer == kept_heads
        assert extracted.config.plm_nas_head_dim == shape.head_dim


def test_pruned_layers_have_only_their_kept_blocks():
    model = tiny_model("roberta-seq")
    full = SubNetworkMasks.full(SuperNetwork(model).shape)
    heads, units = full.heads.clone(), full.units.clone()
    heads[0], units[1], heads[2, 1:], units[2, 5:] = False, False, False, False
    extracted = extract_sub_network(model, SubNetworkMasks(heads, units))
    assert type(extracted) is PrunedRobertaForSequenceClassification
    layers = extracted.roberta.encoder.layer
    assert layers[0].attention is None and layers[0].intermediate.dense.out_features == 20
    assert layers[1].output is None and layers[1].attention.self.query.out_features == 32
    assert layers[2].attention.self.query.weight.shape == (8, 32)
    assert layers[2].attention.output.dense.weight.shape == (32, 8)
    assert layers[2].output.dense.weight.shape == (32, 5)


def test_extracted_weights_are_copies():
    model = tiny_model("bert-seq")
    extracted = extract_sub_network(model, None)
    with torch.no_grad():
        extracted.bert.encoder.layer[0].attention.self.query.weight.add_(1.0)
        extracted.bert.embeddings.word_embeddings.weight.add_(1.0)
    for module in ("bert.encoder.layer.0.attention.self.query", "bert.embeddings.word_embeddings"):
        assert not torch.equal(model.get_submodule(module).weight, extracted.get_submodule(module).weight)


def test_extract_rejects_masks_of_another_model():
    wrong = SubNetworkMasks(torch.ones(2, 4, dtype=torch.bool), torch.ones(2, 20, dtype=torch.bool))
    with pytest.raises(ValueError, match="do not fit"):
        extract_sub_network(tiny_model("bert-seq"), wrong)


@pytest.mark.parametrize(
    "kind, auto_class",
    [("bert-seq", AutoModelForSequenceClassification), ("bert-mc", AutoModelForMultipleChoice),
     ("roberta-mc", AutoModelForMultipleChoice)],
)
def test_pruned_model_round_trips_through_save_and_load(tmp_path, kind, auto_class):
    model = tiny_model(kind)
    shape = SuperNetwork(model).shape
    space = get_search_space("large", shape)
    masks = space.to_masks(space.sample(np.random.default_rng(5)))
    extracted = extract_sub_network(model, masks)
    batch = tiny_batch(model)
    save_extracted(extracted, tmp_path, masks=masks)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == f"plm_nas_{shape.model_type}"
    assert config["plm_nas_units_per_layer"] == [u for u, k in zip(masks.units_per_layer, masks.layers_kept) if k]
    with torch.no_grad():
        expected = extracted(**batch).logits
        for loaded in (load_extracted(tmp_path, device="cpu"), auto_class.from_pretrained(tmp_path)):
            assert type(loaded) is type(extracted)
            assert max_diff(loaded(**batch).logits, expected) <= 1e-6
    restored = load_extracted_masks(tmp_path)
    assert torch.equal(restored.heads, masks.heads) and torch.equal(restored.units, masks.units)


def test_pruned_multiple_choice_class():
    model = tiny_model("bert-mc")
    masks = get_search_space("medium", SuperNetwork(model).shape)
    masks = masks.to_masks(masks.midpoint())
    assert type(extract_sub_network(model, masks)) is PrunedBertForMultipleChoice


def test_plain_extracted_model_loads_with_plain_transformers_in_a_fresh_process(tmp_path):
    model = tiny_model("bert-regression")
    shape = SuperNetwork(model).shape
    masks = get_search_space("small", shape).to_masks({"num_layers": 2, "num_heads": 4, "num_units": 9})
    extracted = extract_sub_network(model, masks)
    save_extracted(extracted, tmp_path)
    batch = tiny_batch(model)
    torch.save(batch, tmp_path / "batch.pt")
    with torch.no_grad():
        expected = extracted(**batch).logits
    script = (
        "import sys, torch, transformers\n"
        "d = sys.argv[1]\n"
        "m = transformers.AutoModelForSequenceClassification.from_pretrained(d).eval()\n"
        "b = torch.load(d + '/batch.pt')\n"
        "torch.save(m(**b).logits.detach(), d + '/logits.pt')\n"
        "print(type(m).__name__, 'supernet' in sys.modules)\n"
    )
    # run outside the repository so that this package cannot be imported
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], cwd=tmp_path, capture_output=True, text=True,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["BertForSequenceClassification", "False"]
    assert max_diff(torch.load(tmp_path / "logits.pt"), expected) <= 1e-6


@pytest.fixture(scope="module")
def minilm() -> torch.nn.Module:
    return load_model(None, device="cpu").eval()


def test_real_minilm_extraction(minilm):
    supernet = SuperNetwork(minilm)
    shape = supernet.shape
    ids = torch.randint(1000, 20000, (2, 16), generator=torch.Generator().manual_seed(0))
    attention = torch.ones_like(ids)
    attention[1, 12:] = 0
    batch = {"input_ids": ids, "attention_mask": attention}
    rng = np.random.default_rng(1)
    with torch.no_grad():
        for name in ("small", "medium", "large", "layer"):
            space = get_search_space(name, shape)
            masks = space.to_masks(space.sample(rng))
            extracted = extract_sub_network(supernet, masks)
            with supernet.sub_network(masks):
                sliced = supernet(**batch).logits
            reference = masked_forward(minilm, masks, **batch).logits
            got = extracted(**batch).logits
            assert max_diff(got, reference) <= TOL and max_diff(got, sliced) <= TOL, name
            assert sum(p.numel() for p in extracted.parameters()) == count_parameters(shape, masks), name
