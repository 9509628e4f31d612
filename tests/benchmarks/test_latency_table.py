"""``plm-nas latency-table`` and searching for latency, end to end on a tiny model."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks.cli import main as cli
from benchmarks.cli import run_command as main  # raises, so a failure shows its traceback
from search_spaces import get_search_space
from search_spaces.latency import LatencyTable
from supernet.loading import load_model, model_shape

from conftest import save_tiny_bert, train_tiny_supernet

pytestmark = pytest.mark.usefixtures("one_thread")
QUICK = ["--threads", "1", "--precision", "fp32", "--repeats", "2", "--warmup", "0"]


@pytest.fixture(scope="module")
def table_path(tiny_bert_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("latency") / "table.json"
    assert main(["latency-table", "--model", str(tiny_bert_dir), "--out", str(path), "--unit-step", "4",
                 "--check", "6", "--seq-len", "16", *QUICK]) == 0
    return path


def test_the_table_records_its_setting_and_covers_every_head_and_unit_count(table_path, tiny_bert_dir):
    table = LatencyTable.read(table_path)
    shape = model_shape(load_model(str(tiny_bert_dir)))
    table.check_shape(shape)
    assert sorted(table.attention_ms) == [1, 2, 3, 4] and table.ffn_units == (4, 8, 12, 16)
    setting = table.setting
    assert (setting.device, setting.threads, setting.precision, setting.batch_size, setting.seq_len) == (
        "cpu", 1, "fp32", 1, 16)
    assert setting.torch and setting.measured_at and setting.device_name
    assert table.fixed_ms > 0 and table.full_ms > 0  # a tiny model's timings are noise; MiniLM's: benchmarks/
    assert table.notes["cells"] == 1 + 1 + 4 + 4  # fixed, full, 4 head counts, 4 unit counts
    accuracy = pd.read_csv(table_path.with_name("table.accuracy.csv"))
    assert len(accuracy) == 6 and set(accuracy["space"]) <= {"small", "medium", "layer", "large"}
    assert np.allclose(accuracy["relative_error"], (accuracy["predicted_ms"] - accuracy["measured_ms"])
                       / accuracy["measured_ms"])
    assert set(table.notes["accuracy"]) == {"sub_networks", "spearman", "median_absolute_error", "max_absolute_error"}


def test_search_for_latency_records_predicted_latency_and_fronts_on_it(table_path, tiny_bert_dir, glue_dir,
                                                                        tmp_path):
    supernet = train_tiny_supernet(tmp_path / "sn", tiny_bert_dir, glue_dir, "medium", 24)
    out = tmp_path / "search"
    assert main(["search", "--supernet", str(supernet), "--output-dir", str(out), "--num-samples", "8",
                 "--size-objective", "latency_fraction", "--latency-table", str(table_path), "--threads", "1",
                 "--max-test-samples", "24", "--no-progress"]) == 0
    frame = pd.read_csv(out / "results.csv")
    table = LatencyTable.read(table_path)
    space = get_search_space("medium", model_shape(load_model(str(supernet / "supernet"))))
    for row in frame.itertuples():
        masks = space.to_masks(json.loads(row.config))
        assert row.latency_ms == pytest.approx(table.predict_ms(space.shape, masks))
        assert row.latency_fraction == pytest.approx(row.latency_ms / table.full_prediction_ms())
    assert set(frame["size_objective"]) == {"latency_fraction"}
    # the front is on (validation error, latency fraction)
    from benchmarks.results import pareto_mask

    assert frame["pareto"].tolist() == pareto_mask(frame["valid_error"], frame["latency_fraction"])
    # a MAC search with the table still records the predicted latency
    macs = tmp_path / "macs"
    assert main(["search", "--supernet", str(supernet), "--output-dir", str(macs), "--num-samples", "4",
                 "--size-objective", "mac_fraction", "--latency-table", str(table_path), "--threads", "1",
                 "--max-test-samples", "24", "--no-progress"]) == 0
    assert pd.read_csv(macs / "results.csv")["latency_ms"].notna().all()


def test_latency_needs_a_table_of_this_model(table_path, tiny_bert_dir, glue_dir, tmp_path, capsys):
    supernet = train_tiny_supernet(tmp_path / "sn", tiny_bert_dir, glue_dir, "small", 24)
    common = ["search", "--supernet", str(supernet), "--num-samples", "2", "--threads", "1", "--no-progress"]
    assert cli([*common, "--output-dir", str(tmp_path / "a"), "--size-objective", "latency_fraction"]) == 2
    assert "needs --latency-table" in capsys.readouterr().err
    other = save_tiny_bert(tmp_path / "other", num_hidden_layers=3)
    other_table = tmp_path / "other.json"
    assert main(["latency-table", "--model", str(other), "--out", str(other_table), "--unit-step", "8",
                 "--seq-len", "8", *QUICK]) == 0
    assert cli([*common, "--output-dir", str(tmp_path / "b"), "--size-objective", "latency_fraction",
                "--latency-table", str(other_table)]) == 2
    assert "another model shape (num_layers 3 in the table, 2 in the model)" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert cli(["latency-table", "--model", str(tiny_bert_dir), "--out", str(tmp_path / "t.json"), "--clock", "cpu",
                "--threads", "2"]) == 2
    assert "--clock cpu measures latency only with --threads 1" in capsys.readouterr().err
