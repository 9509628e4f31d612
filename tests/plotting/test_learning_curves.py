"""Learning curves of a super-network's probe sub-networks, from its metrics.json alone."""
from __future__ import annotations

import json

import pytest

from plotting.learning_curves import (
    is_supernet_run,
    learning_curve_table,
    probe_curves,
    probes_not_above,
    read_supernet_metrics,
)
from plotting.report import write_report

PROBES = [
    {"name": "full", "encoder_mac_fraction": 1.0, "config": {}},
    {"name": "mac50", "encoder_mac_fraction": 0.5, "config": {}},
    {"name": "smallest", "encoder_mac_fraction": 0.005, "config": {}},
]


def supernet_run(folder, epochs=((0.61, 0.42, 0.1), (0.83, 0.79, 0.12))):
    folder.mkdir(parents=True, exist_ok=True)
    history = [{"epoch": i + 1, **{f"valid_{p['name']}_main": v for p, v in zip(PROBES, values)}}
               for i, values in enumerate(epochs)]
    metrics = {"task": "stsb", "main_metric": "spearman", "strategy": "sandwich", "search_space": "small",
               "strategy_options": {"full_warmup": 0.3}, "probes": PROBES, "history": history,
               "constant": {"valid": {"main": 0.0}, "test": {"main": 0.0}}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_probe_curves_are_tidy_and_the_table_orders_probes_by_size(tmp_path):
    metrics = read_supernet_metrics(supernet_run(tmp_path / "sn"))
    curves = probe_curves(metrics)
    assert len(curves) == 6
    assert curves.set_index(["epoch", "probe"])["main"][(2, "mac50")] == 0.79
    table = learning_curve_table(curves)
    assert list(table.columns) == ["full", "mac50", "smallest"]
    assert table.loc[1].tolist() == [0.61, 0.42, 0.1]


def test_report_of_a_supernet_folder_draws_its_learning_curves(tmp_path):
    folder = supernet_run(tmp_path / "sn")
    assert is_supernet_run(folder) and not is_supernet_run(tmp_path)
    path = write_report([folder], tmp_path / "report")
    text = path.read_text()
    assert "Validation spearman of fixed probe sub-networks" in text
    assert "| 2 | 0.8300 | 0.7900 | 0.1200 |" in text
    assert "constant predictor scores 0.0000" in text
    assert "After epoch 2 all 3 probes score above the constant predictor." in text
    assert list((tmp_path / "report" / "figures").glob("learning_curves_*.png"))


def test_the_report_names_the_probes_left_at_the_constant_predictor(tmp_path):
    # after epoch 2 the smallest probe scores -0.01 and mac50 exactly the constant's 0.0: neither is lifted
    curves = probe_curves(read_supernet_metrics(supernet_run(tmp_path / "sn", ((0.6, 0.1, 0.05), (0.8, 0.0, -0.01)))))
    assert probes_not_above(learning_curve_table(curves), 0.0) == ["mac50", "smallest"]
    assert probes_not_above(learning_curve_table(curves), -0.5) == []
    text = write_report([tmp_path / "sn"], tmp_path / "report").read_text()
    assert ("After epoch 2, 1 of 3 probes scores above the constant predictor; not above it: mac50 (50% MACs), "
            "smallest (0.5% MACs).") in text


def test_metrics_without_probes_are_refused_naming_the_file(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"history": []}))
    with pytest.raises(ValueError, match="metrics.json records no probe sub-networks"):
        read_supernet_metrics(tmp_path)
