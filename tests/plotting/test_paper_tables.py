"""The paper's cross-task tables in `plm-nas report`: hand-made results, numbers checked in Markdown and LaTeX."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest

from benchmarks.results import COLUMNS, write_atomic
from plotting.document import Cell, Table, latex_escape
from plotting.paper_tables import final_ranks, hypervolume_table, ranks_table, relative_at, uneven_competitors
from plotting.report import ReportSettings, add_report_arguments, run_report, write_report

# (task, kind, method, seed, test error of the 40% sub-network, its validation error); every run also holds the
# unpruned model (size 1.0, validation 0.1, test 0.2: performance 0.8)
SMALL = [
    ("rte", "weight-sharing", "random_search", 0, 0.28, 0.3),  # 0.72 / 0.8 = 90%
    ("rte", "weight-sharing", "random_search", 1, 0.36, 0.3),  # 80%        -> 85.0 ± 5.0
    ("rte", "standard", "moasha", 0, 0.24, 0.2),  # 95%
    ("rte", "standard", "moasha", 1, 0.20, 0.2),  # 100%                      -> 97.5 ± 2.5 (best)
    ("rte", "baseline", "rfp", 0, 0.40, 0.5),  # 75%, one seed                -> 75.0 ± –
    ("mrpc", "weight-sharing", "random_search", 0, 0.20, 0.2),  # 100%
    ("mrpc", "weight-sharing", "random_search", 1, 0.20, 0.2),  # 100%        -> 100.0 ± 0.0 (best)
    ("mrpc", "standard", "moasha", 0, 0.28, 0.3),  # 90%
    ("mrpc", "standard", "moasha", 1, 0.28, 0.3),  # 90%                      -> 90.0 ± 0.0
]


def hand_results() -> pd.DataFrame:
    """Two rows per run: the unpruned model and one sub-network with 40% of the parameters. The lower validation
    error of the small sub-network gives the larger hypervolume: moasha wins on rte, random search on mrpc."""
    records = []
    for task, kind, method, seed, test_error, valid_error in SMALL:
        base = dict(run_id=f"{task}-{method}-{seed}", kind=kind, method=method, searcher=method, search_space="small",
                    strategy="", task=task, model="m", seed=seed, params=1, encoder_param_fraction=0.5, macs=1.0,
                    mac_fraction=0.5, size_objective="param_fraction", pareto=False,
                    epoch=1.0 if kind == "standard" else np.nan)
        records.append({**base, "config": json.dumps({"size": 1.0}), "param_fraction": 1.0, "valid_error": 0.1,
                        "test_error": 0.2, "runtime_s": 1.0})
        records.append({**base, "config": json.dumps({"size": 0.4}), "param_fraction": 0.4,
                        "valid_error": valid_error, "test_error": test_error, "runtime_s": 2.0})
    return pd.DataFrame.from_records(records, columns=list(COLUMNS))


def test_relative_at_half_pruned_is_the_mean_and_se_over_seeds():
    summary = relative_at(hand_results(), 0.5).set_index(["task", "method"])
    assert summary.loc[("rte", "random_search"), "mean"] == pytest.approx(0.85)
    assert summary.loc[("rte", "random_search"), "se"] == pytest.approx(0.05)
    assert summary.loc[("rte", "moasha"), "mean"] == pytest.approx(0.975)
    assert summary.loc[("rte", "moasha"), "se"] == pytest.approx(0.025)
    assert summary.loc[("rte", "rfp"), "n"] == 1 and np.isnan(summary.loc[("rte", "rfp"), "se"])
    assert summary.loc[("mrpc", "moasha"), "mean"] == pytest.approx(0.9)


def test_ranks_are_per_seed_among_searchers_then_averaged_over_tasks():
    final = pd.DataFrame([
        # task a: x beats y with seed 0, they tie with seed 1; task b: y beats x; the baseline is not ranked
        dict(task="a", kind="standard", method="x", seed=0, hypervolume=3.0),
        dict(task="a", kind="standard", method="y", seed=0, hypervolume=2.0),
        dict(task="a", kind="baseline", method="z", seed=0, hypervolume=9.0),
        dict(task="a", kind="standard", method="x", seed=1, hypervolume=2.0),
        dict(task="a", kind="standard", method="y", seed=1, hypervolume=2.0),
        dict(task="b", kind="weight-sharing", method="x", seed=0, hypervolume=1.0),
        dict(task="b", kind="standard", method="y", seed=0, hypervolume=4.0),
    ])
    ranks = final_ranks(final).set_index(["task", "method"])
    assert set(ranks.index.get_level_values("method")) == {"x", "y"}
    assert ranks.loc[("a", "x"), "mean"] == pytest.approx(1.25) and ranks.loc[("a", "x"), "se"] == pytest.approx(0.25)
    assert ranks.loc[("a", "y"), "mean"] == pytest.approx(1.75)
    assert ranks.loc[("b", "x"), "mean"] == 2.0 and np.isnan(ranks.loc[("b", "x"), "se"])
    table = ranks_table(final).table
    assert table.header == ["kind", "method", "a", "b", "average"]
    text = [[cell.text for cell in row] for row in table.rows]
    # x ran as a standard searcher on a and as a weight-sharing one on b: two rows, each averaged over its task
    assert text == [["standard", "x", "1.25 ± 0.25", "–", "1.25"],
                    ["standard", "y", "1.75 ± 0.25", "1.00 ± –", "1.38"],
                    ["weight-sharing", "x", "–", "2.00 ± –", "2.00"]]
    assert [[cell.bold for cell in row[2:]] for row in table.rows] == [
        [True, False, True], [False, True, False], [False, False, False]]
    # the final hypervolumes being ranked, the baseline left out like in the ranks
    hypervolumes = hypervolume_table(final).table
    assert hypervolumes.header == ["kind", "method", "a", "b"]
    assert [[cell.text for cell in row] for row in hypervolumes.rows] == [
        ["standard", "x", "2.500 ± 0.500", "–"], ["standard", "y", "2.000 ± 0.000", "4.000 ± –"],
        ["weight-sharing", "x", "–", "1.000 ± –"]]


def test_seeds_that_ranked_different_searchers_are_named():
    final = pd.DataFrame([
        dict(task="a", kind="standard", method="x", seed=0, hypervolume=3.0),
        dict(task="a", kind="weight-sharing", method="y", seed=0, hypervolume=2.0),
        dict(task="a", kind="weight-sharing", method="y", seed=1, hypervolume=2.0),
        dict(task="a", kind="baseline", method="z", seed=1, hypervolume=9.0),  # baselines are not ranked
        dict(task="b", kind="standard", method="x", seed=0, hypervolume=1.0),
        dict(task="b", kind="standard", method="x", seed=1, hypervolume=1.0),
    ])
    assert uneven_competitors(final) == [
        "a: the seeds ranked different searchers (seed 1 without standard x), so a rank there is among fewer "
        "competitors in some seeds than in others."]


def test_latex_tables_use_booktabs_and_escape_text():
    table = Table(["kind", "method", "rte"], [[Cell("standard"), Cell("random_search"), Cell("97.5 ± 2.5", True)]])
    assert table.to_latex(label_columns=2) == (
        "\\begin{tabular}{llr}\n\\toprule\nkind & method & rte \\\\\n\\midrule\n"
        "standard & random\\_search & \\textbf{97.5 $\\pm$ 2.5} \\\\\n\\bottomrule\n\\end{tabular}\n")
    assert latex_escape("50% & {x} #1 –") == "50\\% \\& \\{x\\} \\#1 --"


RELATIVE_MD = [
    "| kind | method | mrpc | rte |",
    "| baseline | rfp | – | 75.0 ± – |",
    "| standard | moasha | 90.0 ± 0.0 | **97.5 ± 2.5** |",
    "| weight-sharing | random_search | **100.0 ± 0.0** | 85.0 ± 5.0 |",
]
RELATIVE_TEX = [
    "kind & method & mrpc & rte \\\\",
    "baseline & rfp & -- & 75.0 $\\pm$ -- \\\\",
    "standard & moasha & 90.0 $\\pm$ 0.0 & \\textbf{97.5 $\\pm$ 2.5} \\\\",
    "weight-sharing & random\\_search & \\textbf{100.0 $\\pm$ 0.0} & 85.0 $\\pm$ 5.0 \\\\",
]
RANKS_MD = [
    "| kind | method | mrpc | rte | average |",
    "| standard | moasha | 2.00 ± 0.00 | **1.00 ± 0.00** | **1.50** |",
    "| weight-sharing | random_search | **1.00 ± 0.00** | 2.00 ± 0.00 | **1.50** |",
]
RANKS_TEX = [
    "kind & method & mrpc & rte & average \\\\",
    "standard & moasha & 2.00 $\\pm$ 0.00 & \\textbf{1.00 $\\pm$ 0.00} & \\textbf{1.50} \\\\",
    "weight-sharing & random\\_search & \\textbf{1.00 $\\pm$ 0.00} & 2.00 $\\pm$ 0.00 & \\textbf{1.50} \\\\",
]


def test_report_writes_both_cross_task_tables_in_markdown_and_latex(tmp_path):
    write_atomic(hand_results(), tmp_path / "results.csv")
    md = write_report(tmp_path / "results.csv", tmp_path / "report",
                      settings=ReportSettings(bootstrap_samples=20, grid_points=10)).read_text()
    section = md.split("## Cross-task tables")[1].split("\n## ")[0]
    assert "\n".join(RELATIVE_MD[:1] + ["|---|---|---|---|"] + RELATIVE_MD[1:]) in section
    assert "\n".join(RANKS_MD[:1] + ["|---|---|---|---|---|"] + RANKS_MD[1:]) in section
    assert "50% pruned" in section and "tables/relative_50.tex" in section and "tables/ranks.tex" in section
    assert "tables/hypervolume.tex" in section
    assert (tmp_path / "report" / "tables" / "hypervolume.tex").read_text().startswith("% Final hypervolume")
    relative = (tmp_path / "report" / "tables" / "relative_50.tex").read_text()
    ranks = (tmp_path / "report" / "tables" / "ranks.tex").read_text()
    assert "\\begin{tabular}{llrr}\n\\toprule\n" + RELATIVE_TEX[0] + "\n\\midrule\n" + "\n".join(RELATIVE_TEX[1:]) \
        + "\n\\bottomrule\n\\end{tabular}\n" in relative
    assert "\n".join(RANKS_TEX[1:]) + "\n\\bottomrule" in ranks and RANKS_TEX[0] in ranks
    assert relative.startswith("% Relative performance") and "booktabs" in relative
    assert "Note:" not in section


def test_baseline_errors_repeat_the_hypervolume_and_rank_tables_above_them(tmp_path):
    write_atomic(hand_results(), tmp_path / "results.csv")
    args = add_report_arguments(argparse.ArgumentParser()).parse_args(
        [str(tmp_path / "results.csv"), "--out", str(tmp_path / "out"), "--baseline-errors", "rte:0.4", "mrpc:0.25",
         "--bootstrap-samples", "20", "--grid-points", "10"])
    md = run_report(args).read_text()
    section = md.split("## Cross-task tables")[1].split("\n## ")[0]
    # the 40% sub-networks: rte moasha 0.2 / 0.4 -> 0.5 * 0.6 = 0.3, random search 0.3 / 0.4 -> 0.25 * 0.6 = 0.15;
    # mrpc random search 0.2 / 0.25 -> 0.2 * 0.6 = 0.12, moasha 0.3 is worse than 0.25: 0
    above = section[section.index("Final hypervolume above the constant predictor"):]
    assert "| standard | moasha | 0.000 ± 0.000 | **0.300 ± 0.000** |" in above
    assert "| weight-sharing | random_search | **0.120 ± 0.000** | 0.150 ± 0.000 |" in above
    assert (tmp_path / "out" / "tables" / "ranks_above_constant.tex").is_file()
    assert "validation errors: mrpc 0.25, rte 0.4)" in section
    for bad in (["rte:0"], ["rte"], ["rte:x"], ["rte:1.5"]):
        args = add_report_arguments(argparse.ArgumentParser()).parse_args(
            [str(tmp_path / "results.csv"), "--out", str(tmp_path / "bad"), "--baseline-errors", *bad])
        with pytest.raises(ValueError, match="--baseline-errors takes TASK:ERROR"):
            run_report(args)
    assert not (tmp_path / "bad").exists()
    # without baseline errors (and no grid's super-networks) there is no such table
    plain = write_report(tmp_path / "results.csv", tmp_path / "plain",
                         settings=ReportSettings(bootstrap_samples=20, grid_points=10)).read_text()
    assert "above the constant predictor" not in plain


def test_the_pruning_level_is_an_option(tmp_path):
    write_atomic(hand_results(), tmp_path / "results.csv")
    args = add_report_arguments(argparse.ArgumentParser()).parse_args(
        [str(tmp_path / "results.csv"), "--out", str(tmp_path / "out"), "--cross-task-pruned", "0",
         "--bootstrap-samples", "20", "--grid-points", "10"])
    md = run_report(args).read_text()
    # nothing pruned: every run's best-validation sub-network is the unpruned model itself
    assert "| standard | moasha | **100.0 ± 0.0** | **100.0 ± 0.0** |" in md
    tex = (tmp_path / "out" / "tables" / "relative_0.tex").read_text()
    assert "baseline & rfp & -- & \\textbf{100.0 $\\pm$ --} \\\\" in tex


# ------------------------------------------------------------------ secondary metrics (MRPC accuracy beside F1)


def mrpc_rows() -> pd.DataFrame:
    """One weight-sharing MRPC run with every task metric, and one older run whose file had no metrics columns.

    Main metric F1 (error = 1 - F1). At 50% pruned the best-validation sub-network is "0.4" (validation error
    0.15): test F1 0.75 of the unpruned 0.80 (93.75%), test accuracy 0.60 of the unpruned 0.75 (80%). "0.3" has
    the better validation accuracy (0.72) but, off the searched front, no test scores.
    """
    base = dict(kind="weight-sharing", method="random_search", searcher="random_search", search_space="small",
                strategy="sandwich", task="mrpc", model="m", params=1, encoder_param_fraction=0.5, macs=1.0,
                mac_fraction=0.5, size_objective="param_fraction", pareto=True, epoch=np.nan, runtime_s=1.0)
    new = [  # size, valid F1, valid accuracy, test F1, test accuracy (NaN: not scored)
        (1.0, 0.90, 0.80, 0.80, 0.75),
        (0.4, 0.85, 0.70, 0.75, 0.60),
        (0.3, 0.81, 0.72, np.nan, np.nan),
    ]
    records = []
    for size, valid_f1, valid_acc, test_f1, test_acc in new:
        tested = not np.isnan(test_f1)
        records.append({**base, "run_id": "ws-0", "seed": 0, "config": json.dumps({"size": size}),
                        "param_fraction": size, "valid_error": 1 - valid_f1, "test_error": 1 - test_f1,
                        "valid_metrics": json.dumps({"f1": valid_f1, "accuracy": valid_acc}),
                        "test_metrics": json.dumps({"f1": test_f1, "accuracy": test_acc}) if tested else ""})
    for size, error in ((1.0, 0.2), (0.4, 0.3)):  # read from an old file: metrics columns empty
        records.append({**base, "run_id": "ws-old", "seed": 1, "config": json.dumps({"size": size}),
                        "param_fraction": size, "valid_error": error, "test_error": error,
                        "valid_metrics": "", "test_metrics": ""})
    return pd.DataFrame.from_records(records, columns=list(COLUMNS))


def test_with_metric_re_expresses_the_chosen_sub_networks_in_another_metric():
    from benchmarks.results import with_metric
    from plotting.relative import relative_performance

    frame = mrpc_rows()
    accuracy = with_metric(frame, "accuracy")
    assert accuracy["run_id"].tolist() == ["ws-0 (accuracy)"] * 3  # the old run has no accuracy: dropped
    assert set(accuracy["task"]) == {"mrpc (accuracy)"}
    assert accuracy["valid_error"].tolist() == frame["valid_error"].iloc[:3].tolist()  # the selection stays F1's
    assert accuracy["test_error"].tolist()[:2] == pytest.approx([0.25, 0.40]) and np.isnan(accuracy["test_error"].iloc[2])
    rel = relative_performance(accuracy, [0.0, 0.5]).set_index("fraction_pruned")
    assert rel.loc[0.0, "relative_performance"] == pytest.approx(1.0)
    assert rel.loc[0.5, "relative_performance"] == pytest.approx(0.60 / 0.75)  # 80%
    assert rel.loc[0.5, "performance"] == pytest.approx(0.60)
    main = relative_performance(frame[frame["run_id"] == "ws-0"], [0.5])
    assert main["relative_performance"].iloc[0] == pytest.approx(0.75 / 0.80)  # 93.75% in F1
    # selecting by validation accuracy instead picks "0.3", which has no test score
    selected = with_metric(frame, "accuracy", select_by_metric=True)
    assert selected["valid_error"].tolist() == pytest.approx([0.20, 0.30, 0.28])
    assert selected["pareto"].tolist() == [True, False, True]
    assert np.isnan(relative_performance(selected, [0.5])["relative_performance"].iloc[0])
    f1 = with_metric(frame, "f1")  # the main metric re-expressed: the same errors
    assert f1["test_error"].iloc[:2].tolist() == pytest.approx(frame["test_error"].iloc[:2].tolist())
    assert with_metric(frame, "mcc").empty


def test_secondary_metric_rows_with_epochs_keep_their_own_best_epoch():
    """Layer-drop rows carry the epoch of their fine-tuning: in one frame with the main-metric rows, the best-epoch
    rule must not pool the two (it did, and layer dropping lost its accuracy column)."""
    from plotting.paper_tables import relative_at, with_secondary_metrics

    frame = mrpc_rows()
    frame = frame[frame["run_id"] == "ws-0"].assign(epoch=1.0)
    frame.loc[frame.index[0], "epoch"] = np.nan  # the unpruned model, not fine-tuned again
    rel = relative_at(with_secondary_metrics(frame, [("mrpc", "accuracy")]), 0.5).set_index("task")
    assert rel.loc["mrpc", "mean"] == pytest.approx(0.75 / 0.80)
    assert rel.loc["mrpc (accuracy)", "mean"] == pytest.approx(0.60 / 0.75)


def test_cross_task_table_gets_an_mrpc_accuracy_column(tmp_path):
    from plotting.paper_tables import DEFAULT_SECONDARY_METRICS, relative_table

    rte = hand_results()
    frame = pd.concat([rte[rte["task"] == "rte"], mrpc_rows()], ignore_index=True)
    table = relative_table(frame, 0.5, secondary_metrics=DEFAULT_SECONDARY_METRICS).table
    assert table.header == ["kind", "method", "mrpc", "mrpc (accuracy)", "rte"]
    row = next(r for r in table.rows if [c.text for c in r[:2]] == ["weight-sharing", "random_search"])
    # mrpc: seeds 0 (93.75%) and 1 (old run: 0.7 / 0.8 = 87.5%); accuracy: seed 0 only
    assert [c.text for c in row[2:4]] == ["90.6 ± 3.1", "80.0 ± –"]
    assert relative_table(frame, 0.5).table.header == ["kind", "method", "mrpc", "rte"]
    assert relative_table(frame, 0.5, secondary_metrics=[("mrpc", "f1")]).table.header == ["kind", "method", "mrpc",
                                                                                             "rte"]
    write_atomic(frame, tmp_path / "results.csv")
    md = write_report(tmp_path / "results.csv", tmp_path / "report",
                      settings=ReportSettings(bootstrap_samples=20, grid_points=10)).read_text()
    section = md.split("## Cross-task tables")[1].split("\n## ")[0]
    assert "| kind | method | mrpc | mrpc (accuracy) | rte |" in section
    assert "mrpc (accuracy)" in (tmp_path / "report" / "tables" / "relative_50.tex").read_text()
    assert "## Task mrpc (accuracy)" not in md  # only the cross-task table gets the column
    args = add_report_arguments(argparse.ArgumentParser()).parse_args(
        [str(tmp_path / "results.csv"), "--out", str(tmp_path / "none"), "--bootstrap-samples", "20",
         "--grid-points", "10", "--secondary-metrics"])
    assert "mrpc (accuracy)" not in run_report(args).read_text()
    with pytest.raises(ValueError, match="TASK:METRIC"):
        run_report(add_report_arguments(argparse.ArgumentParser()).parse_args(
            [str(tmp_path / "results.csv"), "--out", str(tmp_path / "bad"), "--secondary-metrics", "accuracy"]))
