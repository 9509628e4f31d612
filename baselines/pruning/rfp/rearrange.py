"""Mask rearrangement (Kwon et al., 2022, section 4.3): fix interactions the diagonal Fisher ignores.

Within one layer the loss of removing a set S of gates is approximated with the layer's block of the
empirical Fisher, ``sum_x (sum_{i in S} g_i(x))^2 = 1_S^T F 1_S``. Keeping each layer's number of removed
gates (so its MACs) fixed, a greedy pass visits the kept gates from least to most important: each joins the
removed set, and then the member whose return lowers the loss most goes back.
"""
from __future__ import annotations

import torch

from search_spaces.masks import SubNetworkMasks


def rearrange_layer(kept: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """New ``[n]`` keep-mask with as many kept gates, from per-example gradients ``[examples, n]`` of one layer."""
    num_removed = int((~kept).sum())
    if num_removed == 0 or num_removed == kept.numel():
        return kept.clone()
    grads = grads.double()
    fisher = grads.T @ grads  # [n, n] block of the empirical Fisher
    removed = ~kept.clone()
    # coupling[i] = sum_{j removed} F[i, j]; the loss of the removed set without i is const - 2 coupling[i] + F[i, i].
    coupling = fisher[:, removed].sum(dim=1)
    diagonal = fisher.diagonal()
    candidates = torch.nonzero(kept).flatten()
    for candidate in candidates[torch.argsort(diagonal[candidates], stable=True)].tolist():
        removed[candidate] = True
        coupling += fisher[:, candidate]
        gain = torch.where(removed, diagonal - 2 * coupling, torch.full_like(diagonal, torch.inf))
        back = int(torch.argmin(gain))
        removed[back] = False
        coupling -= fisher[:, back]
    return ~removed


def removal_loss(kept: torch.Tensor, grads: torch.Tensor) -> float:
    """The block-diagonal Fisher estimate ``sum_x (sum_{i removed} g_i(x))^2`` of one layer's removed set."""
    return float(grads.double()[:, ~kept].sum(dim=1).pow(2).sum())


def rearrange_masks(
    masks: SubNetworkMasks, head_grads: torch.Tensor | None, unit_grads: torch.Tensor | None
) -> SubNetworkMasks:
    """Rearrange heads and/or units of every layer (``None`` gradients: leave that kind as it is)."""
    heads, units = masks.heads.clone(), masks.units.clone()
    for layer in range(heads.shape[0]):
        if head_grads is not None:
            heads[layer] = rearrange_layer(masks.heads[layer], head_grads[:, layer])
        if unit_grads is not None:
            units[layer] = rearrange_layer(masks.units[layer], unit_grads[:, layer])
    return SubNetworkMasks(heads=heads, units=units)
