"""The main job end to end on a tiny model: super-network, search, extraction, latency and report."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from benchmarks.cli import run_command as main  # raises, so a failure shows its traceback
from benchmarks.perf.latency import measure_latency

pytestmark = pytest.mark.usefixtures("one_thread")


def test_demo_end_to_end_on_tiny_model(tiny_bert_dir, glue_dir, tmp_path):
    out = tmp_path / "demo"
    assert main([
        "demo", "--model", str(tiny_bert_dir), "--task", "rte", "--data-dir", str(glue_dir), "--output-dir",
        str(out), "--max-train-samples", "32", "--max-valid-samples", "32", "--num-samples", "6",
        "--threads", "1", "--device", "cpu", "--precision", "bf16", "--no-progress",
    ]) == 0
    results = pd.read_csv(out / "search" / "results.csv")
    assert len(results) == 6 and results["pareto"].any()
    exported = json.loads((out / "models" / "export.json").read_text())["models"]
    assert len(exported) == int(results["pareto"].sum())
    latency = pd.read_csv(out / "models" / "latency.csv")
    # every exported model was timed, and its measured parameter count is the row's
    assert sorted(latency["name"]) == sorted(m["name"] for m in exported)
    by_name = {m["name"]: m for m in exported}
    for row in latency.itertuples():
        assert row.params == by_name[row.name]["params"]
        assert row.measured_latency_ms > 0 and row.measured_latency_fraction > 0
        assert row.predicted_latency_ms > 0  # the demo's latency table predicts every exported model
    assert results["latency_ms"].notna().all() and (results["latency_fraction"] <= 1 + 1e-9).all()
    setting = json.loads((out / "models" / "export.json").read_text())["latency_setting"]
    assert setting["precision"] == "bf16" and setting["batch_size"] == 1 and setting["full_network_ms"] > 0
    # every stage ran in the precision asked for, and says so
    assert json.loads((out / "train" / "metrics.json").read_text())["precision"] == "bf16"
    assert set(results["precision"]) == {"bf16"}
    report = (out / "report" / "report.md").read_text()
    assert "rte" in report and "## Extracted models" in report
    assert "Extracted models" in (out / "report" / "report.html").read_text()
    for name in by_name:
        assert name in report


def test_measure_latency_counts_examples_and_rejects_bad_input():
    model = torch.nn.Module()
    model.lin = torch.nn.Linear(4, 2)
    model.forward = lambda input_ids, **_: model.lin(input_ids.float())
    batches = [{"input_ids": torch.ones(3, 4, dtype=torch.long), "labels": torch.zeros(3)}] * 2
    result = measure_latency(model, batches, warmup=0, repeats=2)
    assert result.batch_size == 3 and result.num_batches == 2
    assert result.examples_per_s == pytest.approx(6 / result.median_s_per_pass)
    assert result.ms_per_example == pytest.approx(1000 * result.median_s_per_pass / 6)
    with pytest.raises(ValueError, match="at least one batch"):
        measure_latency(model, [])
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        measure_latency(model, batches, repeats=0)
