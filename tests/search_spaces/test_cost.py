"""Cost model: hand-computed cases, real transformers models (full and physically pruned), MACs by FLOP counting."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers
from torch.utils.flop_counter import FlopCounterMode
from transformers.pytorch_utils import prune_linear_layer

from search_spaces import (
    ModelShape,
    SubNetworkCost,
    SubNetworkMasks,
    cost_of,
    count_encoder_macs,
    count_encoder_parameters,
    count_macs,
    count_parameters,
    count_parameters_paper,
    encoder_parameter_fraction,
    get_search_space,
    mac_fraction,
    parameter_fraction,
)
from supernet.loading import load_config

# d=12, 3 heads of size 4, 10 units, 3 layers, 50 words, 20 positions, 2 token types, 3 labels
TINY = ModelShape("bert", num_layers=3, num_heads=3, head_dim=4, hidden_size=12, intermediate_size=10,
                  vocab_size=50, max_position_embeddings=20, type_vocab_size=2, num_labels=3)
# layer 0: 2 heads, 4 units; layer 1: no heads, 5 units; layer 2: 3 heads, no units
MIXED = SubNetworkMasks(
    heads=torch.tensor([[1, 0, 1], [0, 0, 0], [1, 1, 1]], dtype=torch.bool),
    units=torch.tensor([[0, 1, 1, 0, 1, 0, 0, 0, 0, 1], [1, 1, 1, 1, 1, 0, 0, 0, 0, 0], [0] * 10], dtype=torch.bool),
)
EMPTY = SubNetworkMasks(torch.zeros(3, 3, dtype=torch.bool), torch.zeros(3, 10, dtype=torch.bool))

MODEL_CLASSES = {
    ("bert", "sequence-classification"): transformers.BertForSequenceClassification,
    ("bert", "multiple-choice"): transformers.BertForMultipleChoice,
    ("roberta", "sequence-classification"): transformers.RobertaForSequenceClassification,
    ("roberta", "multiple-choice"): transformers.RobertaForMultipleChoice,
}
CONFIG_CLASSES = {"bert": transformers.BertConfig, "roberta": transformers.RobertaConfig}
TINY_CONFIGS = [
    dict(vocab_size=50, hidden_size=12, num_hidden_layers=3, num_attention_heads=3, intermediate_size=10,
         max_position_embeddings=20, type_vocab_size=2),
    dict(vocab_size=37, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=7,
         max_position_embeddings=24, type_vocab_size=1),
]


def build_model(family: str, head: str, num_labels: int, sizes: dict) -> tuple[torch.nn.Module, ModelShape]:
    config = CONFIG_CLASSES[family](**sizes, num_labels=num_labels, attn_implementation="eager")
    model = MODEL_CLASSES[(family, head)](config).eval()
    return model, ModelShape.from_config(config, head=head)


def numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def extract_in_place(model: torch.nn.Module, masks: SubNetworkMasks) -> int:
    """Physically slice kept heads/units out of the real modules; returns the parameters left.

    A block with no heads (no units) is dropped whole, so its parameters are subtracted from the total.
    """
    dropped = 0
    head_dim = model.config.hidden_size // model.config.num_attention_heads
    for layer, heads, units in zip(model.base_model.encoder.layer, masks.heads, masks.units):
        kept_heads = heads.nonzero().flatten()
        if len(kept_heads) == 0:
            dropped += numel(layer.attention)
        else:
            rows = (kept_heads[:, None] * head_dim + torch.arange(head_dim)).flatten()
            attention = layer.attention.self
            attention.query = prune_linear_layer(attention.query, rows)
            attention.key = prune_linear_layer(attention.key, rows)
            attention.value = prune_linear_layer(attention.value, rows)
            layer.attention.output.dense = prune_linear_layer(layer.attention.output.dense, rows, dim=1)
        kept_units = units.nonzero().flatten()
        if len(kept_units) == 0:
            dropped += numel(layer.intermediate) + numel(layer.output)
        else:
            layer.intermediate.dense = prune_linear_layer(layer.intermediate.dense, kept_units)
            layer.output.dense = prune_linear_layer(layer.output.dense, kept_units, dim=1)
    return numel(model) - dropped


def measured_macs(model: torch.nn.Module, head: str, seq_len: int) -> int:
    """Half the FLOPs torch's counter sees in one forward pass of one sequence (one choice)."""
    shape = (1, 1, seq_len) if head == "multiple-choice" else (1, seq_len)
    ids = torch.randint(3, 30, shape)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(input_ids=ids)
    flops = counter.get_total_flops()
    assert flops % 2 == 0
    return flops // 2


# --------------------------------------------------------------------------------------------- hand-computed
def test_parameters_by_hand():
    # embeddings (50 + 20 + 2) * 12 + LayerNorm 24 = 888; head: 12*12 + 12 + 12*3 + 3 = 195
    # layer 0: attention 3*(12*8 + 8) + (8*12 + 12) + 24 = 444, FFN 2*12*4 + 4 + 12 + 24 = 136 -> 580
    # layer 1: FFN only 2*12*5 + 5 + 12 + 24 = 161
    # layer 2: attention only 3*(12*12 + 12) + (12*12 + 12) + 24 = 648
    assert count_encoder_parameters(TINY, MIXED) == 580 + 161 + 648 == 1389
    assert count_parameters(TINY, MIXED) == 888 + 1389 + 195 == 2472
    # full layer: 648 + (2*12*10 + 10 + 12 + 24 = 286) = 934
    assert count_encoder_parameters(TINY) == 3 * 934 == 2802
    assert count_parameters(TINY) == 888 + 2802 + 195 == 3885
    assert count_parameters(TINY, EMPTY) == 888 + 195
    assert count_encoder_parameters(TINY, EMPTY) == 0
    assert parameter_fraction(TINY, MIXED) == pytest.approx(2472 / 3885)
    assert encoder_parameter_fraction(TINY, MIXED) == pytest.approx(1389 / 2802)


def test_paper_convention_by_hand():
    # authors: 3*h*(d*dh + dh) + d*d + d + 2*d*u + u + d + 4d in every layer, whatever h and u are
    # layer 0: 312 + 156 + 112 + 48 = 628; layer 1: 0 + 156 + 137 + 48 = 341; layer 2: 468 + 156 + 12 + 48 = 684
    assert count_parameters_paper(TINY, MIXED) == 888 + 628 + 341 + 684 + 195 == 2736
    assert count_parameters_paper(TINY, EMPTY) == 888 + 3 * (156 + 12 + 48) + 195 == 1731
    assert count_parameters_paper(TINY) == count_parameters(TINY)


def test_macs_by_hand():
    n = 5
    # per head 4*5*12*4 + 2*5*5*4 = 1160; per unit 2*5*12 = 120; head: 12*12 + 12*3 = 180
    assert count_encoder_macs(TINY, MIXED, seq_len=n) == 5 * 1160 + 9 * 120 == 6880
    assert count_macs(TINY, MIXED, seq_len=n) == 6880 + 180
    assert count_macs(TINY, None, seq_len=n) == 9 * 1160 + 30 * 120 + 180 == 14220
    assert count_macs(TINY, EMPTY, seq_len=n) == 180
    assert mac_fraction(TINY, MIXED, seq_len=n) == pytest.approx(7060 / 14220)
    # quadratic term: doubling n more than doubles attention MACs
    assert count_encoder_macs(TINY, None, 10) - 2 * count_encoder_macs(TINY, None, 5) == 9 * 2 * (100 - 50) * 4


def test_cost_of_bundles_every_measure():
    cost = cost_of(TINY, MIXED, seq_len=5)
    assert isinstance(cost, SubNetworkCost)
    assert cost.to_dict() == {
        "params": 2472, "encoder_params": 1389, "params_paper": 2736, "macs": 7060, "encoder_macs": 6880,
        "param_fraction": 2472 / 3885, "encoder_param_fraction": 1389 / 2802, "params_paper_fraction": 2736 / 3885,
        "mac_fraction": 7060 / 14220, "encoder_mac_fraction": 6880 / 14040, "seq_len": 5,
    }
    full = cost_of(TINY)
    fractions = (full.param_fraction, full.encoder_param_fraction, full.mac_fraction, full.encoder_mac_fraction)
    assert fractions == (1.0, 1.0, 1.0, 1.0) and full.seq_len == 128


def test_only_counts_per_layer_matter():
    shifted = SubNetworkMasks(MIXED.heads.flip(1), MIXED.units.roll(3, dims=1))
    assert cost_of(TINY, shifted, 7) == cost_of(TINY, MIXED, 7)


def test_bad_inputs():
    with pytest.raises(ValueError, match="do not fit a model"):
        two_layers = SubNetworkMasks(torch.ones(2, 3, dtype=torch.bool), torch.ones(2, 10, dtype=torch.bool))
        count_parameters(TINY, two_layers)
    with pytest.raises(ValueError, match="seq_len must be a positive int, got 0"):
        count_macs(TINY, None, seq_len=0)
    with pytest.raises(ValueError, match="seq_len must be a positive int, got 12.5"):
        cost_of(TINY, None, seq_len=12.5)


# ----------------------------------------------------------------------------------- real transformers models
@pytest.mark.parametrize("sizes", TINY_CONFIGS, ids=["d12", "d16"])
@pytest.mark.parametrize(
    "family, head, num_labels",
    [("bert", "sequence-classification", 1), ("bert", "sequence-classification", 2),
     ("bert", "sequence-classification", 3), ("roberta", "sequence-classification", 1),
     ("roberta", "sequence-classification", 2), ("roberta", "sequence-classification", 3),
     ("bert", "multiple-choice", 2), ("roberta", "multiple-choice", 2)],
)
def test_full_counts_equal_real_models(family, head, num_labels, sizes):
    model, shape = build_model(family, head, num_labels, sizes)
    assert count_parameters(shape) == numel(model)
    assert count_encoder_parameters(shape) == numel(model.base_model.encoder)
    assert count_parameters_paper(shape) == numel(model)


@pytest.mark.parametrize(
    "family, head", [("bert", "sequence-classification"), ("roberta", "sequence-classification"),
                     ("bert", "multiple-choice"), ("roberta", "multiple-choice")]
)
def test_full_macs_equal_flop_counter(family, head):
    model, shape = build_model(family, head, 3, TINY_CONFIGS[0])
    assert measured_macs(model, head, seq_len=9) == count_macs(shape, None, seq_len=9)


@pytest.mark.parametrize("family, head", [("bert", "sequence-classification"), ("roberta", "multiple-choice")])
def test_counts_equal_physically_pruned_models(family, head):
    """Random head/unit subsets (some blocks empty), sliced out of real modules."""
    rng = np.random.default_rng(0)
    space = get_search_space("large", build_model(family, head, 2, TINY_CONFIGS[0])[1])
    for trial in range(6):
        model, shape = build_model(family, head, 2, TINY_CONFIGS[0])
        masks = space.to_masks(space.sample(rng))
        if trial == 0:
            masks = MIXED
        assert extract_in_place(model, masks) == count_parameters(shape, masks)


@pytest.mark.parametrize(
    "family, head",
    [("bert", "sequence-classification"), ("roberta", "sequence-classification"), ("bert", "multiple-choice")],
)
def test_macs_equal_flop_counter_on_pruned_models(family, head):
    """Sub-networks that keep >= 1 head and unit per layer still run as HF models: count their FLOPs."""
    model, shape = build_model(family, head, 2, TINY_CONFIGS[0])
    masks = SubNetworkMasks(
        heads=torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 1]], dtype=torch.bool),
        units=torch.tensor([[1] * 10, [0, 0, 1, 0, 0, 0, 0, 0, 0, 0], [1, 0] * 5], dtype=torch.bool),
    )
    extract_in_place(model, masks)
    assert measured_macs(model, head, seq_len=6) == count_macs(shape, masks, seq_len=6)


# ------------------------------------------------------------------------------------------ reference models
def test_real_minilm_counts():
    shape = ModelShape.from_config(load_config(None))
    assert (shape.num_layers, shape.num_heads, shape.num_units, shape.hidden_size) == (6, 12, 1536, 384)
    assert count_parameters(shape) == 22_713_986
    assert count_encoder_parameters(shape) == 10_646_784
    three = ModelShape.from_config(load_config(None, num_labels=3))
    assert count_parameters(three) == 22_713_986 + 384 + 1
    # bottom 3 of 6 layers: half the encoder, half the encoder MACs
    small = get_search_space("small", shape).to_masks({"num_layers": 3, "num_heads": 12, "num_units": 1536})
    cost = cost_of(shape, small)
    assert cost.encoder_param_fraction == 0.5 and cost.encoder_mac_fraction == 0.5
    assert cost.params == 22_713_986 - 3 * 1_774_464


def test_bert_base_counts():
    shape = ModelShape("bert", 12, 12, 64, 768, 3072, 30522, 512, 2, num_labels=2)
    assert count_parameters(shape) == 109_483_778  # bert-base-uncased with a 2-label classifier
    assert count_encoder_parameters(shape) == 85_054_464
    # one full layer at n=128: 12 heads * (4*128*768*64 + 2*128*128*64) + 3072 * 2*128*768
    assert count_encoder_macs(shape, None, 128) == 12 * (12 * (4 * 128 * 768 * 64 + 2 * 128 * 128 * 64)
                                                         + 3072 * 2 * 128 * 768)
