"""The study section of a grid folder: relative performance against plain fine-tuning of the same seed, the
weight-sharing vs standard NAS time ratio, the factor comparison, all with hand-computed numbers."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.results import COLUMNS
from plotting.comparisons import compare_factor, read_manifest
from plotting.relative import relative_to_finetuned, relative_to_references
from plotting.report import write_report
from plotting.study import (
    constant_predictor,
    constant_valid_errors,
    finetuned_references,
    is_study_root,
    speed_ratios,
    summarize_speed,
    supernet_runs,
)


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


def _row(seed: int, kind: str, method: str, valid: float, test: float, macs: float, runtime: float) -> dict:
    row = {column: "" for column in COLUMNS}
    row.update(run_id=f"{kind}-{method}-seed{seed}", kind=kind, method=method, searcher=method, search_space="small",
               strategy="sandwich" if kind == "weight-sharing" else "", task="stsb", model="minilm", seed=seed,
               config=json.dumps({"m": macs}), valid_error=valid, test_error=test, params=1, param_fraction=macs,
               encoder_param_fraction=macs, macs=macs, mac_fraction=macs, size_objective="mac_fraction",
               runtime_s=runtime, pareto=True)
    return row


@pytest.fixture
def grid(tmp_path: Path) -> Path:
    root = tmp_path / "grid"
    for seed, (reference, trained, constant, valid_error) in enumerate([(0.8, 100.0, 0.1, 0.4),
                                                                         (0.9, 200.0, 0.3, 0.6)]):
        _write_json(root / f"finetuned/stsb/minilm/seed{seed}/metrics.json",
                    {"test": {"main": reference, "pearson": reference / 2}})
        supernet = root / f"supernets/stsb/minilm/small/sandwich/seed{seed}"
        _write_json(supernet / "timing.json", {"seconds": trained})
        _write_json(supernet / "metrics.json", {"constant": {"test": {"main": constant},
                                                             "valid": {"main": 1 - valid_error, "error": valid_error}}})
    # seed 0: the 50% sub-network scores test 0.72 = 0.9 of fine-tuning's 0.8; seed 1: 0.72 = 0.8 of 0.9
    rows = [_row(seed, "weight-sharing", "nsga2", valid, test, macs, runtime)
            for seed, valid, test, macs, runtime in [(0, 0.10, 0.20, 1.0, 1.0), (0, 0.15, 0.28, 0.5, 2.0),
                                                     (1, 0.10, 0.10, 1.0, 1.0), (1, 0.15, 0.28, 0.5, 2.0)]]
    for seed in (0, 1):
        folder = root / f"weight-sharing/stsb/minilm/small/sandwich/nsga2/seed{seed}"
        folder.mkdir(parents=True)
        pd.DataFrame([r for r in rows if r["seed"] == seed], columns=list(COLUMNS)).to_csv(folder / "results.csv",
                                                                                            index=False)
    return root


def test_relative_performance_is_against_the_same_seeds_fine_tuning(grid):
    assert is_study_root(grid) and not is_study_root(grid / "weight-sharing")
    references = finetuned_references(grid)
    assert references.sort_values("seed")["reference"].tolist() == [0.8, 0.9]
    # a secondary metric is its own task, named as with_metric names re-expressed rows
    secondary = finetuned_references(grid, [("stsb", "pearson")]).set_index(["task", "seed"])["reference"]
    assert secondary[("stsb (pearson)", 1)] == pytest.approx(0.45) and secondary[("stsb", 1)] == 0.9
    assert constant_predictor(grid) == {"stsb": pytest.approx(0.2)}
    frame = pd.concat([pd.read_csv(p) for p in sorted(grid.rglob("results.csv"))], ignore_index=True)
    frame["strategy"] = frame["strategy"].fillna("")
    summary = relative_to_finetuned(frame, references, [0.5])
    row = summary.iloc[0]
    assert (row["method"], row["n"]) == ("nsga2", 2)
    assert row["mean"] == pytest.approx(0.85) and row["se"] == pytest.approx(0.05)


def test_runs_without_a_reference_are_left_out_or_keep_their_own():
    rows = [_row(0, "weight-sharing", "nsga2", 0.1, 0.2, 1.0, 1.0), _row(0, "weight-sharing", "nsga2", 0.2, 0.5, 0.5, 2.0),
            _row(1, "weight-sharing", "nsga2", 0.1, 0.2, 1.0, 1.0), _row(1, "weight-sharing", "nsga2", 0.2, 0.6, 0.5, 2.0)]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame.loc[2:, "model"] = np.nan  # a table without the model column's value: never dropped silently
    references = pd.DataFrame([{"task": "stsb", "model": "minilm", "seed": 0, "reference": 0.625}])
    with pytest.warns(UserWarning, match="1 run.*left out: weight-sharing-nsga2-seed1"):
        alone = relative_to_references(frame, references, [0.5])
    assert alone["relative_performance"].tolist() == [pytest.approx(0.8)]  # 0.5 of fine-tuning's 0.625
    with pytest.warns(UserWarning, match="relative to their own unpruned sub-network: weight-sharing-nsga2-seed1"):
        both = relative_to_references(frame, references, [0.5], fallback=True)
    assert both["relative_performance"].tolist() == [pytest.approx(0.8), pytest.approx(0.5)]  # 0.4 of its own 0.8


def test_report_of_a_grid_folder_has_the_study_section(grid, tmp_path):
    report = write_report(grid, tmp_path / "report").read_text()
    study = report[report.index("## Study"):]
    # nsga2 at 50% pruned: 85.0 ± 5.0 (%); constant predictor: mean 0.2 over mean reference 0.85 = 23.5%
    assert "85.0 ± 5.0" in study and "23.5" in study
    supernets = supernet_runs(grid)
    assert supernets["seconds"].tolist() == [100.0, 200.0]


def test_the_report_ranks_searchers_above_the_grids_constant_predictor(grid, tmp_path):
    assert constant_valid_errors(grid) == {"stsb": pytest.approx(0.5)}  # the mean of the seeds' 0.4 and 0.6
    report = write_report(grid, tmp_path / "report").read_text()
    cross_task = report[report.index("## Cross-task tables"):report.index("## Average rank")]
    assert "validation errors: stsb 0.5)" in cross_task
    # each seed: (0.15 / 0.5, 0.5 MACs) -> (1 - 0.3) * (1 - 0.5); the full network (size 1) covers no area
    assert "| weight-sharing | nsga2 | **0.350 ± 0.000** |" in cross_task
    assert "| weight-sharing | nsga2 | **1.00 ± 0.00** | **1.00** |" in cross_task
    tex = (tmp_path / "report" / "tables" / "hypervolume_above_constant.tex").read_text()
    assert "0.350" in tex and "constant predictor" in tex


def test_the_reports_relative_tables_are_against_the_same_seeds_fine_tuning(grid, tmp_path):
    # morea seed 0: its own full network scores 0.64 and its 50% sub-network 0.64, so 100% of itself but 80% of
    # seed 0's fine-tuning (0.8); seed 2 has no fine-tuning: its run keeps its own reference, 0.3 of 0.5 = 60%
    for seed, full_test, half_test in [(0, 0.36, 0.36), (2, 0.5, 0.7)]:
        folder = grid / f"weight-sharing/stsb/minilm/small/sandwich/morea/seed{seed}"
        folder.mkdir(parents=True)
        rows = [_row(seed, "weight-sharing", "morea", 0.10, full_test, 1.0, 1.0),
                _row(seed, "weight-sharing", "morea", 0.15, half_test, 0.5, 2.0)]
        pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(folder / "results.csv", index=False)
    report = write_report(grid, tmp_path / "report").read_text()
    cross_task = report[report.index("## Cross-task tables"):report.index("Final hypervolume of each searcher")]
    cells = {line.split("|")[2].strip(): line.split("|")[3].strip() for line in cross_task.splitlines()
             if line.startswith("| weight-sharing |")}
    assert cells == {"morea": "70.0 ± 10.0", "nsga2": "**85.0 ± 5.0**"}  # the best in bold
    assert "plain fine-tuning's test performance, same task and seed" in cross_task
    assert ("1 run(s) without a reference (plain fine-tuning) for their task and seed are relative to their own "
            "unpruned sub-network: weight-sharing-morea-seed2") in report
    latex = (tmp_path / "report" / "tables" / "relative_50.tex").read_text()
    assert "70.0" in latex and "plain fine-tuning" in latex


def _trajectory(run_id: str, kind: str, method: str, seed: int, points: list[tuple[float, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"task": "stsb", "kind": kind, "method": method, "run_id": run_id, "seed": seed,
                          "searcher": method, "strategy": "sandwich" if kind == "weight-sharing" else "",
                          "search_space": "small", "runtime_s": t, "hypervolume": hv} for t, hv in points])


def test_speed_ratio_counts_the_super_networks_training():
    trajectories = pd.concat([
        _trajectory("std", "standard", "moasha", 0, [(100.0, 0.5), (400.0, 0.7), (900.0, 0.7)]),
        _trajectory("fast", "weight-sharing", "nsga2", 0, [(10.0, 0.6), (30.0, 0.75)]),
        _trajectory("never", "weight-sharing", "ehvi", 0, [(10.0, 0.6), (50.0, 0.69)]),
    ], ignore_index=True)
    supernets = pd.DataFrame([{"task": "stsb", "model": "minilm", "search_space": "small", "strategy": "sandwich",
                               "seed": 0, "seconds": 100.0, "constant": 0.0}])
    ratios = speed_ratios(trajectories, supernets).set_index("weight_sharing")
    # standard NAS reached its final 0.7 at 400 s; nsga2 at 30 s of search + 100 s of super-network training
    assert ratios.loc["nsga2", "standard_s"] == 400.0 and ratios.loc["nsga2", "ws_total_s"] == 130.0
    assert math.isinf(ratios.loc["ehvi", "ws_search_s"])
    speed = summarize_speed(ratios.reset_index()).set_index("weight_sharing")
    assert speed.loc["nsga2", "total_ratio"] == pytest.approx(130 / 400)
    assert speed.loc["nsga2", "search_ratio"] == pytest.approx(30 / 400)
    assert (speed.loc["ehvi", "reached"], speed.loc["ehvi", "runs"]) == (0, 1)


def test_factor_comparison_ranks_within_each_seed():
    final = pd.DataFrame([
        {"task": "stsb", "kind": "weight-sharing", "searcher": "random_search", "search_space": "small",
         "strategy": strategy, "seed": seed, "hypervolume": hv}
        for strategy, seed, hv in [("sandwich", 0, 0.9), ("kd", 0, 0.8), ("sandwich", 1, 0.7), ("kd", 1, 0.75),
                                   ("random", 0, 0.1), ("sandwich", 2, 0.1)]
    ])
    table = compare_factor(final, "strategy", {"searcher": "random_search", "search_space": "small"}).set_index("strategy")
    assert table.loc["sandwich", "rank"] == pytest.approx(1.5) and table.loc["kd", "rank"] == pytest.approx(1.5)
    assert table.loc["random", "rank"] == 3.0 and table.loc["random", "n"] == 1
    # seed 2 ran sandwich alone: no rank there, and its hypervolume stays out of the mean
    assert table.loc["sandwich", "hypervolume"] == pytest.approx(0.8) and table.loc["sandwich", "n"] == 2
    assert np.isnan(table.loc["random", "hypervolume_se"])


def test_factor_comparison_breaks_a_tie_in_mean_rank_by_the_mean_hypervolume():
    # full and sandwich both rank 1.5 on average; sandwich's mean hypervolume (0.85) is the larger one, and "full"
    # comes first in the alphabet, so only the tie-break puts sandwich on top
    final = pd.DataFrame([
        {"task": "stsb", "kind": "weight-sharing", "searcher": "random_search", "search_space": "small",
         "strategy": strategy, "seed": seed, "hypervolume": hv}
        for strategy, seed, hv in [("sandwich", 0, 0.95), ("full", 0, 0.8), ("sandwich", 1, 0.75), ("full", 1, 0.78)]
    ])
    table = compare_factor(final, "strategy", {"searcher": "random_search", "search_space": "small"})
    assert table["rank"].tolist() == [1.5, 1.5]
    assert table["strategy"].tolist() == ["sandwich", "full"]


def _write_run(root: Path, strategy: str, seed: int, points: list[tuple[float, float, float]]) -> None:
    rows = []
    for valid, test, macs in points:
        row = _row(seed, "weight-sharing", "random_search", valid, test, macs, 1.0)
        row.update(strategy=strategy, run_id=f"ws-{strategy}-random_search-seed{seed}")
        rows.append(row)
    folder = root / f"weight-sharing/stsb/minilm/small/{strategy}/random_search/seed{seed}"
    folder.mkdir(parents=True)
    pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(folder / "results.csv", index=False)


def test_a_grids_comparison_runs_stay_out_of_the_searcher_tables(grid, tmp_path):
    _write_json(grid / "grid.json", {
        "grid": "study", "main": {"strategy": ["sandwich"], "search_space": ["small"]},
        "comparisons": [{"factor": "strategy", "values": ["sandwich", "kd", "full"], "fixed": {"search_space": ["small"]},
                         "tasks": ["stsb"], "searchers": ["random_search"]}]})
    # sandwich dominates kd in both seeds; at 50% pruned sandwich keeps 0.72/0.8 and 0.81/0.9 (90%), kd 0.56/0.8
    # (70%) and 0.54/0.9 (60%) of the same seed's fine-tuning
    for seed, (sandwich_test, kd_test) in enumerate([(0.28, 0.44), (0.19, 0.46)]):
        _write_run(grid, "sandwich", seed, [(0.10, 0.1, 1.0), (0.15, sandwich_test, 0.5)])
        _write_run(grid, "kd", seed, [(0.12, 0.1, 1.0), (0.20, kd_test, 0.5)])
    # seed 2 has the main (sandwich) run alone: not compared, so not in the comparison's means
    _write_run(grid, "sandwich", 2, [(0.5, 0.9, 1.0), (0.6, 0.9, 0.5)])
    report = write_report(grid, tmp_path / "report").read_text()
    main, study = report[:report.index("## Study")], report[report.index("## Study"):]
    assert "2 runs of the grid's factor comparisons (grid.json) left out" in main
    cross_task = main[main.index("## Cross-task tables"):main.index("## Average rank")]
    # random search of the main (sandwich) super-network is ranked beside nsga2, without a kd variant
    assert "| weight-sharing | random_search |" in cross_task and "kd" not in cross_task
    rows = {line.split("|")[2].strip(): line for line in study.splitlines() if line.startswith("| stsb | ")}
    assert "1.00 ± 0.00" in rows["sandwich"] and "90.0 ± 0.0" in rows["sandwich"]
    assert rows["sandwich"].split("|")[5].strip() == "2"  # seeds 0 and 1; seed 2 ran sandwich alone
    assert "2.00 ± 0.00" in rows["kd"] and "65.0 ± 5.0" in rows["kd"]
    assert "Not run yet: full." in study


def test_a_broken_grid_manifest_is_refused_with_its_path(grid):
    (grid / "grid.json").write_text(json.dumps({"grid": "study"}))
    with pytest.raises(ValueError, match=r"grid.json: .*lacks or misshapes 'main'"):
        read_manifest(grid)
    (grid / "grid.json").write_text("{")
    with pytest.raises(ValueError, match="grid.json is not valid JSON"):
        read_manifest(grid)
