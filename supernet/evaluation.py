"""Scoring a model, or one sub-network of a super-network, over a data loader without gradients."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import torch

from search_spaces.masks import SubNetworkMasks
from supernet.precision import Precision
from supernet.strategies.losses import is_regression as _is_regression

MetricsFn = Callable[[np.ndarray, np.ndarray], Mapping[str, float]]


@dataclass
class EvaluationResult:
    """Predictions (class ids, or scores for regression), labels, raw logits and the metrics over a split."""

    predictions: np.ndarray
    labels: np.ndarray
    logits: np.ndarray
    metrics: dict[str, float] = field(default_factory=dict)


def _device_of(model: torch.nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def model_is_regression(model: torch.nn.Module) -> bool:
    """Whether a HF model or a super-network predicts one score (regression) rather than classes."""
    inner = getattr(model, "model", model)
    head = "multiple-choice" if "MultipleChoice" in type(inner).__name__ else "sequence-classification"
    return _is_regression(inner.config, head)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    loader: Any,
    masks: SubNetworkMasks | None = None,
    metrics_fn: MetricsFn | None = None,
    device: torch.device | str | None = None,
    precision: Precision | None = None,
) -> EvaluationResult:
    """Run ``model`` in eval mode over ``loader``; for a super-network, sub-network ``masks`` (``None``: full).

    ``metrics_fn(predictions, labels)`` (for example ``partial(compute_metrics, task)``) fills ``metrics``.
    Forward passes run under ``precision``'s autocast (``None``: float32); logits are kept in float32.
    Predictions come back in the dataset's order even when the loader batches by length
    (:class:`benchmarks.tasks.loaders.LengthSortedSampler` or any sampler with an ``order``).
    The model's train/eval mode and active sub-network are restored afterwards.
    """
    device = torch.device(device) if device is not None else _device_of(model)
    regression = model_is_regression(model)
    was_training = model.training
    is_supernet = hasattr(model, "set_sub_network")
    if masks is not None and not is_supernet:
        raise TypeError(f"masks need a SuperNetwork, got a {type(model).__name__}")
    previous = getattr(model, "active_masks", None)
    if is_supernet:
        model.set_sub_network(masks)
    model.eval()
    all_logits: list[np.ndarray] = []
    all_labels: list[np.ndarray] = []
    try:
        for batch in loader:
            labels = batch["labels"]
            inputs = {key: value.to(device) for key, value in batch.items() if key != "labels"}
            with precision.autocast(model) if precision is not None else contextlib.nullcontext():
                logits = model(**inputs).logits
            logits = logits.float().cpu()
            all_logits.append(logits.numpy())
            all_labels.append(labels.cpu().numpy())
    finally:
        if is_supernet:
            model.set_sub_network(previous)
        model.train(was_training)
    if not all_logits:
        raise ValueError("the evaluation loader is empty")
    logits_array = np.concatenate(all_logits)
    labels_array = np.concatenate(all_labels)
    order = getattr(getattr(loader, "sampler", None), "order", None)
    if order is not None and len(order) == len(labels_array):  # back to the dataset's order
        restore = np.empty(len(order), dtype=np.int64)
        restore[np.asarray(order)] = np.arange(len(order))
        logits_array, labels_array = logits_array[restore], labels_array[restore]
    predictions = logits_array.reshape(-1) if regression else logits_array.argmax(axis=-1)
    metrics = dict(metrics_fn(predictions, labels_array)) if metrics_fn is not None else {}
    return EvaluationResult(predictions=predictions, labels=labels_array, logits=logits_array, metrics=metrics)
