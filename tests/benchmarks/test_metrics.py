"""Metric values checked against numbers worked out by hand (in the comments), and degenerate inputs."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmarks.tasks.custom import custom_task
from benchmarks.tasks.metrics import (
    METRICS,
    accuracy,
    compute_metrics,
    f1,
    mcc,
    pearson,
    predictions_from_logits,
    spearman,
)
from benchmarks.tasks.registry import get_task

# Binary example: predictions [1, 1, 0, 1, 0] against labels [1, 0, 0, 1, 1]
# TP = 2 (positions 0, 3), FP = 1 (1), TN = 1 (2), FN = 1 (4).
PREDS = np.array([1, 1, 0, 1, 0])
LABELS = np.array([1, 0, 0, 1, 1])


def test_accuracy_by_hand():
    assert accuracy(PREDS, LABELS) == pytest.approx(3 / 5)  # 3 of 5 right
    assert accuracy(np.array([1, 0, 1, 1]), np.array([1, 0, 0, 1])) == pytest.approx(0.75)


def test_f1_by_hand():
    # precision = 2 / 3, recall = 2 / 3, F1 = 2 / 3
    assert f1(PREDS, LABELS) == pytest.approx(2 / 3)
    # precision = 1 / 1, recall = 1 / 3, F1 = 2 * 1 * (1/3) / (4/3) = 1 / 2
    assert f1(np.array([1, 0, 0, 0]), np.array([1, 1, 1, 0])) == pytest.approx(0.5)


def test_mcc_by_hand():
    # (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (2 - 1) / sqrt(3 * 3 * 2 * 2) = 1 / 6
    assert mcc(PREDS, LABELS) == pytest.approx(1 / 6)
    assert mcc(1 - LABELS, LABELS) == pytest.approx(-1.0)


def test_pearson_by_hand():
    # x = [1, 2, 3], y = [1, 2, 4]: sum dx*dy = 3, sum dx^2 = 2, sum dy^2 = 42/9 -> r = 9 / sqrt(84)
    assert pearson(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0])) == pytest.approx(9 / math.sqrt(84))


def test_spearman_by_hand():
    # ranks [1, 2, 3, 4] vs [1, 3, 2, 4]: sum d^2 = 2 -> rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert spearman(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 2.0, 4.0])) == pytest.approx(0.8)
    # A monotone but non-linear relation has rank correlation 1.
    assert spearman(np.array([1.0, 2.0, 3.0]), np.array([1.0, 10.0, 1000.0])) == pytest.approx(1.0)


def test_degenerate_inputs_are_finite():
    constant = np.zeros(4, dtype=np.int64)
    labels = np.array([0, 1, 1, 0])
    assert mcc(constant, labels) == 0.0
    assert f1(constant, labels) == 0.0  # no positive prediction
    scores = np.array([0.1, 0.7, 0.3, 0.9])
    assert spearman(np.full(4, 2.5), scores) == 0.0
    assert pearson(np.full(4, 2.5), scores) == 0.0
    assert spearman(scores, np.full(4, 2.5)) == 0.0  # constant labels
    assert pearson(np.array([np.nan, 1.0, 2.0, 3.0]), scores) == 0.0  # a diverged regression head
    assert spearman(np.array([1.0]), np.array([2.0])) == 0.0  # one example


def test_metric_registry_is_complete():
    assert set(METRICS) == {"accuracy", "f1", "mcc", "pearson", "spearman"}


def test_compute_metrics_cola_from_logits():
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0], [0.5, 0.2]])  # argmax -> [0, 1, 0, 0]
    labels = [0, 1, 1, 0]
    # TP = 1, TN = 2, FP = 0, FN = 1: mcc = 2 / sqrt(1 * 2 * 2 * 3) = 1 / sqrt(3)
    scores = compute_metrics(get_task("cola"), logits, labels)
    assert set(scores) == {"mcc", "accuracy", "main", "error"}
    assert scores["mcc"] == pytest.approx(1 / math.sqrt(3))
    assert scores["accuracy"] == pytest.approx(0.75)
    assert scores["main"] == scores["mcc"]
    assert scores["error"] == pytest.approx(1 - 1 / math.sqrt(3))


def test_compute_metrics_mrpc_main_is_f1():
    scores = compute_metrics(get_task("mrpc"), PREDS, LABELS)
    assert scores == pytest.approx({"f1": 2 / 3, "accuracy": 0.6, "main": 2 / 3, "error": 1 / 3})


def test_compute_metrics_stsb_from_regression_logits():
    logits = torch.tensor([[1.0], [3.0], [2.0], [4.0]])
    labels = torch.tensor([1.0, 2.0, 3.0, 4.0])
    # ranks [1, 3, 2, 4] vs [1, 2, 3, 4]: rho = 0.8; Pearson: sum dx*dy = 4, sums of squares 5 and 5 -> 0.8
    scores = compute_metrics(get_task("stsb"), logits, labels)
    assert scores == pytest.approx({"spearman": 0.8, "pearson": 0.8, "main": 0.8, "error": 0.2})
    constant = compute_metrics(get_task("stsb"), torch.full((4, 1), 3.0), labels)
    assert constant["error"] == 1.0 and math.isfinite(constant["pearson"])


def test_compute_metrics_accuracy_tasks_and_tensors():
    logits = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]], dtype=torch.bfloat16)
    assert compute_metrics(get_task("rte"), logits, [1, 1, 1]) == pytest.approx(
        {"accuracy": 2 / 3, "main": 2 / 3, "error": 1 / 3}
    )
    swag_logits = np.array([[0.0, 1.0, 0.0, 0.0], [5.0, 1.0, 0.0, 2.0]])  # picks endings 1 and 0
    assert compute_metrics(get_task("swag"), swag_logits, [1, 3])["error"] == pytest.approx(0.5)
    assert compute_metrics(get_task("mnli"), np.array([0, 1, 2, 2]), np.array([0, 1, 2, 1]))["accuracy"] == 0.75


def test_compute_metrics_custom_task(tmp_path):
    (tmp_path / "d.csv").write_text("t,y\na,0\nb,1\n")
    spec = custom_task("c", [tmp_path / "d.csv", tmp_path / "d.csv"], "t", "y", main_metric="mcc")
    scores = compute_metrics(spec, PREDS, LABELS)
    assert scores["main"] == pytest.approx(1 / 6) and scores["f1"] == pytest.approx(2 / 3)


def test_predictions_from_logits_shapes():
    assert predictions_from_logits(get_task("rte"), np.array([[0.0, 1.0], [2.0, 1.0]])).tolist() == [1, 0]
    assert predictions_from_logits(get_task("stsb"), np.array([[1.5], [2.5]])).tolist() == [1.5, 2.5]
    with pytest.raises(ValueError, match=r"regression outputs must be \[n\] or \[n, 1\]"):
        predictions_from_logits(get_task("stsb"), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="expected predictions"):
        predictions_from_logits(get_task("rte"), np.zeros((2, 2, 2)))


def test_compute_metrics_bad_input():
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        compute_metrics(get_task("rte"), [0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="zero examples"):
        compute_metrics(get_task("rte"), np.zeros(0), np.zeros(0))
    with pytest.raises(ValueError, match="unknown task 'glue'"):
        compute_metrics(get_task("glue"), [0], [0])
