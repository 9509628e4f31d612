"""Task metrics with scikit-learn and scipy; every score is finite, so every error is too.

``compute_metrics`` turns logits (or predictions) into the task's metrics, its ``main`` metric and
``error = 1 - main``. Degenerate inputs (a constant prediction or label) score 0 correlation instead of NaN.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from benchmarks.tasks.registry import TaskSpec

Metric = Callable[[np.ndarray, np.ndarray], float]


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of exact matches."""
    return float(accuracy_score(labels, predictions))


def f1(predictions: np.ndarray, labels: np.ndarray, pos_label: int = 1) -> float:
    """F1 of the positive class (``pos_label``, class 1 by default); 0 when it is never predicted nor true."""
    return float(f1_score(labels, predictions, pos_label=pos_label, average="binary", zero_division=0.0))


def mcc(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Matthews correlation; 0 when predictions or labels are constant."""
    if _is_constant(predictions) or _is_constant(labels):
        return 0.0
    return float(matthews_corrcoef(labels, predictions))


def _is_constant(values: np.ndarray) -> bool:
    return bool(np.all(values == values.flat[0]))


def _correlation(statistic: Callable[..., Any]) -> Metric:
    """A correlation metric that scores 0 for constant or non-finite inputs instead of NaN."""

    def metric(predictions: np.ndarray, labels: np.ndarray) -> float:
        predictions, labels = predictions.astype(np.float64), labels.astype(np.float64)
        if len(labels) < 2 or not (np.isfinite(predictions).all() and np.isfinite(labels).all()):
            return 0.0
        if _is_constant(predictions) or _is_constant(labels):
            return 0.0
        value = float(statistic(predictions, labels)[0])
        return value if np.isfinite(value) else 0.0

    return metric


pearson = _correlation(stats.pearsonr)
pearson.__doc__ = "Pearson correlation; 0 for constant or non-finite inputs."
spearman = _correlation(stats.spearmanr)
spearman.__doc__ = "Spearman rank correlation; 0 for constant or non-finite inputs."

METRICS: dict[str, Metric] = {
    "accuracy": accuracy,
    "f1": f1,
    "mcc": mcc,
    "pearson": pearson,
    "spearman": spearman,
}


def _to_numpy(values: Any) -> np.ndarray:
    """NumPy array of a list, array or (any-device, any-dtype) torch tensor."""
    if hasattr(values, "detach"):
        values = values.detach().float().cpu().numpy() if values.is_floating_point() else values.detach().cpu().numpy()
    return np.asarray(values)


def predictions_from_logits(spec: TaskSpec, predictions_or_logits: Any) -> np.ndarray:
    """Class ids (argmax over the last axis of logits) or regression scores (squeezed)."""
    values = _to_numpy(predictions_or_logits)
    if spec.is_regression:
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim != 1:
            raise ValueError(f"task {spec.name!r}: regression outputs must be [n] or [n, 1], got {values.shape}")
        return values.astype(np.float64)
    if values.ndim == 2:
        return values.argmax(axis=-1)
    if values.ndim != 1:
        raise ValueError(f"task {spec.name!r}: expected predictions [n] or logits [n, classes], got {values.shape}")
    return values.astype(np.int64)


def compute_metrics(spec: TaskSpec, predictions_or_logits: Any, labels: Any) -> dict[str, float]:
    """All of the task's metrics, plus ``main`` (its main metric) and ``error = 1 - main``."""
    predictions = predictions_from_logits(spec, predictions_or_logits)
    labels = _to_numpy(labels).reshape(-1)
    if len(labels) == 0:
        raise ValueError(f"task {spec.name!r}: cannot score zero examples")
    if len(predictions) != len(labels):
        raise ValueError(f"task {spec.name!r}: {len(predictions)} predictions for {len(labels)} labels")
    if not spec.is_regression:
        labels = labels.astype(np.int64)
    scores = {name: f1(predictions, labels, pos_label=spec.positive_label) if name == "f1"
              else METRICS[name](predictions, labels) for name in spec.metrics}
    scores["main"] = scores[spec.main_metric]
    scores["error"] = 1.0 - scores["main"]
    return scores


def metrics_fn(spec: TaskSpec) -> Callable[..., dict[str, float]]:
    """``compute_metrics`` bound to ``task``, as :func:`supernet.evaluation.evaluate` wants it."""
    return functools.partial(compute_metrics, spec)


def constant_predictor_metrics(spec: TaskSpec, train_labels: Any, eval_labels: Any) -> dict[str, float]:
    """Metrics of the constant predictor: the training majority class, or the training mean score.

    The floor any trained (sub-)network must beat: a network scoring this has learned nothing of its input.
    """
    train, labels = _to_numpy(train_labels).reshape(-1), _to_numpy(eval_labels).reshape(-1)
    if len(train) == 0:
        raise ValueError(f"task {spec.name!r}: no training labels to take the constant prediction from")
    if spec.is_regression:
        constant = np.full(len(labels), float(np.mean(train)))
    else:
        values, counts = np.unique(train.astype(np.int64), return_counts=True)
        constant = np.full(len(labels), int(values[np.argmax(counts)]), dtype=np.int64)
    return compute_metrics(spec, constant, labels)
