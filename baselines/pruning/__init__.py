"""Structural pruning baselines: layer dropping, head pruning (Michel et al.) and retraining-free pruning (Kwon et al.).

Every method turns a fine-tuned model into :class:`~search_spaces.masks.SubNetworkMasks` (and, for
retraining-free pruning, scales folded into the weights) that :func:`supernet.extract.extract_sub_network`
makes into a real smaller model; ``plm-nas prune`` (:mod:`benchmarks.commands.prune`) evaluates them into the results table.
"""
from baselines.pruning.head_importance import head_importance, importance_from_gradients, normalise_per_layer
from baselines.pruning.head_prune import (
    HeadPruneConfig,
    HeadPruneStep,
    head_pruning_steps,
    iterative_head_pruning,
    prune_least_important,
)
from baselines.pruning.layer_drop import drop_top_layers, layer_drop_schedule
from baselines.pruning.masking import MaskGradients, fold_scales, gated, mask_gradients

__all__ = [
    "HeadPruneConfig",
    "HeadPruneStep",
    "MaskGradients",
    "drop_top_layers",
    "fold_scales",
    "gated",
    "head_importance",
    "head_pruning_steps",
    "importance_from_gradients",
    "iterative_head_pruning",
    "layer_drop_schedule",
    "mask_gradients",
    "normalise_per_layer",
    "prune_least_important",
]
