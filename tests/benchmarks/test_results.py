"""Results files: atomic writing, the Pareto flag, the metrics columns (also in files from before them)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.files import write_folder_atomic


def test_a_folder_save_that_fails_leaves_the_previous_folder(tmp_path):
    target = tmp_path / "best_model"

    def save(text: str):
        def fill(folder: Path) -> None:
            folder.mkdir()
            (folder / "a.txt").write_text(text)
            if text == "broken":
                raise RuntimeError("killed while saving")
            (folder / "b.txt").write_text(text)
        return fill

    write_folder_atomic(target, save("first"))
    with pytest.raises(RuntimeError):
        write_folder_atomic(target, save("broken"))
    assert {p.name: p.read_text() for p in target.iterdir()} == {"a.txt": "first", "b.txt": "first"}
    write_folder_atomic(target, save("second"))
    assert {p.name: p.read_text() for p in target.iterdir()} == {"a.txt": "second", "b.txt": "second"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best_model"]


def _pareto_by_definition(errors, sizes):
    """The definition, pairwise: dominated by a better-or-equal point that is strictly better or comes first."""
    flags = []
    for i, (e, s) in enumerate(zip(errors, sizes)):
        flags.append(not any(
            e2 <= e and s2 <= s and (e2 < e or s2 < s or j < i)
            for j, (e2, s2) in enumerate(zip(errors, sizes)) if j != i
        ))
    return flags


def test_pareto_mask_equals_the_pairwise_definition_with_ties_and_nans():
    import numpy as np

    from benchmarks.results import pareto_mask

    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(0, 25))
        errors = rng.integers(0, 5, n).astype(float)  # few values: many ties and duplicates
        sizes = rng.integers(0, 5, n).astype(float)
        errors[rng.random(n) < 0.1] = np.nan
        assert pareto_mask(errors, sizes) == _pareto_by_definition(errors.tolist(), sizes.tolist())
    assert pareto_mask([0.2, 0.2, 0.1], [0.5, 0.5, 0.9]) == [True, False, True]  # the first of equal points


def test_report_takes_extra_sections_through_its_api(tmp_path):
    import pandas as pd

    from benchmarks.results import COLUMNS, write_atomic
    from plotting.document import Cell, Paragraph, Section, Table
    from plotting.report import write_report

    rows = [{**{c: "" for c in COLUMNS}, "run_id": "r", "kind": "weight-sharing", "method": "random_search",
             "task": "rte", "model": "m", "seed": 0, "config": "{}", "valid_error": e, "test_error": e,
             "params": 10, "param_fraction": f, "encoder_param_fraction": f, "macs": 1.0, "mac_fraction": f,
             "size_objective": "param_fraction", "runtime_s": float(i), "epoch": float("nan"), "pareto": True}
            for i, (e, f) in enumerate([(0.3, 1.0), (0.4, 0.5)])]
    write_atomic(pd.DataFrame(rows, columns=list(COLUMNS)), tmp_path / "run" / "results.csv")
    extra = Section("Extracted models", [Paragraph("measured here"), Table(["model"], [[Cell("subnet-00")]])])
    md = write_report(tmp_path / "run", tmp_path / "report", sections=[extra]).read_text()
    assert md.rstrip().endswith("| subnet-00 |") and "## Extracted models\n\nmeasured here" in md
    page = (tmp_path / "report" / "report.html").read_text()
    assert page.index("<h2>Extracted models</h2>") < page.index("<td>subnet-00</td>") < page.index("</body>")


def _row(**fields):
    from benchmarks.results import ResultRow

    values = dict(run_id="r", kind="baseline", method="rfp", task="mrpc", model="m", seed=0, config={"a": 1},
                  valid_error=0.2, params=10, param_fraction=1.0, encoder_param_fraction=1.0, macs=5.0,
                  mac_fraction=1.0, runtime_s=1.0)
    return ResultRow(**{**values, **fields})


def test_metrics_columns_round_trip_and_are_empty_where_not_measured(tmp_path):
    from benchmarks.results import COLUMNS, parse_metrics, read_results, rows_to_frame, task_metrics, write_atomic

    assert COLUMNS[-6:] == ("valid_metrics", "test_metrics", "precision", "latency_ms", "latency_fraction",
                            "objectives")
    scores = {"f1": 0.8345679012345679, "accuracy": 0.7401960784313726, "main": 0.8345679012345679,
              "error": 0.16543209876543208}
    assert task_metrics(scores) == {"f1": 0.8345679012345679, "accuracy": 0.7401960784313726}
    rows = [_row(valid_metrics=task_metrics(scores), test_error=0.3, test_metrics={"f1": 0.7, "accuracy": 0.6}),
            _row(valid_error=0.4, valid_metrics={"f1": 0.6, "accuracy": 0.5})]  # test not scored
    write_atomic(rows_to_frame(rows), tmp_path / "results.csv")
    frame = read_results(tmp_path / "results.csv")
    assert tuple(frame.columns) == COLUMNS
    assert [parse_metrics(cell) for cell in frame["valid_metrics"]] == [task_metrics(scores), {"f1": 0.6, "accuracy": 0.5}]
    assert list(json.loads(frame["valid_metrics"].iloc[0])) == ["f1", "accuracy"]  # the task's order, main first
    assert [parse_metrics(cell) for cell in frame["test_metrics"]] == [{"f1": 0.7, "accuracy": 0.6}, {}]
    assert frame["test_metrics"].iloc[1] == ""


def test_a_results_file_from_before_the_metrics_columns_loads_everywhere(tmp_path):
    import numpy as np

    from benchmarks.results import (
        COLUMNS,
        OPTIONAL_COLUMNS,
        best_epoch_rows,
        parse_metrics,
        read_results,
        rows_to_frame,
        with_metric,
        write_atomic,
    )

    old = rows_to_frame([_row(test_error=0.3), _row(valid_error=0.1, param_fraction=0.5)])
    old = old.drop(columns=list(OPTIONAL_COLUMNS))
    write_atomic(old, tmp_path / "old" / "results.csv")
    frame = read_results(tmp_path / "old" / "results.csv")
    assert tuple(frame.columns) == COLUMNS
    assert frame["valid_metrics"].tolist() == frame["test_metrics"].tolist() == frame["precision"].tolist() == ["", ""]
    assert frame["latency_ms"].isna().all() and frame["latency_fraction"].dtype == float
    assert [parse_metrics(cell) for cell in frame["valid_metrics"]] == [{}, {}]
    assert parse_metrics(np.nan) == parse_metrics(None) == {}
    assert len(best_epoch_rows(frame)) == 2 and with_metric(frame, "accuracy").empty
    write_atomic(rows_to_frame([_row(run_id="new", valid_metrics={"accuracy": 0.8})]), tmp_path / "new" / "results.csv")
    both = read_results(tmp_path)  # an old and a new file below one folder
    assert both["run_id"].tolist() == ["new", "r", "r"]
    assert [parse_metrics(cell) for cell in both["valid_metrics"]] == [{"accuracy": 0.8}, {}, {}]
    assert with_metric(both, "accuracy")["task"].tolist() == ["mrpc (accuracy)"]


def test_a_row_pickled_before_the_metrics_fields_unpickles_with_them_empty():
    import pickle

    from benchmarks.results import ResultRow

    row = _row(valid_metrics={"accuracy": 0.7})
    same = json.dumps(pickle.loads(pickle.dumps(row)).to_record()) == json.dumps(row.to_record())  # NaN-safe
    assert same and row.to_record()["valid_metrics"] == '{"accuracy": 0.7}'
    newer = ("valid_metrics", "test_metrics", "precision", "latency_ms", "latency_fraction", "objectives")
    state = {k: v for k, v in row.__dict__.items() if k not in newer}  # an older row
    old = ResultRow.__new__(ResultRow)
    old.__setstate__(state)
    assert old.valid_metrics == old.test_metrics == {} and old.to_record()["valid_metrics"] == ""
    assert old.precision == "" and np.isnan(old.latency_ms) and np.isnan(old.to_record()["latency_fraction"])
