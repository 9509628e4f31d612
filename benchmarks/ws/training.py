"""Training a weight-sharing super-network: probe sub-networks scored every epoch, and Fisher rewiring.

What ``plm-nas train-supernet`` runs beside the :class:`supernet.training.Trainer`: the validation of the probe
sub-networks after every epoch (learning curves of every size), their test scores, the constant predictor's
metrics, and the callback that reorders heads and units by importance when sub-networks join training.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from torch.utils.data import DataLoader, Subset

from baselines.pruning.rfp.fisher import fisher_importance
from benchmarks.finetuning import Setup, prefixed
from benchmarks.tasks.metrics import constant_predictor_metrics, metrics_fn
from search_spaces.masks import SubNetworkMasks
from supernet.evaluation import evaluate
from supernet.model import SuperNetwork
from supernet.probes import Probe
from supernet.rewire import RewireCallback
from supernet.strategies import SamplingStrategy, Strategy
from supernet.training import Trainer, TrainerCallback


def probe_masks(probes: Mapping[str, Probe]) -> dict[str, SubNetworkMasks | None]:
    """The masks of the probe sub-networks tracked during training, by probe name."""
    return {name: probe.masks for name, probe in probes.items()}


def constant_metrics(setup: Setup, split: str) -> dict[str, float]:
    """The constant predictor's metrics on ``split`` (training majority class or mean score)."""
    return constant_predictor_metrics(
        setup.task, setup.loaders["train"].dataset.labels, setup.loaders[split].dataset.labels
    )


class SubNetworkValidation(TrainerCallback):
    """Validation metrics of the probe sub-networks after every epoch, so learning curves show every size."""

    def __init__(self, setup: Setup, sub_networks: Mapping[str, SubNetworkMasks | None]) -> None:
        self.setup = setup
        self.sub_networks = dict(sub_networks)

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> dict[str, Any]:
        record = score_sub_networks(trainer.supernet, self.setup, self.sub_networks, "validation")
        errors = "  ".join(f"{name}={record[f'valid_{name}_error']:.4f}" for name in self.sub_networks)
        print(f"epoch {epoch}/{trainer.config.epochs}  validation error: {errors}", flush=True)
        return record


def score_sub_networks(
    supernet: SuperNetwork, setup: Setup, sub_networks: Mapping[str, SubNetworkMasks | None], split: str
) -> dict[str, float]:
    """``{prefix}_{name}_{metric}`` for every sub-network, ``prefix`` being ``valid`` or ``test``, scored in the run's
    precision."""
    prefix = "valid" if split == "validation" else split
    record: dict[str, float] = {}
    for name, masks in sub_networks.items():
        result = evaluate(supernet, setup.loaders[split], masks=masks, metrics_fn=metrics_fn(setup.task),
                          precision=setup.precision)
        record.update(prefixed(f"{prefix}_{name}", result))
    return record


def rewire_callback(setup: Setup, strategy: Strategy, total_steps: int, examples: int,
                    batch_size: int) -> RewireCallback:
    """Reorder heads and units by Fisher importance (on ``examples`` training examples) when sub-networks join."""
    train = setup.loaders["train"]
    sample = Subset(train.dataset, range(min(examples, len(train.dataset))))
    batches = list(DataLoader(sample, batch_size=batch_size, shuffle=False, collate_fn=train.collate_fn))
    at_step = math.ceil(strategy.full_warmup * total_steps) if isinstance(strategy, SamplingStrategy) else total_steps
    return RewireCallback(at_step, fisher_importance, batches)
