"""The report adapts to what it is given: one run (the main job's) gets its front, the sub-networks on it and how
much of the full network they keep, with the full network's test score taken from wherever the run has it;
methods to compare get the rank tables. A report that is refused leaves nothing behind."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.results import COLUMNS, write_atomic
from plotting.relative import relative_performance
from plotting.report import ReportSettings, write_report
from plotting.report_sections import main_metric_name
from plotting.unpruned import run_references

SETTINGS = ReportSettings(bootstrap_samples=20, grid_points=10)
RUN = "ws-sandwich-nsga2-small-rte-seed0"


def search_rows(rows: list[dict], run_id: str = RUN, kind: str = "weight-sharing", method: str = "nsga2",
                **extra: object) -> pd.DataFrame:
    """A search's results table: ``rows`` give mac_fraction, valid_error and test_error (NaN: not scored)."""
    records = []
    for i, row in enumerate(rows):
        valid, test = row["valid_error"], row.get("test_error", np.nan)
        records.append({
            "run_id": run_id, "kind": kind, "method": method, "searcher": method, "search_space": "small",
            "strategy": "sandwich", "task": "rte", "model": "minilm", "seed": 0, "config": json.dumps({"i": i}),
            "valid_error": valid, "test_error": test, "params": int(1000 * (1 + row["mac_fraction"])),
            "param_fraction": 0.5 + row["mac_fraction"] / 2, "encoder_param_fraction": row["mac_fraction"],
            "macs": 1e9 * row["mac_fraction"], "mac_fraction": row["mac_fraction"], "size_objective": "mac_fraction",
            "runtime_s": float(i + 1), "epoch": np.nan, "pareto": False,
            "valid_metrics": json.dumps({"accuracy": 1 - valid, "f1": 0.5}),
            "test_metrics": "" if np.isnan(test) else json.dumps({"accuracy": 1 - test, "f1": 0.5}),
            "precision": "fp32", "latency_ms": np.nan, "latency_fraction": np.nan, **extra,
        })
    return pd.DataFrame.from_records(records, columns=list(COLUMNS))


# four sub-networks; the full network is not among them (as in the main job, whose front it is rarely on)
FRONT = [
    dict(mac_fraction=0.8, valid_error=0.14, test_error=0.22),
    dict(mac_fraction=0.9, valid_error=0.16),  # dominated by the first: not on the front, not scored on test
    dict(mac_fraction=0.45, valid_error=0.18, test_error=0.28),
    dict(mac_fraction=0.2, valid_error=0.30, test_error=0.40),
]
PROBES = [{"name": "full", "encoder_mac_fraction": 1.0, "config": {}},
          {"name": "smallest", "encoder_mac_fraction": 0.1, "config": {}}]


def train_supernet_folder(folder: Path, test_full_error: float = 0.2) -> Path:
    """What train-supernet leaves for the report: metrics.json with probe curves and the full network's test."""
    (folder / "supernet").mkdir(parents=True)
    metrics = {"task": "rte", "main_metric": "accuracy", "strategy": "sandwich", "search_space": "small",
               "strategy_options": {}, "probes": PROBES,
               "history": [{"epoch": 1, "valid_full_main": 0.7, "valid_smallest_main": 0.55}],
               "constant": {"valid": {"main": 0.5}, "test": {"main": 0.52}},
               "test": {"test_full_error": test_full_error, "test_full_accuracy": 1 - test_full_error,
                        "test_full_main": 1 - test_full_error}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def search_folder(folder: Path, frame: pd.DataFrame, **arguments: object) -> Path:
    write_atomic(frame, folder / "results.csv")
    (folder / "run.json").write_text(json.dumps({"arguments": arguments}))
    return folder


def test_one_run_report_leads_with_its_front_and_keeps_the_full_network_from_its_supernet(tmp_path):
    train = train_supernet_folder(tmp_path / "train")
    search = search_folder(tmp_path / "search", search_rows(FRONT), supernet=str(train / "supernet"))
    md = write_report(search, tmp_path / "report", settings=SETTINGS).read_text()
    order = ["## Task rte", "figures/pareto_rte.png", "### Sub-networks on the front", "### Relative performance",
             "### Search progress", "## Super-network training"]
    positions = [md.index(text) for text in order]
    assert positions == sorted(positions), dict(zip(order, positions))
    for absent in ("Ranks", "Average rank", "Cross-task", "quantile normalisation maps", "boxplot", "NaN", "**"):
        assert absent not in md, absent
    # the front, largest first: fractions, validation and test accuracy, and test accuracy over the full network's
    # 0.80 (the super-network's test_full_error 0.2): 0.78 / 0.80 = 97.5%, 0.72 / 0.80 = 90.0%, 0.60 / 0.80 = 75.0%
    assert ("| parameters | fraction of params | fraction of MACs | validation accuracy | test accuracy | "
            "% of the full network |") in md
    assert "| 1,800 | 0.900 | 0.800 | 0.8600 | 0.7800 | 97.5 |" in md
    assert "| 1,450 | 0.725 | 0.450 | 0.8200 | 0.7200 | 90.0 |" in md
    assert "| 1,200 | 0.600 | 0.200 | 0.7000 | 0.6000 | 75.0 |" in md
    assert "0.8400" not in md  # the dominated sub-network is not listed
    assert f"the super-network's full network ({train / 'metrics.json'}), test accuracy 0.8000" in md
    # relative performance at 25/50/75% pruned: the best-validation sub-network within 75%, 50%, 25% of the MACs
    assert "| weight-sharing | nsga2 | 90.0 ± – | 90.0 ± – | 75.0 ± – |" in md
    figures = sorted(path.name for path in (tmp_path / "report" / "figures").glob("*.png"))
    assert figures == ["hypervolume_rte.png", f"learning_curves_{str(train).strip('/').replace('/', '_')}.png",
                       "pareto_rte.png", "relative_rte.png"]


def test_the_full_network_comes_from_the_runs_own_row_first_then_a_finetuned_model(tmp_path):
    train = train_supernet_folder(tmp_path / "train", test_full_error=0.5)
    with_full = [dict(mac_fraction=1.0, valid_error=0.1, test_error=0.25), *FRONT]
    own = search_folder(tmp_path / "own", search_rows(with_full), supernet=str(train / "supernet"))
    finetuned = tmp_path / "ft"
    (finetuned / "best_model").mkdir(parents=True)
    (finetuned / "metrics.json").write_text(json.dumps({"history": [], "test": {"main": 0.9, "error": 0.1,
                                                                                  "accuracy": 0.9}}))
    pruned = search_folder(tmp_path / "prune", search_rows(FRONT, run_id="prune-rfp-rte-seed0", kind="baseline",
                                                           method="rfp"),
                           finetuned=str(finetuned / "best_model"))
    found = run_references(own)
    found.update(run_references(pruned))
    # the own row (0.75) wins over the super-network's 0.5 in relative performance; the baseline has no own row
    assert found.values() == {RUN: pytest.approx(0.5), f"{RUN} (accuracy)": pytest.approx(0.5),
                              "prune-rfp-rte-seed0": 0.9, "prune-rfp-rte-seed0 (accuracy)": 0.9}
    frame = pd.concat([search_rows(with_full), search_rows(FRONT, run_id="prune-rfp-rte-seed0", kind="baseline",
                                                           method="rfp")], ignore_index=True)
    rel = relative_performance(frame, [0.5], run_references=found.values()).set_index("run_id")
    assert rel.loc[RUN, "relative_performance"] == pytest.approx(0.72 / 0.75)
    assert rel.loc["prune-rfp-rte-seed0", "relative_performance"] == pytest.approx(0.72 / 0.9)
    md = write_report(own, tmp_path / "report", settings=SETTINGS).read_text()
    assert "its own unpruned row, test accuracy 0.7500" in md and "| 96.0 |" in md


def test_two_methods_get_the_rank_tables_and_latency_shows_where_the_rows_have_it(tmp_path):
    one = search_rows(FRONT)
    other = search_rows(FRONT, run_id="ws-sandwich-morea-small-rte-seed0", method="morea",
                        latency_ms=3.25, latency_fraction=0.5)
    write_atomic(one, tmp_path / "a" / "results.csv")
    write_atomic(other, tmp_path / "b" / "results.csv")
    md = write_report([tmp_path / "a", tmp_path / "b"], tmp_path / "both", settings=SETTINGS).read_text()
    assert "## Average rank across tasks" in md and "### Ranks" in md and "## Cross-task tables" in md
    alone = write_report(tmp_path / "b", tmp_path / "alone", settings=SETTINGS).read_text()
    assert "| latency (ms, predicted) |" in alone and "| 0.800 | 3.25 | 0.8600 |" in alone
    assert "latency" not in write_report(tmp_path / "a", tmp_path / "plain", settings=SETTINGS).read_text()


def test_the_main_metric_is_read_from_the_rows_metrics():
    rows = search_rows(FRONT)
    assert main_metric_name(rows) == "accuracy"
    assert main_metric_name(rows.assign(valid_metrics="")) is None


def test_a_results_table_without_rows_is_refused(tmp_path):
    write_atomic(search_rows(FRONT).iloc[:0], tmp_path / "search" / "results.csv")
    with pytest.raises(ValueError, match="hold no rows"):
        write_report(tmp_path / "search", tmp_path / "report", settings=SETTINGS)
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("column, value, message", [
    ("size_objective", "params", "unknown size objective(s) 'params'"),
    ("kind", "pruning", "unknown kind(s) 'pruning'"),
    ("valid_error", "abc", "column valid_error holds text ('abc')"),
])
def test_a_report_of_rows_it_cannot_read_is_refused_and_leaves_nothing(tmp_path, column, value, message):
    frame = search_rows(FRONT).astype({column: object})
    frame.loc[1, column] = value
    write_atomic(frame, tmp_path / "search" / "results.csv")
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        write_report(tmp_path / "search", tmp_path / "report", settings=SETTINGS)
    assert not (tmp_path / "report").exists()


def test_a_report_that_fails_midway_removes_the_folder_it_made_but_not_one_it_was_given(tmp_path, monkeypatch):
    import plotting.report as report

    write_atomic(search_rows(FRONT), tmp_path / "search" / "results.csv")

    def broken(*args, **kwargs):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(report, "front_members_section", broken)
    with pytest.raises(RuntimeError, match="drawing failed"):
        write_report(tmp_path / "search", tmp_path / "new" / "deeper", settings=SETTINGS)
    assert not (tmp_path / "new").exists()
    (tmp_path / "given").mkdir()
    (tmp_path / "given" / "mine.txt").write_text("keep")
    with pytest.raises(RuntimeError):
        write_report(tmp_path / "search", tmp_path / "given", settings=SETTINGS)
    assert (tmp_path / "given" / "mine.txt").read_text() == "keep"


def test_a_secondary_metric_the_rows_do_not_record_is_refused(tmp_path):
    write_atomic(search_rows(FRONT), tmp_path / "search" / "results.csv")
    settings = ReportSettings(bootstrap_samples=20, grid_points=10, secondary_metrics=(("rte", "mcc"),))
    with pytest.raises(ValueError, match="rte:mcc: the rte rows record the metrics accuracy, f1"):
        write_report(tmp_path / "search", tmp_path / "report", settings=settings)
    assert not (tmp_path / "report").exists()
    recorded = ReportSettings(bootstrap_samples=20, grid_points=10, secondary_metrics=(("rte", "f1"), ("mrpc", "x")))
    assert write_report(tmp_path / "search", tmp_path / "report", settings=recorded).is_file()
