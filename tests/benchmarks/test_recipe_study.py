"""The recipe study's driver: its plan keeps each variant's definition and its summary averages seeds correctly."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmarks.studies.recipe import plan, summary_markdown, variant_of


def test_plan_states_where_each_super_network_starts():
    steps = {step.key: step for step in plan(Path("/r"), ["mrpc"], [1], ["current", "init-kd"], ["nsga2"])}
    current = steps["supernet current mrpc/seed1"].command
    assert current[current.index("--init-from") + 1] == "pretrained"  # not the command's default (the recipe)
    recipe = steps["supernet init-kd mrpc/seed1"]
    assert recipe.command[recipe.command.index("--init-from") + 1] == "/r/finetuned/mrpc/seed1/best_model"
    assert recipe.needs == Path("/r/finetuned/mrpc/seed1")
    assert list(steps)[:2] == ["finetune mrpc/seed1", "rfp mrpc/seed1"]


def test_summary_gives_mean_and_standard_error_over_seeds():
    table = pd.DataFrame({
        "task": ["stsb"] * 3, "metric": ["main"] * 3, "method": ["init-kd-nsga2", "init-kd-nsga2", "rfp"],
        "seed": [0, 1, 0], "fraction_pruned": [0.5] * 3, "relative_performance": [0.98, 1.00, 0.95],
    })
    lines = summary_markdown(table).splitlines()
    # mean 99.0, s.e. = std (0.01414) / sqrt(2) = 1.0 points; one seed has no standard error
    assert lines[2] == "| stsb | main | init-kd-nsga2 | 2 | 99.0 ± 1.0 |"
    assert lines[3] == "| stsb | main | rfp | 1 | 95.0 |"
    assert [variant_of(m) for m in ("init-kd-3ep-random_search", "current-ehvi", "rfp")] == ["init-kd-3ep", "current",
                                                                                          "rfp"]
