"""Pruning baselines: gate gradients, head pruning, layer dropping and retraining-free pruning."""
from __future__ import annotations

import copy
import itertools

import pytest
import torch
import torch.nn.functional as F

from baselines.pruning.head_importance import head_importance
from baselines.pruning.head_prune import HeadPruneConfig, head_pruning_steps
from baselines.pruning.layer_drop import drop_top_layers, layer_drop_schedule
from baselines.pruning.masking import fold_scales, gated, mask_gradients, masks_as_gates
from baselines.pruning.rfp import (
    MacCosts,
    RFPConfig,
    diagonal_fisher,
    fisher_gradients,
    pruned_model,
    rearrange_layer,
    rearrange_masks,
    reconstruction_errors,
    removal_loss,
    rescale_masks,
    retraining_free_prune,
    search_masks,
)
from search_spaces.cost import count_macs, count_parameters
from search_spaces.masks import SubNetworkMasks
from supernet.extract import extract_sub_network
from supernet.loading import model_shape
from supernet.reference import masked

from conftest import tiny_model as shared_tiny_model

SEQ = 10

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_model(kind: str = "bert-seq", layers: int = 3, heads: int = 4, units: int = 12, head_dim: int = 4):
    """A tiny random model with large weights (initializer_range 0.3), no dropout, in eval mode."""
    return shared_tiny_model(
        kind, vocab_size=50, hidden_size=heads * head_dim, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=units, max_position_embeddings=32, initializer_range=0.3,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )


def batches(model, count: int = 2, size: int = 6, seed: int = 1) -> list[dict[str, torch.Tensor]]:
    """Random batches with padded rows; labels fit the model's head."""
    gen = torch.Generator().manual_seed(seed)
    choices = 3 if "MultipleChoice" in type(model).__name__ else 0
    out = []
    for _ in range(count):
        dims = (size, choices, SEQ) if choices else (size, SEQ)
        ids = torch.randint(3, 50, dims, generator=gen)
        attention = torch.ones_like(ids)
        attention.view(-1, SEQ)[::2, SEQ - 3 :] = 0
        if choices:
            labels = torch.randint(0, choices, (size,), generator=gen)
        elif model.config.num_labels == 1:
            labels = torch.randn(size, generator=gen)
        else:
            labels = torch.randint(0, model.config.num_labels, (size,), generator=gen)
        out.append({"input_ids": ids, "attention_mask": attention, "labels": labels})
    return out


def example_losses(model, batch, head_gates=None, unit_gates=None) -> torch.Tensor:
    """Per-example losses of a batch under shared gates."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad(), gated(model, head_gates, unit_gates):
        logits = model(**inputs).logits
    if model.config.problem_type == "regression":
        return (logits.view(-1) - batch["labels"]).pow(2)
    return F.cross_entropy(logits, batch["labels"], reduction="none")


def extracted_counts(model) -> tuple[list[int], list[int]]:
    """Heads and units per layer read off an extracted model's weights (0 for a removed block)."""
    heads, units = [], []
    config = model.config
    head_dim = getattr(config, "plm_nas_head_dim", None) or config.hidden_size // config.num_attention_heads
    for layer in model.base_model.encoder.layer:
        heads.append(0 if layer.attention is None else layer.attention.self.query.out_features // head_dim)
        units.append(0 if layer.output is None else layer.output.dense.in_features)
    return heads, units


def extracted_macs(model, full_shape, seq_len: int) -> int:
    """MACs of an extracted model, from the blocks it physically holds."""
    heads, units = extracted_counts(model)
    masks = SubNetworkMasks(
        heads=torch.tensor([[i < h for i in range(full_shape.num_heads)] for h in heads]),
        units=torch.tensor([[i < u for i in range(full_shape.num_units)] for u in units]),
    )
    pad = full_shape.num_layers - len(heads)
    masks = SubNetworkMasks(
        heads=torch.cat([masks.heads, torch.zeros(pad, full_shape.num_heads, dtype=torch.bool)]),
        units=torch.cat([masks.units, torch.zeros(pad, full_shape.num_units, dtype=torch.bool)]),
    )
    return count_macs(full_shape, masks, seq_len)


def random_masks(shape, seed: int, p: float = 0.5) -> SubNetworkMasks:
    gen = torch.Generator().manual_seed(seed)
    return SubNetworkMasks(
        heads=torch.rand(shape.num_layers, shape.num_heads, generator=gen) < p,
        units=torch.rand(shape.num_layers, shape.num_units, generator=gen) < p,
    )


# ------------------------------------------------------------------------------------------ gates and gradients


def test_zero_one_gates_compute_the_extracted_sub_network():
    model = tiny_model()
    shape = model_shape(model)
    masks = random_masks(shape, seed=3)
    masks.heads[1] = False  # a layer without attention
    masks.units[2] = False  # a layer without FFN
    batch = {k: v for k, v in batches(model, 1)[0].items() if k != "labels"}
    with torch.no_grad():
        with gated(model, *masks_as_gates(masks, torch.float32, torch.device("cpu"))):
            ours = model(**batch).logits
        with masked(model, masks):
            reference = model(**batch).logits
        extracted = extract_sub_network(model, masks)(**batch).logits
        full = model(**batch).logits
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-5)
    torch.testing.assert_close(ours, extracted, rtol=0, atol=1e-5)
    assert (ours - full).abs().max() > 1e-2  # the sub-network differs from the full model


@pytest.mark.parametrize("kind", ["bert-seq", "bert-regression", "roberta-mc"])
def test_per_example_gate_gradients_match_finite_differences(kind):
    model = tiny_model(kind).double()
    shape = model_shape(model)
    data = batches(model, count=1, size=4)
    grads = mask_gradients(model, data)
    assert grads.heads.shape == (4, shape.num_layers, shape.num_heads)
    assert grads.units.shape == (4, shape.num_layers, shape.num_units)
    eps = 1e-6
    ones_h = torch.ones(shape.num_layers, shape.num_heads, dtype=torch.float64)
    ones_u = torch.ones(shape.num_layers, shape.num_units, dtype=torch.float64)
    for layer, head, unit in [(0, 1, 3), (2, 3, 11)]:
        plus, minus = ones_h.clone(), ones_h.clone()
        plus[layer, head] += eps
        minus[layer, head] -= eps
        fd = (example_losses(model, data[0], plus, ones_u) - example_losses(model, data[0], minus, ones_u)) / (2 * eps)
        torch.testing.assert_close(grads.heads[:, layer, head].double(), fd, rtol=1e-4, atol=1e-6)
        plus, minus = ones_u.clone(), ones_u.clone()
        plus[layer, unit] += eps
        minus[layer, unit] -= eps
        fd = (example_losses(model, data[0], ones_h, plus) - example_losses(model, data[0], ones_h, minus)) / (2 * eps)
        torch.testing.assert_close(grads.units[:, layer, unit].double(), fd, rtol=1e-4, atol=1e-6)
        assert fd.abs().max() > 1e-4  # the checked gradients are not trivially zero


def test_head_importance_is_michel_score_from_finite_differences():
    model = tiny_model(layers=2, heads=3).double()
    data = batches(model, count=2, size=3)
    eps = 1e-6
    shape = model_shape(model)
    ones_u = torch.ones(shape.num_layers, shape.num_units, dtype=torch.float64)
    expected = torch.zeros(shape.num_layers, shape.num_heads, dtype=torch.float64)
    for layer, head in itertools.product(range(shape.num_layers), range(shape.num_heads)):
        for batch in data:
            plus, minus = torch.ones(2, 3, dtype=torch.float64), torch.ones(2, 3, dtype=torch.float64)
            plus[layer, head] += eps
            minus[layer, head] -= eps
            fd = (example_losses(model, batch, plus, ones_u) - example_losses(model, batch, minus, ones_u)) / (2 * eps)
            expected[layer, head] += fd.abs().sum()
    expected = expected / expected.norm(dim=1, keepdim=True)
    torch.testing.assert_close(head_importance(model, data).double(), expected, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(head_importance(model, data).norm(dim=1), torch.ones(2), rtol=1e-5, atol=0)


# --------------------------------------------------------------------------------------------- head pruning


def test_head_pruning_removes_least_important_heads_step_by_step_down_to_one():
    model = tiny_model(layers=2, heads=5)  # 10 heads: steps of 1 head; the tiny layers let one empty out
    data = batches(model, count=1, size=6)
    steps = list(head_pruning_steps(model, data, HeadPruneConfig(step_fraction=0.1)))
    kept = [int(step.masks.heads.sum()) for step in steps]
    assert kept == list(range(10, 0, -1))
    for previous, step in zip(steps, steps[1:]):
        # the importance is re-scored on the previous sub-network and its least important kept head goes
        torch.testing.assert_close(step.importance, head_importance(model, data, previous.masks))
        removed = previous.masks.heads & ~step.masks.heads
        assert int(removed.sum()) == 1 and not (step.masks.heads & ~previous.masks.heads).any()
        candidates = step.importance[previous.masks.heads]
        assert step.importance[removed].item() == candidates.min().item()
        assert torch.equal(step.masks.units, previous.masks.units)  # FFN units are never pruned
        extracted = extract_sub_network(model, step.masks)
        assert sum(extracted_counts(extracted)[0]) == int(step.masks.heads.sum())
        assert sum(p.numel() for p in extracted.parameters()) == count_parameters(model_shape(model), step.masks)
    assert 0 in steps[-1].masks.heads_per_layer  # a layer lost all its heads on the way


def test_head_pruning_step_size_is_a_fraction_of_all_heads():
    model = tiny_model(layers=3, heads=4)  # 12 heads, 10%: 1 head per step; 25%: 3 heads per step
    data = batches(model, count=1, size=4)
    kept = [int(s.masks.heads.sum()) for s in head_pruning_steps(model, data, HeadPruneConfig(step_fraction=0.25))]
    assert kept == [12, 9, 6, 3, 1]
    with pytest.raises(ValueError, match="step_fraction"):
        HeadPruneConfig(step_fraction=0.0)


# ---------------------------------------------------------------------------------------------- layer dropping


def test_layer_dropping_drops_the_top_layers():
    model = tiny_model(layers=4)
    shape = model_shape(model)
    schedule = layer_drop_schedule(shape)
    assert [m.layers_kept for m in schedule] == [[True] * (4 - k) + [False] * k for k in (1, 2, 3)]
    masks = drop_top_layers(shape, 2)
    assert masks.heads[:2].all() and masks.units[:2].all() and not masks.heads[2:].any() and not masks.units[2:].any()
    extracted = extract_sub_network(model, masks)
    assert extracted.config.num_hidden_layers == 2
    for kept, original in zip(extracted.base_model.encoder.layer, model.base_model.encoder.layer[:2]):
        for (name, a), (_, b) in zip(kept.named_parameters(), original.named_parameters()):
            assert torch.equal(a, b), name
    batch = {k: v for k, v in batches(model, 1)[0].items() if k != "labels"}
    with torch.no_grad():
        hidden = model.base_model(**batch, output_hidden_states=True).hidden_states[2]
        torch.testing.assert_close(extracted.base_model(**batch).last_hidden_state, hidden)
    with pytest.raises(ValueError, match="num_dropped"):
        drop_top_layers(shape, 4)


# ----------------------------------------------------------------------------------- retraining-free pruning


def test_mask_search_is_the_exact_knapsack_optimum():
    model = tiny_model(layers=1, heads=3, units=5, head_dim=2)
    shape = model_shape(model)
    gen = torch.Generator().manual_seed(0)
    head_scores, unit_scores = torch.rand(1, 3, generator=gen), torch.rand(1, 5, generator=gen) * 0.3
    full = count_macs(shape, None, 16)
    for budget in (0.2, 0.35, 0.5, 0.7, 0.9):
        best = -1.0
        for bits in itertools.product([False, True], repeat=8):
            masks = SubNetworkMasks(torch.tensor([bits[:3]]), torch.tensor([bits[3:]]))
            if count_macs(shape, masks, 16) <= budget * full:
                best = max(best, float(head_scores[masks.heads].sum() + unit_scores[masks.units].sum()))
        found = search_masks(head_scores, unit_scores, shape, budget, seq_len=16)
        assert count_macs(shape, found, 16) <= budget * full
        assert float(head_scores[found.heads].sum() + unit_scores[found.units].sum()) == pytest.approx(best)


def test_mask_search_fills_its_mac_budget():
    model = tiny_model()
    shape = model_shape(model)
    costs = MacCosts.from_shape(shape, seq_len=SEQ)
    grads = fisher_gradients(model, batches(model))
    for budget in (0.3, 0.5, 0.75, 0.9):
        masks = search_masks(diagonal_fisher(grads.heads), diagonal_fisher(grads.units), shape, budget, SEQ)
        macs = count_macs(shape, masks, SEQ)
        assert budget * costs.full - costs.per_unit < macs <= budget * costs.full
    with pytest.raises(ValueError, match="budget"):
        search_masks(diagonal_fisher(grads.heads), diagonal_fisher(grads.units), shape, 1.5, SEQ)


def test_rearrangement_keeps_counts_and_never_increases_the_block_fisher_loss():
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(40, 4, generator=gen)
    # Gates 0-3 and 4-7 cancel in pairs: removing a pair costs little although each gate alone looks important.
    noise, others = 0.1 * torch.randn(40, 4, generator=gen), 0.7 * torch.randn(40, 4, generator=gen)
    grads = torch.cat([base, -base + noise, others], 1)
    diagonal_choice = torch.ones(12, dtype=torch.bool)
    diagonal_choice[grads.pow(2).sum(0).argsort()[:4]] = False
    rearranged = rearrange_layer(diagonal_choice, grads)
    assert int(rearranged.sum()) == 8
    assert removal_loss(rearranged, grads) < 0.5 * removal_loss(diagonal_choice, grads)
    # Per layer, on model-like gradients: counts kept and loss never worse.
    layer_grads = torch.randn(30, 2, 12, generator=gen)
    masks = SubNetworkMasks(torch.rand(2, 12, generator=gen) < 0.6, torch.rand(2, 12, generator=gen) < 0.4)
    new = rearrange_masks(masks, layer_grads, layer_grads)
    assert new.heads_per_layer == masks.heads_per_layer and new.units_per_layer == masks.units_per_layer
    for layer in range(2):
        before, after = (removal_loss(m.heads[layer], layer_grads[:, layer]) for m in (masks, new))
        assert after <= before + 1e-9


def test_rescaling_does_not_increase_layerwise_reconstruction_error_on_held_out_inputs():
    model = tiny_model(layers=3, heads=4, units=24, head_dim=8)
    shape = model_shape(model)
    masks = random_masks(shape, seed=5, p=0.5)
    masks.heads[:, 0] = True
    fit, held_out = batches(model, count=6, size=8, seed=1), batches(model, count=6, size=8, seed=2)
    result = rescale_masks(model, masks, fit)
    fitted = ~torch.isnan(result.errors_before)
    assert fitted.all()
    assert (result.errors_after <= result.errors_before + 1e-9).all()
    assert result.errors_after.sum() < 0.97 * result.errors_before.sum()
    assert torch.equal(result.head_scales != 0, masks.heads) and torch.equal(result.unit_scales != 0, masks.units)
    before = reconstruction_errors(model, masks, held_out)
    after = reconstruction_errors(model, masks, held_out, result.head_scales, result.unit_scales)
    assert after.sum() < before.sum()
    assert after[-1, 1] < before[-1, 1]  # the last layer's output (what the classifier reads) got closer
    # Folding the scales into the weights and extracting gives exactly the rescaled sub-network.
    batch = {k: v for k, v in held_out[0].items() if k != "labels"}
    scaled = fold_scales(copy.deepcopy(model), result.head_scales, result.unit_scales)
    with torch.no_grad(), gated(model, result.head_scales, result.unit_scales):
        expected = model(**batch).logits
    torch.testing.assert_close(extract_sub_network(scaled, masks)(**batch).logits, expected, rtol=0, atol=1e-5)


def test_retraining_free_pruning_extracted_models_respect_their_mac_budgets():
    model = tiny_model(layers=3, heads=4, units=24, head_dim=8)
    shape = model_shape(model)
    sample = batches(model, count=3, size=8)
    grads = fisher_gradients(model, sample)
    full = count_macs(shape, None, 64)
    for budget, teacher in ((0.4, "full"), (0.6, "intermediate"), (0.9, "full")):
        result = retraining_free_prune(model, grads, sample, budget, RFPConfig(seq_len=64, teacher=teacher))
        assert result.rescale is not None and not (result.rescale.errors_after > result.rescale.errors_before + 1e-9).any()
        extracted = pruned_model(model, result)
        assert extracted_macs(extracted, shape, 64) <= budget * full
        assert extracted_macs(extracted, shape, 64) == count_macs(shape, result.masks, 64)
        assert result.masks.heads_per_layer == result.searched.heads_per_layer  # rearranged within layers
        batch = {k: v for k, v in sample[0].items() if k != "labels"}
        with torch.no_grad(), gated(model, result.head_scales, result.unit_scales):
            expected = model(**batch).logits
        torch.testing.assert_close(extracted(**batch).logits, expected, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="teacher"):
        RFPConfig(teacher="nobody")
