"""Statistics for comparing methods: confidence intervals, blocks, Friedman's and Nemenyi's tests, the report."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmarks.results import COLUMNS
from plotting.significance import block_of, block_table, confidence_interval, friedman, hypervolume_at


def test_confidence_interval_is_students_t_by_hand():
    values = [1.0, 2.0, 4.0]
    mean, low, high = confidence_interval(values)
    half = stats.t.ppf(0.975, 2) * np.std(values, ddof=1) / np.sqrt(3)
    assert mean == pytest.approx(7 / 3) and (low, high) == pytest.approx((7 / 3 - half, 7 / 3 + half))
    assert np.isnan(confidence_interval([3.0])[1]) and np.isnan(confidence_interval([])[0])


def test_blocks_pair_the_runs_of_every_method_with_the_same_task_seed_and_super_network():
    assert block_of("ws-sandwich-nsga2-small-mrpc-supernet1-seed3", "nsga2") == "ws-sandwich-*-small-mrpc-supernet1-seed3"
    assert block_of("ws-sandwich-random_search-small-mrpc-seed3", "random_search") == block_of(
        "ws-sandwich-ehvi-small-mrpc-seed3", "ehvi")
    assert block_of("nas-moasha-small-rte-seed0", "moasha") != block_of("nas-moasha-small-rte-seed1", "moasha")


def trajectories(blocks: int, values: dict[str, list[float]]) -> pd.DataFrame:
    """Two evaluations per run: 0.1 after the first, the given value after the second."""
    records = []
    for method, finals in values.items():
        for seed in range(blocks):
            run = f"ws-sandwich-{method}-small-rte-seed{seed}"
            for evaluation, hv in ((1, 0.1), (2, finals[seed])):
                records.append({"task": "rte", "kind": "weight-sharing", "method": method, "run_id": run,
                                "seed": seed, "evaluation": evaluation, "runtime_s": float(evaluation),
                                "hypervolume": hv})
    return pd.DataFrame.from_records(records)


def test_friedman_and_nemenyi_find_a_clearly_better_method_and_only_with_enough_blocks():
    rng = np.random.default_rng(0)
    good = list(0.9 + 0.01 * rng.random(8))
    bad = list(0.5 + 0.01 * rng.random(8))
    middle = list(0.7 + 0.01 * rng.random(8))
    values = hypervolume_at(trajectories(8, {"good": good, "middle": middle, "bad": bad}))
    table = block_table(values)
    assert table.shape == (8, 3)
    result = friedman(table)
    assert result.mean_ranks.to_dict() == {"bad": 3.0, "good": 1.0, "middle": 2.0}
    expected = stats.friedmanchisquare(table["bad"], table["good"], table["middle"])
    assert result.p_value == pytest.approx(expected.pvalue) and result.significant
    assert ("good", "bad") in result.different_pairs()  # 2 ranks apart over 8 blocks: beyond Nemenyi's CD
    assert ("good", "middle") not in result.different_pairs()  # 1 rank apart: within it
    # ranks that change from block to block: Friedman finds nothing, so no pair either, whatever Nemenyi says
    mixed = hypervolume_at(trajectories(6, {"a": [3, 2, 1, 3, 2, 1], "b": [2, 3, 2, 1, 1, 3],
                                            "c": [1, 1, 3, 2, 3, 2]}))
    unclear = friedman(block_table(mixed))
    assert not unclear.significant and unclear.different_pairs() == []
    early = hypervolume_at(trajectories(8, {"good": good, "bad": bad}), evaluations=1)
    assert (early["hypervolume"] == 0.1).all()
    assert friedman(block_table(hypervolume_at(trajectories(4, {"a": good, "b": bad})))) is None  # too few blocks
    incomplete = values[~((values["method"] == "bad") & values["block"].str.endswith("seed7"))]
    assert len(block_table(incomplete)) == 7  # a block lacking a method does not count


def test_the_report_compares_methods_with_enough_seeds(tmp_path):
    from plotting.report import write_report

    records = []
    rng = np.random.default_rng(1)
    for method, offset in (("good", 0.0), ("bad", 0.15), ("other", 0.05)):
        for seed in range(6):
            for i in range(10):
                size = float(rng.random())
                records.append({
                    "run_id": f"ws-sandwich-{method}-small-rte-seed{seed}", "kind": "weight-sharing", "method": method,
                    "searcher": method, "search_space": "small", "strategy": "sandwich", "task": "rte",
                    "model": "m", "seed": seed, "config": json.dumps({"i": i}),
                    "valid_error": 0.3 + offset + 0.2 * (1 - size) + 0.01 * rng.random(), "test_error": np.nan,
                    "params": 100, "param_fraction": size, "encoder_param_fraction": size, "macs": 1.0,
                    "mac_fraction": size, "size_objective": "mac_fraction", "runtime_s": float(i + 1),
                    "epoch": np.nan, "pareto": False, "valid_metrics": "", "test_metrics": "", "precision": "bf16",
                    "latency_ms": np.nan, "latency_fraction": np.nan})
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    frame.to_csv(tmp_path / "results.csv", index=False)
    report = write_report(tmp_path / "results.csv", tmp_path / "report").read_text()
    assert "## Statistical comparison" in report and "Friedman p =" in report
    assert (tmp_path / "report" / "figures" / "critical_difference_rte_end.png").is_file()
    assert (tmp_path / "report" / "figures" / "anytime_rte.png").is_file()
