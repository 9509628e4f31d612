"""Retraining-free pruning (Kwon et al., 2022): one stage per module, composed in :mod:`.pipeline`."""
from baselines.pruning.rfp.fisher import diagonal_fisher, fisher_gradients
from baselines.pruning.rfp.mask_search import MacCosts, search_masks
from baselines.pruning.rfp.pipeline import TEACHERS, RFPConfig, RFPResult, pruned_model, retraining_free_prune
from baselines.pruning.rfp.rearrange import rearrange_layer, rearrange_masks, removal_loss
from baselines.pruning.rfp.rescale import RescaleConfig, RescaleResult, reconstruction_errors, rescale_masks

__all__ = [
    "MacCosts",
    "RFPConfig",
    "RFPResult",
    "RescaleConfig",
    "RescaleResult",
    "TEACHERS",
    "diagonal_fisher",
    "fisher_gradients",
    "pruned_model",
    "rearrange_layer",
    "rearrange_masks",
    "reconstruction_errors",
    "removal_loss",
    "rescale_masks",
    "retraining_free_prune",
    "search_masks",
]
