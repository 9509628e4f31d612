"""The latency model: predictions from a table by hand, shape checks, files."""
from __future__ import annotations

import json

import pytest
import torch

from search_spaces.latency import LatencySettingRecord, LatencyTable, shape_record
from search_spaces.masks import SubNetworkMasks
from search_spaces.shape import ModelShape

SHAPE = ModelShape(model_type="bert", num_layers=2, num_heads=3, head_dim=4, hidden_size=12, intermediate_size=8,
                   vocab_size=50, max_position_embeddings=16, type_vocab_size=2)
SETTING = LatencySettingRecord(device="cpu", device_name="test cpu", threads=1, precision="bf16", batch_size=1,
                               seq_len=128, torch="2.13.0", measured_at="2026-12-06T00:00:00+00:00", repeats=5,
                               warmup=1)


def table(**changes) -> LatencyTable:
    values = dict(model="tiny", shape=shape_record(SHAPE), setting=SETTING, fixed_ms=1.0,
                  attention_ms={1: 0.5, 2: 0.7, 3: 1.0}, ffn_units=(4, 8), ffn_ms=(0.4, 1.2), full_ms=5.5)
    return LatencyTable(**{**values, **changes})


def masks(heads: list[list[int]], units: list[list[int]]) -> SubNetworkMasks:
    return SubNetworkMasks(heads=torch.tensor(heads, dtype=torch.bool), units=torch.tensor(units, dtype=torch.bool))


def test_prediction_adds_fixed_attention_and_interpolated_ffn_costs():
    t = table()
    # layer 0: heads {0, 2} (2 heads: 0.7) and 6 units (between 4 and 8: 0.8); layer 1: nothing
    sub = masks([[1, 0, 1], [0, 0, 0]], [[1, 1, 1, 0, 1, 1, 1, 0], [0] * 8])
    assert t.predict_ms(SHAPE, sub) == pytest.approx(1.0 + 0.7 + 0.8)
    # below the grid the first point scales down to zero units: 2 units -> 0.2
    assert t.ffn(2) == pytest.approx(0.2) and t.ffn(0) == 0.0 and t.attention(0) == 0.0
    full = 1.0 + 2 * (1.0 + 1.2)
    assert t.predict_ms(SHAPE, None) == pytest.approx(full) == t.full_prediction_ms()
    assert t.latency_fraction(SHAPE, sub) == pytest.approx(2.5 / full)
    # which heads and units are kept does not matter, only how many per layer
    other = masks([[0, 1, 1], [0, 0, 0]], [[0, 1, 1, 1, 1, 1, 1, 0], [0] * 8])
    assert t.predict_ms(SHAPE, other) == t.predict_ms(SHAPE, sub)


def test_a_table_of_another_shape_is_refused():
    other = ModelShape(**{**SHAPE.__dict__, "num_heads": 4, "head_dim": 3})
    with pytest.raises(ValueError, match="another model shape.*num_heads 3 in the table, 4 in the model"):
        table().predict_ms(other, None)


def test_incomplete_tables_are_refused():
    with pytest.raises(ValueError, match="1..3 heads"):
        table(attention_ms={1: 0.5, 3: 1.0})
    with pytest.raises(ValueError, match="run from >= 1 to 8 units"):
        table(ffn_units=(4, 6), ffn_ms=(0.4, 0.6))
    with pytest.raises(ValueError, match="increasing"):
        table(ffn_units=(8, 4), ffn_ms=(0.4, 1.2))


def test_file_round_trip_and_bad_files_are_named(tmp_path):
    path = tmp_path / "table.json"
    path.write_text(json.dumps(table().to_dict()))
    again = LatencyTable.read(path)
    assert again == table()
    assert "bf16" in again.describe() and "batch 1 x 128" in again.describe()
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**table().to_dict(), "format": 99}))
    with pytest.raises(ValueError, match="broken.json is not a valid latency table"):
        LatencyTable.read(broken)
    with pytest.raises(FileNotFoundError, match="plm-nas latency-table"):
        LatencyTable.read(tmp_path / "missing.json")
