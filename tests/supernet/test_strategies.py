"""Super-network training strategies on a tiny random BERT with the real sliced SuperNetwork."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from search_spaces import get_search_space
from search_spaces.masks import SubNetworkMasks
from supernet.model import SuperNetwork
from supernet.strategies import (
    STRATEGIES,
    Pass,
    distillation_loss,
    get_strategy,
    random_probability,
    strategy_options,
)

from conftest import tiny_bert_supernet

SEED = 3

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_supernet(num_labels: int = 2, dropout: float = 0.0) -> SuperNetwork:
    return tiny_bert_supernet(
        vocab_size=60,
        hidden_size=16,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=24,
        max_position_embeddings=32,
        num_labels=num_labels,
        problem_type="regression" if num_labels == 1 else "single_label_classification",
        initializer_range=0.3,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )


def make_batch(regression: bool = False) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    labels = torch.rand(6, generator=gen) * 5 if regression else torch.tensor([0, 1, 1, 0, 1, 0])
    return {
        "input_ids": torch.randint(0, 60, (6, 10), generator=gen),
        "attention_mask": torch.ones(6, 10, dtype=torch.long),
        "labels": labels,
    }


def inputs_of(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value for key, value in batch.items() if key != "labels"}


def record_passes(supernet: SuperNetwork) -> list[SubNetworkMasks | None]:
    """Wrap the forward so that every pass appends the masks active during it."""
    seen: list[SubNetworkMasks | None] = []
    forward = supernet.forward

    def spy(**batch):
        seen.append(supernet.active_masks)
        return forward(**batch)

    supernet.forward = spy
    return seen


def same_masks(a: SubNetworkMasks | None, b: SubNetworkMasks | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return torch.equal(a.heads, b.heads) and torch.equal(a.units, b.units)


def gradients(supernet: SuperNetwork) -> dict[str, torch.Tensor]:
    return {
        name: (p.grad.clone() if p.grad is not None else torch.zeros_like(p))
        for name, p in supernet.named_parameters()
    }


def run_step(strategy_name: str, supernet: SuperNetwork, batch, step: int = 5, total: int = 10, **options):
    """One step from zero gradients (by default past the full-network warm-up); returns (loss, masks, gradients)."""
    space = get_search_space("small", supernet.shape)
    strategy = get_strategy(strategy_name, space, **options)
    supernet.zero_grad(set_to_none=True)
    seen = record_passes(supernet)
    loss = strategy.step_loss(supernet, batch, step, total, np.random.default_rng(SEED))
    del supernet.forward
    return loss, seen, gradients(supernet)


def expected_random_masks(supernet: SuperNetwork, count: int) -> list[SubNetworkMasks]:
    space = get_search_space("small", supernet.shape)
    rng = np.random.default_rng(SEED)
    return [space.to_masks(space.sample(rng)) for _ in range(count)]


def logits_of(supernet: SuperNetwork, batch, masks: SubNetworkMasks | None) -> torch.Tensor:
    with supernet.sub_network(masks):
        return supernet(**inputs_of(batch)).logits


def assert_grads_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6, msg=name)


def test_registry_holds_the_six_strategies_and_rejects_unused_options():
    assert list(STRATEGIES) == ["standard", "random", "linear_random", "sandwich", "kd", "full"]
    common = {"full_warmup": 0.3, "sub_network_loss_weight": 1.0}
    assert strategy_options("sandwich") == {"num_random": 2, **common}
    assert strategy_options("full") == {"num_random": 2, **common, "temperature": 10.0}
    assert strategy_options("kd") == {"num_random": 1, **common, "temperature": 10.0}
    assert strategy_options("random") == {"num_random": 1, **common}
    assert strategy_options("linear_random") == {"num_random": 1, **common, "full_warmup": 0.0}
    assert strategy_options("standard") == {}
    space = get_search_space("small", tiny_supernet().shape)
    assert get_strategy("kd", space, num_random=None, temperature=None).temperature == 10.0
    with pytest.raises(ValueError, match="choose from standard, random, linear_random, sandwich, kd, full"):
        get_strategy("bogus", space)
    with pytest.raises(ValueError, match="does not use temperature"):
        get_strategy("sandwich", space, temperature=2.0)
    with pytest.raises(ValueError, match="needs a search space"):
        get_strategy("random", None)
    with pytest.raises(ValueError, match="num_random >= 1"):
        get_strategy("kd", space, num_random=0)
    assert len(get_strategy("sandwich", space, num_random=0).plan(0, 10, np.random.default_rng(0))) == 2


def test_standard_is_one_full_pass_with_the_task_loss():
    supernet, batch = tiny_supernet(), make_batch()
    loss, seen, grads = run_step("standard", supernet, batch)
    assert seen == [None]
    supernet.zero_grad(set_to_none=True)
    expected = F.cross_entropy(logits_of(supernet, batch, None), batch["labels"])
    expected.backward()
    assert loss == pytest.approx(float(expected.detach()), rel=1e-6)
    assert_grads_close(grads, gradients(supernet))
    assert supernet.active_masks is None


@pytest.mark.parametrize("num_random", [2, 3])
def test_sandwich_runs_full_smallest_and_k_random_sub_networks(num_random):
    supernet, batch = tiny_supernet(), make_batch()
    space = get_search_space("small", supernet.shape)
    loss, seen, grads = run_step("sandwich", supernet, batch, num_random=num_random)
    smallest = space.to_masks(space.smallest())
    assert smallest.heads_per_layer == [1, 0, 0] and smallest.units_per_layer == [1, 0, 0]
    expected_masks = [None, smallest, *expected_random_masks(supernet, num_random)]
    assert len(seen) == num_random + 2
    assert all(same_masks(a, b) for a, b in zip(seen, expected_masks))
    assert not any(same_masks(a, b) for a, b in itertools.combinations(seen, 2)), "passes must be distinct"
    # Gradients of all passes add up: compare with each pass back-propagated on its own.
    total_loss, summed = 0.0, None
    for masks in expected_masks:
        supernet.zero_grad(set_to_none=True)
        pass_loss = F.cross_entropy(logits_of(supernet, batch, masks), batch["labels"])
        pass_loss.backward()
        total_loss += pass_loss.item()
        pass_grads = gradients(supernet)
        summed = pass_grads if summed is None else {k: summed[k] + pass_grads[k] for k in summed}
    assert loss == pytest.approx(total_loss, rel=1e-6)
    assert_grads_close(grads, summed)


def test_num_random_sets_the_number_of_random_passes_and_changes_gradients():
    batch = make_batch()
    _, seen_one, grads_one = run_step("random", tiny_supernet(), batch)
    _, seen_three, grads_three = run_step("random", tiny_supernet(), batch, num_random=3)
    assert len(seen_one) == 1 and len(seen_three) == 3
    assert all(masks is not None for masks in seen_one + seen_three)
    assert same_masks(seen_one[0], seen_three[0])  # same seeded generator, same first draw
    assert any(not torch.allclose(grads_one[k], grads_three[k]) for k in grads_one)


def test_kd_distils_random_sub_networks_from_the_detached_full_network():
    supernet, batch = tiny_supernet(), make_batch()
    loss, seen, grads = run_step("kd", supernet, batch, temperature=4.0)
    (random_masks,) = expected_random_masks(supernet, 1)
    assert seen[0] is None and same_masks(seen[1], random_masks) and len(seen) == 2
    supernet.zero_grad(set_to_none=True)
    teacher = logits_of(supernet, batch, None)
    full_loss = F.cross_entropy(teacher, batch["labels"])
    student = logits_of(supernet, batch, random_masks)
    soft = -(F.softmax(teacher.detach() / 4.0, -1) * F.log_softmax(student / 4.0, -1)).sum(-1).mean()
    kd_loss = 16.0 * soft + F.cross_entropy(student, batch["labels"])
    (full_loss + kd_loss).backward()
    assert loss == pytest.approx((full_loss + kd_loss).item(), rel=1e-5)
    assert_grads_close(grads, gradients(supernet))


def test_temperature_changes_loss_and_gradients():
    batch = make_batch()
    loss_2, _, grads_2 = run_step("kd", tiny_supernet(), batch, temperature=2.0)
    loss_10, _, grads_10 = run_step("kd", tiny_supernet(), batch)
    assert abs(loss_2 - loss_10) > 1e-3
    assert any(not torch.allclose(grads_2[k], grads_10[k]) for k in grads_2)
    loss_full_2, _, _ = run_step("full", tiny_supernet(), batch, temperature=2.0)
    loss_full_10, _, _ = run_step("full", tiny_supernet(), batch, temperature=10.0)
    assert abs(loss_full_2 - loss_full_10) > 1e-3


def test_full_distils_smallest_and_random_sub_networks():
    supernet, batch = tiny_supernet(), make_batch()
    space = get_search_space("small", supernet.shape)
    loss, seen, grads = run_step("full", supernet, batch, num_random=1)
    subnets = [space.to_masks(space.smallest()), *expected_random_masks(supernet, 1)]
    assert seen[0] is None and len(seen) == 3
    assert all(same_masks(a, b) for a, b in zip(seen[1:], subnets))
    supernet.zero_grad(set_to_none=True)
    teacher = logits_of(supernet, batch, None)
    total = F.cross_entropy(teacher, batch["labels"])
    for masks in subnets:
        total = total + distillation_loss(logits_of(supernet, batch, masks), teacher, batch["labels"], 10.0, False)
    total.backward()
    assert loss == pytest.approx(total.item(), rel=1e-5)
    assert_grads_close(grads, gradients(supernet))


@pytest.mark.parametrize("name", ["kd", "full"])
def test_distillation_on_regression_uses_mse_to_teacher_and_labels(name):
    supernet, batch = tiny_supernet(num_labels=1), make_batch(regression=True)
    space = get_search_space("small", supernet.shape)
    loss, seen, grads = run_step(name, supernet, batch)
    subnets = ([space.to_masks(space.smallest())] if name == "full" else []) + expected_random_masks(
        supernet, 2 if name == "full" else 1
    )
    assert len(seen) == 1 + len(subnets)
    supernet.zero_grad(set_to_none=True)
    teacher = logits_of(supernet, batch, None).squeeze(-1)
    total = F.mse_loss(teacher, batch["labels"])
    for masks in subnets:
        student = logits_of(supernet, batch, masks).squeeze(-1)
        total = total + F.mse_loss(student, teacher.detach()) + F.mse_loss(student, batch["labels"])
    total.backward()
    assert np.isfinite(loss) and loss == pytest.approx(total.item(), rel=1e-5)
    assert_grads_close(grads, gradients(supernet))
    # No softened distribution in regression: the temperature does not matter.
    assert run_step(name, tiny_supernet(num_labels=1), batch, temperature=2.0)[0] == pytest.approx(loss, rel=1e-6)


def test_linear_random_probability_rises_from_zero_to_one():
    assert random_probability(0, 101) == 0.0
    assert random_probability(50, 101) == pytest.approx(0.5)
    assert random_probability(100, 101) == 1.0
    space = get_search_space("small", tiny_supernet().shape)
    strategy = get_strategy("linear_random", space)
    rng = np.random.default_rng(0)
    total = 2000
    is_random = np.array([strategy.plan(step, total, rng)[0].masks is not None for step in range(total)])
    assert not is_random[0] and is_random[-1]
    quarters = is_random.reshape(4, -1).mean(axis=1)
    # Expected fractions 0.125, 0.375, 0.625, 0.875 (binomial sd about 0.03).
    np.testing.assert_allclose(quarters, [0.125, 0.375, 0.625, 0.875], atol=0.08)


def test_linear_random_step_trains_the_chosen_network():
    batch = make_batch()
    _, seen_first, _ = run_step("linear_random", tiny_supernet(), batch, step=0, total=10)
    _, seen_last, _ = run_step("linear_random", tiny_supernet(), batch, step=9, total=10, num_random=2)
    assert seen_first == [None]
    assert len(seen_last) == 2 and all(masks is not None for masks in seen_last)


def test_full_network_is_active_again_after_a_failing_step():
    supernet, batch = tiny_supernet(), make_batch()
    space = get_search_space("small", supernet.shape)
    strategy = get_strategy("sandwich", space)
    bad = dict(batch, labels=torch.tensor([0, 1]))  # wrong number of labels
    with pytest.raises((ValueError, RuntimeError)):
        strategy.step_loss(supernet, bad, 0, 10, np.random.default_rng(0))
    assert supernet.active_masks is None


@pytest.mark.parametrize("name", ["random", "sandwich", "kd", "full"])
def test_full_warmup_trains_the_full_network_alone_first(name):
    """The first ``full_warmup`` share of steps is one full-network pass with the task loss, drawing nothing."""
    supernet, batch = tiny_supernet(), make_batch()
    space = get_search_space("small", supernet.shape)
    strategy = get_strategy(name, space, full_warmup=0.25)
    rng = np.random.default_rng(SEED)
    assert [strategy.passes(step, 8, rng) for step in (0, 1)] == [[Pass(None)], [Pass(None)]]
    assert rng.bit_generator.state == np.random.default_rng(SEED).bit_generator.state
    assert len(strategy.passes(2, 8, rng)) == len(strategy.plan(2, 8, np.random.default_rng(SEED)))
    warm_loss, _, warm_grads = run_step(name, supernet, batch, step=1, total=8, full_warmup=0.25)
    plain_loss, _, plain_grads = run_step("standard", supernet, batch, step=1, total=8)
    assert warm_loss == pytest.approx(plain_loss)
    assert_grads_close(warm_grads, plain_grads)
    with pytest.raises(ValueError, match=r"full_warmup must be in \[0, 1\)"):
        get_strategy(name, space, full_warmup=1.0)


def test_sub_network_loss_weight_scales_sub_network_passes_only():
    """Weight w: the step's loss and gradients are the full pass's plus w times the sub-networks' ones."""
    supernet, batch = tiny_supernet(), make_batch()
    one_loss, _, one_grads = run_step("sandwich", supernet, batch)
    half_loss, _, half_grads = run_step("sandwich", supernet, batch, sub_network_loss_weight=0.5)
    full_loss, _, full_grads = run_step("standard", supernet, batch)
    assert half_loss == pytest.approx(full_loss + 0.5 * (one_loss - full_loss), rel=1e-5)
    expected = {name: full_grads[name] + 0.5 * (one_grads[name] - full_grads[name]) for name in one_grads}
    assert_grads_close(half_grads, expected)
    with pytest.raises(ValueError, match="sub_network_loss_weight must be positive"):
        get_strategy("sandwich", get_search_space("small", supernet.shape), sub_network_loss_weight=0.0)


@pytest.mark.parametrize("name", ["sandwich", "kd"])
def test_a_frozen_teacher_is_what_every_pass_learns_from(name):
    """With an external teacher every pass (the full network's too) is distilled from the teacher's logits, at
    the teacher's temperature, whatever the strategy distils in place; the teacher gets no gradient."""
    from supernet.teacher import Teacher

    supernet, batch = tiny_supernet(), make_batch()
    teacher = Teacher(tiny_supernet(dropout=0.0).model, temperature=3.0)
    teacher.model.apply(lambda module: torch.nn.init.normal_(module.weight, std=0.3)
                        if isinstance(module, torch.nn.Linear) else None)  # another network than the student
    space = get_search_space("small", supernet.shape)
    strategy = get_strategy(name, space)
    supernet.zero_grad(set_to_none=True)
    seen = record_passes(supernet)
    loss = strategy.step_loss(supernet, batch, 5, 10, np.random.default_rng(SEED), teacher=teacher)
    del supernet.forward
    grads = gradients(supernet)
    assert all(param.grad is None and not param.requires_grad for param in teacher.model.parameters())
    supernet.zero_grad(set_to_none=True)
    with torch.no_grad():
        target = teacher.model(**inputs_of(batch)).logits
    total = sum(distillation_loss(logits_of(supernet, batch, masks), target, batch["labels"], 3.0, False)
                for masks in seen)
    total.backward()
    assert loss == pytest.approx(total.item(), rel=1e-5)
    assert_grads_close(grads, gradients(supernet))
    # without the teacher the same step computes something else
    assert run_step(name, tiny_supernet(), batch)[0] != pytest.approx(loss, rel=1e-3)


def test_hidden_state_loss_averages_over_real_tokens_only():
    from supernet.strategies.losses import hidden_state_loss

    student = torch.zeros(2, 3, 2)
    teacher = torch.tensor([[[1.0, 3.0], [2.0, 0.0], [9.0, 9.0]], [[0.0, 0.0], [4.0, 4.0], [9.0, 9.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 0]])  # the last token of each is padding
    # per-token means of squares: 5, 2 | 0, 16 -> 23 / 4
    assert hidden_state_loss(student, teacher, mask).item() == pytest.approx(23 / 4)
    assert hidden_state_loss(student, teacher).item() == pytest.approx((5 + 2 + 81 + 0 + 16 + 81) / 6)
    # multiple choice: the mask has a choices dimension, the states are batch*choices x tokens x hidden
    assert hidden_state_loss(student, teacher, mask.view(1, 2, 3)).item() == pytest.approx(23 / 4)


def test_a_teacher_with_hidden_weight_adds_the_last_hidden_states_error_of_every_pass():
    """Beside the logits, every pass matches the teacher's last hidden states over the unpadded tokens: the
    full network of an identical student adds nothing, each sub-network adds weight x its own error."""
    from supernet.strategies.losses import hidden_state_loss
    from supernet.teacher import Teacher

    supernet, batch = tiny_supernet(), make_batch()
    batch["attention_mask"][:3, 7:] = 0  # padded tokens count for nothing
    teacher = Teacher(tiny_supernet(dropout=0.0).model, temperature=2.0, hidden_weight=0.5)
    teacher.model.load_state_dict(supernet.model.state_dict())  # the student starts as the teacher
    space = get_search_space("small", supernet.shape)
    strategy = get_strategy("sandwich", space)
    supernet.zero_grad(set_to_none=True)
    seen = record_passes(supernet)
    loss = strategy.step_loss(supernet, batch, 5, 10, np.random.default_rng(SEED), teacher=teacher)
    del supernet.forward
    grads = gradients(supernet)
    supernet.zero_grad(set_to_none=True)
    inputs = inputs_of(batch)
    with torch.no_grad():
        target = teacher.model(**inputs, output_hidden_states=True)
    total, hidden_errors = 0.0, []
    for masks in seen:
        with supernet.sub_network(masks):
            outputs = supernet(**inputs, output_hidden_states=True)
        error = hidden_state_loss(outputs.hidden_states[-1], target.hidden_states[-1], batch["attention_mask"])
        hidden_errors.append(error.item())
        total = total + distillation_loss(outputs.logits, target.logits, batch["labels"], 2.0, False) + 0.5 * error
    total.backward()
    assert seen[0] is None and hidden_errors[0] == pytest.approx(0.0, abs=1e-10)
    assert min(hidden_errors[1:]) > 1e-3  # the sub-networks differ from the teacher (initializer_range 0.3)
    assert loss == pytest.approx(total.item(), rel=1e-5)
    assert_grads_close(grads, gradients(supernet))
    # the hidden term changes the step: without it the loss is the logits' alone
    logits_only = Teacher(teacher.model, temperature=2.0)
    supernet.zero_grad(set_to_none=True)
    assert strategy.step_loss(supernet, batch, 5, 10, np.random.default_rng(SEED), teacher=logits_only) == (
        pytest.approx(loss - 0.5 * sum(hidden_errors), rel=1e-5))
    with pytest.raises(ValueError, match="hidden-state weight"):
        Teacher(teacher.model, hidden_weight=-1.0)
