"""Mask search under a MAC budget (Kwon et al., 2022, section 4.2): a two-item-type knapsack.

Every head costs the same MACs and every unit costs the same MACs, so the most important set under a budget
keeps the top-k heads and the top-m units by diagonal Fisher for some k; trying every k (m then fills the
rest of the budget) and keeping the best total importance solves it exactly. Costs come from the project's
MAC model (:func:`search_spaces.cost.count_macs`), never from a separate formula.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from search_spaces.cost import DEFAULT_SEQ_LEN, count_macs
from search_spaces.masks import SubNetworkMasks
from search_spaces.shape import ModelShape


@dataclass(frozen=True)
class MacCosts:
    """MACs of the always-kept parts, of one head and of one unit, at one sequence length."""

    fixed: int
    per_head: int
    per_unit: int
    full: int

    @classmethod
    def from_shape(cls, shape: ModelShape, seq_len: int = DEFAULT_SEQ_LEN) -> "MacCosts":
        """Read the costs off :func:`count_macs` by adding one head or one unit to the empty sub-network."""
        empty = _empty(shape)
        one_head, one_unit = _empty(shape), _empty(shape)
        one_head.heads[0, 0] = True
        one_unit.units[0, 0] = True
        fixed = count_macs(shape, empty, seq_len)
        return cls(
            fixed=fixed,
            per_head=count_macs(shape, one_head, seq_len) - fixed,
            per_unit=count_macs(shape, one_unit, seq_len) - fixed,
            full=count_macs(shape, None, seq_len),
        )

    def budget(self, fraction: float) -> int:
        """The MAC budget of a fraction of the full model."""
        return int(fraction * self.full)


def _empty(shape: ModelShape) -> SubNetworkMasks:
    full = SubNetworkMasks.full(shape)
    return SubNetworkMasks(heads=~full.heads, units=~full.units)


def check_mac_budget(budget: float) -> float:
    if not 0.0 < budget <= 1.0:
        raise ValueError(f"a MAC budget is a fraction of the full model's MACs in (0, 1], got {budget}")
    return float(budget)


def search_masks(
    head_importance: torch.Tensor,
    unit_importance: torch.Tensor,
    shape: ModelShape,
    budget: float,
    seq_len: int = DEFAULT_SEQ_LEN,
) -> SubNetworkMasks:
    """The sub-network of greatest summed importance whose MACs are at most ``budget`` of the full model's.

    ``head_importance`` is ``[L, H]`` and ``unit_importance`` ``[L, U]`` (for example diagonal Fisher).
    """
    costs = MacCosts.from_shape(shape, seq_len)
    available = costs.budget(check_mac_budget(budget)) - costs.fixed
    if available < 0:
        raise ValueError(f"budget {budget} is below the MACs of the embeddings and task head alone")
    head_scores, head_order = head_importance.double().flatten().sort(descending=True, stable=True)
    unit_scores, unit_order = unit_importance.double().flatten().sort(descending=True, stable=True)
    head_total = torch.cat([head_scores.new_zeros(1), head_scores.cumsum(0)])
    unit_total = torch.cat([unit_scores.new_zeros(1), unit_scores.cumsum(0)])
    num_heads = torch.arange(head_total.numel())
    remaining = available - num_heads * costs.per_head
    feasible = remaining >= 0
    num_units = torch.clamp(remaining.clamp_min(0) // costs.per_unit, max=unit_total.numel() - 1)
    total = torch.where(feasible, head_total + unit_total[num_units], torch.full_like(head_total, -torch.inf))
    best = int(torch.argmax(total))  # first maximum: fewest heads among equally good choices
    heads = torch.zeros(head_order.numel(), dtype=torch.bool)
    units = torch.zeros(unit_order.numel(), dtype=torch.bool)
    heads[head_order[:best]] = True
    units[unit_order[: int(num_units[best])]] = True
    masks = SubNetworkMasks(heads=heads.view(shape.num_layers, -1), units=units.view(shape.num_layers, -1))
    if count_macs(shape, masks, seq_len) > costs.budget(budget):  # the cost model is additive; guard it stays so
        raise RuntimeError("mask search exceeded its MAC budget: count_macs is no longer additive per head and unit")
    return masks
