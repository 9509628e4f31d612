"""The searchers grid's summary: per-search hypervolumes from results tables, tests per scope, the second
super-network's effect, computed by hand on made-up numbers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.studies.searchers import comparison_table, main, run_hypervolumes, summary_markdown, supernet_effect


def values_frame(finals: dict[tuple[str, int], list[float]]) -> pd.DataFrame:
    """Final hypervolumes (budget 0) per (searcher, supernet): one per searcher seed."""
    records = []
    for (searcher, supernet), hvs in finals.items():
        for seed, hv in enumerate(hvs):
            run = f"ws-sandwich-{searcher}-small-sst2-supernet{supernet}-seed{seed}"
            records.append({"task": "sst2", "searcher": searcher, "supernet": supernet, "seed": seed, "budget": 0,
                            "hypervolume": hv, "run_id": run,
                            "block": f"sst2/ws-sandwich-*-small-sst2-supernet{supernet}-seed{seed}"})
    return pd.DataFrame.from_records(records)


def test_comparison_and_supernet_effect_by_hand():
    good, bad = [3.0, 3.1, 3.2, 3.3, 3.4], [2.0, 2.1, 2.2, 2.3, 2.4]
    values = values_frame({("ehvi", 0): good, ("random_search", 0): bad, ("nsga2", 0): [2.5] * 5,
                           ("ehvi", 1): [2.9, 3.0, 3.1], ("random_search", 1): [2.0, 2.1, 2.2]})
    rows, verdict = comparison_table(values[values["supernet"] == 0])
    assert rows[0].startswith("| ehvi | 5 | 3.2000 |") and rows[-1].startswith("| random_search | 5 | 2.2000 |")
    assert rows[0].endswith("| 1.00 |") and "| 2.00 |" in rows[1] and rows[-1].endswith("| 3.00 |")
    assert "over 5 blocks" in verdict and "ehvi > random_search" in verdict  # 2 ranks apart in every block
    effect = supernet_effect(values).set_index("searcher")
    assert list(effect.index) == ["ehvi", "random_search"]  # nsga2 never ran on the second super-network
    # on the shared seeds 0-2: ehvi 3.1 vs 3.0, pooled s.d. of (3.0, 3.1, 3.2) and (2.9, 3.0, 3.1) = 0.1
    assert effect.loc["ehvi", "supernet0"] == pytest.approx(3.1) and effect.loc["ehvi", "supernet1"] == pytest.approx(3.0)
    assert effect.loc["ehvi", "difference"] == pytest.approx(-0.1) and effect.loc["ehvi", "seed_sd"] == pytest.approx(0.1)
    assert effect.loc["random_search", "difference"] == pytest.approx(0.0)
    text = summary_markdown(values)
    assert "| sst2 | ehvi | 3 | 3.1000 | 3.0000 | -0.1000 | 0.1000 | 1.00 |" in text
    # three blocks on the second super-network are too few for a test, and the summary says so
    assert "second super-network alone, at the end: fewer complete blocks than the test needs (3)" in text


def results_rows(searcher: str, supernet: int, seed: int, errors: list[float]) -> pd.DataFrame:
    sizes = np.linspace(1.0, 0.2, len(errors))
    return pd.DataFrame({
        "run_id": f"ws-sandwich-{searcher}-small-sst2-supernet{supernet}-seed{seed}", "kind": "weight-sharing",
        "method": searcher, "searcher": searcher, "search_space": "small", "strategy": "sandwich", "task": "sst2",
        "model": "minilm", "seed": seed, "config": "{}", "valid_error": errors,
        "test_error": [error + 0.05 for error in errors],
        "mac_fraction": sizes, "macs": sizes * 1e9, "params": 1000, "param_fraction": sizes,
        "encoder_param_fraction": sizes, "size_objective": "mac_fraction", "epoch": np.nan, "pareto": False,
        "runtime_s": np.arange(1.0, len(errors) + 1), "objectives": np.nan})


def test_the_study_reads_finished_searches_only_and_orders_a_dominating_searcher_first(tmp_path):
    root = tmp_path / "grid"
    for seed in range(5):
        for searcher, errors in (("ehvi", [0.10, 0.12, 0.20]), ("random_search", [0.15, 0.18, 0.30])):
            out = root / "weight-sharing" / searcher / f"seed{seed}"
            out.mkdir(parents=True)
            results_rows(searcher, 0, seed, [e + 0.001 * seed for e in errors]).to_csv(out / "results.csv",
                                                                                     index=False)
            (out / "DONE").write_text("x")
    unfinished = root / "weight-sharing" / "rsbo" / "seed0"
    unfinished.mkdir(parents=True)
    results_rows("rsbo", 0, 0, [0.01, 0.02]).to_csv(unfinished / "results.csv", index=False)
    finetuned = root / "finetuned" / "sst2" / "minilm" / "seed0"
    finetuned.mkdir(parents=True)
    (finetuned / "metrics.json").write_text('{"test": {"main": 0.9}}')
    assert main([str(root), "--out", str(tmp_path / "out")]) == 0
    table = pd.read_csv(tmp_path / "out" / "hypervolumes.csv")
    assert set(table["searcher"]) == {"ehvi", "random_search"} and set(table["budget"]) == {0, 25}
    assert len(table) == 2 * 5 * 2 and set(table["supernet"]) == {0}
    final = table[table["budget"] == 0].groupby("searcher")["hypervolume"].mean()
    assert final["ehvi"] > final["random_search"]  # every ehvi point dominates the random search's
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| ehvi | 5 |" in summary and "Friedman p" in summary  # two methods: Wilcoxon, reported the same way
    # at 25% pruned the best-validation member within 75% of the MACs is the middle one (size 0.6): its test error
    # is valid + 0.05, + 0.001 x seed, so on average 0.172 (ehvi) and 0.232 (random search), against 0.9
    assert "| ehvi | 5 | 92.0 |" in summary and "| random_search | 5 | 85.3 |" in summary
    relative = pd.read_csv(tmp_path / "out" / "relative.csv")
    seed0 = relative[(relative["run_id"].str.contains("ehvi")) & relative["run_id"].str.endswith("seed0")]
    assert seed0.set_index("fraction_pruned")["hypervolume"].to_dict() == pytest.approx(
        {0.25: 100 * 0.83 / 0.9, 0.5: 100 * 0.75 / 0.9, 0.75: 100 * 0.75 / 0.9})
    with pytest.raises(SystemExit, match="does not end in -supernetN-seedM"):
        rows = results_rows("ehvi", 0, 0, [0.1]).assign(run_id="some-other-run")
        run_hypervolumes(rows)


def test_no_post_hoc_pairs_without_a_significant_friedman_test():
    # ranks that change from seed to seed: Friedman finds nothing, so no pair is reported either
    values = values_frame({("a", 0): [3.0, 2.0, 1.0, 3.0, 2.0], ("b", 0): [2.0, 3.0, 2.0, 1.0, 1.0],
                           ("c", 0): [1.0, 1.0, 3.0, 2.0, 3.0]})
    _, verdict = comparison_table(values)
    assert verdict.startswith("Friedman p = ") and verdict.endswith("no significant difference") and ">" not in verdict
