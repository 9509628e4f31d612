"""Ranks, relative performance, colours and the report built from a synthetic results folder."""
from __future__ import annotations

import argparse
import json
import re

import numpy as np
import pandas as pd
import pytest
from pymoo.indicators.hv import HV

from benchmarks.results import COLUMNS, best_so_far_rows, mark_pareto, read_results, write_atomic
from plotting.ranks import average_ranks, bootstrap_average_ranks
from plotting.relative import relative_performance
from plotting.report import ReportSettings, add_report_arguments, label_variants, run_report, write_report
from plotting.style import method_color, method_colors

# --- ranks -------------------------------------------------------------------------------------------------------


def grid_frame(values: dict[tuple[str, str], list[list[float]]], grid=(1.0, 2.0)) -> pd.DataFrame:
    """(task, method) -> one list of hypervolumes on the grid per seed."""
    records = []
    for (task, method), seeds in values.items():
        for seed, hvs in enumerate(seeds):
            for t, hv in zip(grid, hvs):
                records.append(dict(task=task, kind="weight-sharing", method=method, run_id=f"{task}-{method}-{seed}",
                                    seed=seed, runtime_s=t, hypervolume=hv))
    return pd.DataFrame.from_records(records)


def ranks_of(frame: pd.DataFrame, column: str = "rank") -> dict[tuple[str, float], float]:
    return {(r.method, r.runtime_s): getattr(r, column) for r in frame.itertuples()}


def test_average_ranks_two_tasks_two_methods_hand_case():
    # t=1: m1 beats m2 on both tasks -> ranks 1 and 2; t=2: m1 wins on A, m2 wins on B -> 1.5 each.
    frame = grid_frame({
        ("A", "m1"): [[0.5, 0.5], [0.6, 0.6]], ("A", "m2"): [[0.1, 0.3], [0.2, 0.4]],
        ("B", "m1"): [[0.4, 0.4], [0.4, 0.5]], ("B", "m2"): [[0.2, 0.6], [0.3, 0.7]],
    })
    expected = {("m1", 1.0): 1.0, ("m2", 1.0): 2.0, ("m1", 2.0): 1.5, ("m2", 2.0): 1.5}
    assert ranks_of(average_ranks(frame)) == expected
    # every seed of the winner beats every seed of the loser, so each bootstrap sample gives the same ranks
    boot = bootstrap_average_ranks(frame, num_samples=50, seed=3)
    assert ranks_of(boot) == expected
    assert boot["rank_std"].max() == 0.0


def test_ties_share_rank_and_absent_methods_are_left_out():
    frame = grid_frame({("A", "m1"): [[0.5, 0.5]], ("A", "m2"): [[0.5, 0.1]], ("B", "m3"): [[0.2, 0.2]],
                        ("B", "m1"): [[0.1, 0.1]]})
    ranks = ranks_of(average_ranks(frame))
    # t=1: A ties (1.5, 1.5), B: m3 1, m1 2 -> m1 (1.5+2)/2, m2 1.5 (A only), m3 1 (B only)
    assert ranks[("m1", 1.0)] == 1.75 and ranks[("m2", 1.0)] == 1.5 and ranks[("m3", 1.0)] == 1.0
    # t=2: A m1 1, m2 2; B m3 1, m1 2
    assert ranks[("m1", 2.0)] == 1.5 and ranks[("m2", 2.0)] == 2.0


def test_bootstrap_ranks_expectation_and_reproducibility():
    # m1's seeds score 0.1 or 0.5, m2 always 0.3: m1 ranks 1 or 2 with probability 1/2 -> expected rank 1.5
    frame = grid_frame({("A", "m1"): [[0.1, 0.1], [0.5, 0.5]], ("A", "m2"): [[0.3, 0.3], [0.3, 0.3]]})
    boot = bootstrap_average_ranks(frame, num_samples=4000, seed=0)
    m1 = boot[boot["method"] == "m1"]
    np.testing.assert_allclose(m1["rank"], 1.5, atol=0.03)  # s.e. of the mean 0.5/sqrt(4000) = 0.008
    np.testing.assert_allclose(m1["rank_std"], 0.5, atol=0.01)
    again = bootstrap_average_ranks(frame, num_samples=4000, seed=0)
    pd.testing.assert_frame_equal(boot, again)
    other = bootstrap_average_ranks(frame, num_samples=4000, seed=1)
    assert not np.allclose(other["rank"], boot["rank"])
    with pytest.raises(ValueError, match="num_samples"):
        bootstrap_average_ranks(frame, num_samples=0)


# --- relative performance ----------------------------------------------------------------------------------------


def result_rows(records: list[dict]) -> pd.DataFrame:
    defaults = dict(kind="weight-sharing", method="rs", searcher="rs", search_space="small", strategy="sandwich",
                    task="rte", model="m", seed=0, params=1, encoder_param_fraction=0.5, macs=1.0, mac_fraction=0.5,
                    size_objective="param_fraction", epoch=np.nan, pareto=False, test_error=np.nan,
                    valid_metrics="", test_metrics="", precision="", latency_ms=np.nan, latency_fraction=np.nan,
                    objectives="")
    out = []
    for i, rec in enumerate(records):
        row = {**defaults, "config": json.dumps({"i": i}), "runtime_s": float(i + 1), **rec}
        out.append({c: row[c] for c in COLUMNS})
    return pd.DataFrame(out)


def test_relative_performance_hand_case():
    frame = result_rows([
        dict(run_id="r", param_fraction=1.0, valid_error=0.10, test_error=0.20),  # unpruned: perf 0.80
        dict(run_id="r", param_fraction=0.7, valid_error=0.12, test_error=0.24),  # 0.76 / 0.80 = 0.95
        dict(run_id="r", param_fraction=0.45, valid_error=0.20, test_error=0.36),  # 0.64 / 0.80 = 0.80
        dict(run_id="r", param_fraction=0.5, valid_error=0.25, test_error=0.10),  # better test, worse valid
    ])
    rel = relative_performance(frame, [0.0, 0.3, 0.5, 0.6]).set_index("fraction_pruned")
    np.testing.assert_allclose(rel["relative_performance"].iloc[:3], [1.0, 0.95, 0.80])
    np.testing.assert_allclose(rel["size"].iloc[:3], [1.0, 0.7, 0.45])
    assert np.isnan(rel.loc[0.6, "relative_performance"])  # nothing with at most 40% of the parameters
    explicit = relative_performance(frame, [0.3], reference=0.9)
    assert explicit["relative_performance"].iloc[0] == pytest.approx(0.76 / 0.9)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        relative_performance(frame, [1.0])


def test_half_the_layers_count_at_half_pruned_though_the_task_head_adds_a_sliver():
    """MiniLM's bottom 3 of 6 layers are 50.005% of its MACs with the classifier: within 50% pruned; 50.2% is not."""
    frame = result_rows([
        dict(run_id="r", param_fraction=1.0, valid_error=0.10, test_error=0.20),
        dict(run_id="r", param_fraction=0.500052, valid_error=0.15, test_error=0.28),  # 0.72 / 0.80 = 0.90
        dict(run_id="r", param_fraction=0.502, valid_error=0.11, test_error=0.21),  # too large, better valid
        dict(run_id="r", param_fraction=0.17, valid_error=0.40, test_error=0.60),
    ])
    rel = relative_performance(frame, [0.5]).iloc[0]
    assert rel["size"] == 0.500052 and rel["relative_performance"] == pytest.approx(0.9)


def test_relative_performance_falls_back_to_task_reference_and_uses_best_epoch():
    a = json.dumps({"t": "a"})
    frame = result_rows([
        dict(run_id="r1", param_fraction=1.0, valid_error=0.10, test_error=0.20),  # reference 0.8
        dict(run_id="r2", kind="standard", config=a, epoch=1.0, param_fraction=0.5, valid_error=0.3, test_error=0.1),
        dict(run_id="r2", kind="standard", config=a, epoch=2.0, param_fraction=0.5, valid_error=0.2, test_error=0.4),
    ])
    rel = relative_performance(frame, [0.5]).set_index("run_id")
    # r2 has no unpruned row: task reference 0.8; its best-validation epoch (2) has test performance 0.6
    assert rel.loc["r2", "relative_performance"] == pytest.approx(0.6 / 0.8)
    with pytest.warns(UserWarning, match="no unpruned model"):
        missing = relative_performance(frame[frame["run_id"] == "r2"], [0.5])
    assert missing["relative_performance"].isna().all()


# --- colours -----------------------------------------------------------------------------------------------------


def test_method_colors_are_stable_and_distinct():
    assert method_color("random_search") == method_color("Random Search") == method_color("RS")
    assert method_color("ws-morea") == method_color("morea")  # weight-sharing searches share their searcher's colour
    assert method_color("head-prune") == method_color("head_pruning") != method_color("layer-drop")
    assert method_color("random_search") != method_color("morea")
    names = [f"custom_method_{i}" for i in range(12)]
    colors = method_colors(names + ["morea"])
    assert len(set(colors.values())) == 13
    assert colors["morea"] == method_color("morea")
    assert method_colors(reversed(names)) == method_colors(names)


# --- the report --------------------------------------------------------------------------------------------------

METHODS = (  # kind, method, strategy, search space, error offset
    ("weight-sharing", "random_search", "sandwich", "small", 0.0),
    ("weight-sharing", "morea", "kd", "medium", -0.03),
    ("standard", "random_search", "", "small", 0.04),
)


def synthetic_results(tasks=("stsb", "mrpc"), seeds=(0, 1, 2), rows_per_run=20) -> pd.DataFrame:
    """Realistic results: weight-sharing runs (one row per sub-network, test errors on the Pareto set only) and
    standard-NAS runs (5 trials x 4 epochs); the first sub-network of every run is the unpruned model."""
    rng = np.random.default_rng(123)
    records = []
    for task in tasks:
        for kind, method, strategy, space, offset in METHODS:
            for seed in seeds:
                t = 0.0
                epochs = [np.nan] if kind == "weight-sharing" else [1.0, 2.0, 3.0, 4.0]
                for trial in range(rows_per_run // len(epochs)):
                    size = 1.0 if trial == 0 else float(rng.uniform(0.2, 1.0))
                    base = 0.1 + 0.3 * (1 - size) ** 2 + offset + rng.normal(0, 0.01)
                    for epoch in epochs:
                        t += float(rng.uniform(1, 3)) if kind == "weight-sharing" else float(rng.uniform(50, 80))
                        err = base + (0.0 if np.isnan(epoch) else 0.05 / epoch + rng.normal(0, 0.005))
                        records.append(dict(
                            run_id=f"{task}-{kind}-{method}-{seed}", kind=kind, method=method, searcher=method,
                            search_space=space, strategy=strategy, task=task, model="minilm", seed=seed,
                            config=json.dumps({"trial": trial}), valid_error=err,
                            test_error=err + rng.normal(0, 0.01), params=int(size * 2e7), param_fraction=size,
                            encoder_param_fraction=size, macs=size * 1e9, mac_fraction=size,
                            size_objective="param_fraction", runtime_s=t, epoch=epoch, pareto=False))
    frame = mark_pareto(pd.DataFrame.from_records(records, columns=list(COLUMNS)))
    scored = (frame["kind"] == "standard") | frame["pareto"] | (frame["param_fraction"] == 1.0)
    frame.loc[~scored, "test_error"] = np.nan
    return frame


def expected_final_hypervolumes(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean final hypervolume per task and method, computed independently (numpy ECDF + pymoo)."""
    points = best_so_far_rows(frame)
    out = []
    for task, part in points.groupby("task"):
        def ecdf(col):
            ref = np.sort(part[col].to_numpy(float))
            return np.searchsorted(ref, part[col].to_numpy(float), side="right") / len(ref)

        normed = part.assign(e=ecdf("valid_error"), s=ecdf("param_fraction"))
        for (kind, method, run), run_rows in normed.groupby(["kind", "method", "run_id"]):
            hv = HV(ref_point=np.array([2.0, 2.0]))(run_rows[["e", "s"]].to_numpy())
            out.append(dict(task=task, kind=kind, method=method, run_id=run, hv=hv))
    return pd.DataFrame(out).groupby(["task", "kind", "method"])["hv"].agg(["mean", "std", "count"]).reset_index()


FIGURES = ["ranks", "boxplot_strategy", "boxplot_search_space"] + [
    f"{name}_{task}" for task in ("stsb", "mrpc") for name in ("hypervolume", "relative", "pareto")
]


def test_report_from_synthetic_results_folder(tmp_path):
    frame = synthetic_results()
    for task, part in frame.groupby("task"):  # one folder per task: the report combines several sources
        for run_id, run in part.groupby("run_id"):
            write_atomic(run, tmp_path / f"results-{task}" / run_id / "results.csv")
    sources = [tmp_path / "results-mrpc", tmp_path / "results-stsb"]
    assert sum(len(read_results(source)) for source in sources) == 2 * 3 * 3 * 20
    md_path = write_report(sources, tmp_path / "report", settings=ReportSettings(bootstrap_samples=200))
    md = md_path.read_text()
    assert f"Source: {sources[0]}, {sources[1]}. 360 rows" in md
    page = (tmp_path / "report" / "report.html").read_text()
    for name in FIGURES:
        for fmt in ("png", "pdf"):
            path = tmp_path / "report" / "figures" / f"{name}.{fmt}"
            assert path.is_file() and path.stat().st_size > 1000, path
        assert f"figures/{name}.png" in md and f"<img src='figures/{name}.png'" in page
    for heading in ("## Task mrpc", "## Task stsb", "### Final hypervolume", "### Ranks", "### Relative performance"):
        assert heading in md
    assert md.count("| kind | method | 25% pruned | 50% pruned | 75% pruned |") == 2
    # the best final hypervolume per task is bold, and equals the independently computed value
    expected = expected_final_hypervolumes(frame)
    for task, part in expected.groupby("task"):
        best = part.loc[part["mean"].idxmax()]
        se = best["std"] / np.sqrt(best["count"])
        cell = f"{best['mean']:.3f} ± {se:.3f}"
        section = md.split(f"## Task {task}")[1].split("### Ranks")[0]
        assert f"| {best['kind']} | {best['method']} | 3 |" in section
        assert re.search(rf"\| {best['kind']} \| {best['method']} \|.*\*\*{re.escape(cell)}\*\*", section), cell
        assert f"<b>{cell}</b>" in page
        assert section.count("**") == 2  # exactly one bold cell in the table
    assert "Note:" not in md  # nothing had to be skipped


def test_report_degrades_gracefully_and_cli(tmp_path):
    frame = synthetic_results(tasks=("rte",), seeds=(0,), rows_per_run=8)
    frame = frame[frame["method"] == "morea"].assign(test_error=np.nan)
    write_atomic(frame, tmp_path / "results.csv")
    parser = add_report_arguments(argparse.ArgumentParser())
    args = parser.parse_args([str(tmp_path / "results.csv"), "--out", str(tmp_path / "out"),
                              "--size-objective", "mac_fraction", "--bootstrap-samples", "20", "--grid-points", "10"])
    md = run_report(args).read_text()
    # one method: its front and search, nothing that compares methods
    assert "morea (weight-sharing): 1 run, 8 evaluated sub-networks, validation error against fraction of MACs." in md
    for absent in ("## Overview", "Ranks", "Average rank", "Cross-task", "boxplot"):
        assert absent not in md, absent
    assert "± –" in md  # a single seed: no standard error
    assert "no test errors" in md and "relative performance skipped" in md
    figures = tmp_path / "out" / "figures"
    assert sorted(p.name for p in figures.iterdir()) == sorted(
        f"{name}.{fmt}" for name in ("hypervolume_rte", "pareto_rte") for fmt in ("png", "pdf"))
    assert all(p.stat().st_size > 1000 for p in figures.iterdir())
    with pytest.raises(SystemExit):
        parser.parse_args([str(tmp_path), "--out", "x", "--size-objective", "latency"])



def test_variants_of_a_method_are_named_apart_not_pooled():
    frame = pd.DataFrame({
        "kind": ["weight-sharing"] * 4 + ["standard"] * 2,
        "method": ["random_search"] * 4 + ["random_search"] * 2,
        "strategy": ["sandwich", "standard", "sandwich", "sandwich", "", ""],
        "search_space": ["small", "small", "layer", "small", "small", "small"],
    })
    assert label_variants(frame)["method"].tolist() == [
        "random_search (sandwich, small)", "random_search (standard, small)", "random_search (sandwich, layer)",
        "random_search (sandwich, small)", "random_search", "random_search",
    ]


def test_saved_figures_carry_no_date_so_a_rebuild_is_byte_identical(tmp_path):
    import time

    from plotting.style import new_figure, save_figure

    def draw(stem):
        fig, (ax,) = new_figure(3, 2)
        ax.plot([0, 1], [1, 0])
        return save_figure(fig, stem, formats=("png", "pdf"))

    first = draw(tmp_path / "a")
    time.sleep(1.1)  # a creation date, had one been written, would now differ
    second = draw(tmp_path / "b")
    assert [p.suffix for p in first] == [".png", ".pdf"]
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_report_says_which_precision_produced_the_rows():
    from plotting.report import precision_note

    frame = pd.DataFrame({"precision": ["bf16", "bf16", "fp32", "", float("nan")]})
    assert precision_note(frame) == ("Forward passes (training and scoring) ran in bf16 (2 rows), fp32 (1 rows), "
                                     "fp32 (2 rows from before the precision was recorded).")
    assert "fp32 (1 rows from before" in precision_note(pd.DataFrame({"run_id": ["a"]}))
