"""The recipe study's driver: its plan keeps each variant's definition and its summary averages seeds correctly."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmarks.studies.recipe import data_arguments, plan, summary_markdown, variant_of


def test_plan_states_where_each_super_network_starts():
    steps = {step.key: step for step in plan(Path("/r"), ["mrpc"], [1], ["current", "init-kd"], ["nsga2"])}
    current = steps["supernet current mrpc/seed1"].command
    assert current[current.index("--init-from") + 1] == "pretrained"  # not the command's default (the recipe)
    recipe = steps["supernet init-kd mrpc/seed1"]
    assert recipe.command[recipe.command.index("--init-from") + 1] == "/r/finetuned/mrpc/seed1/best_model"
    assert recipe.needs == Path("/r/finetuned/mrpc/seed1")
    assert list(steps)[:2] == ["finetune mrpc/seed1", "rfp mrpc/seed1"]


def test_min_train_words_reaches_every_training_step_and_no_search():
    steps = plan(Path("/r"), ["sst2"], [0], ["init-kd"], ["nsga2"], data_arguments("/glue", 10))
    training = {step.key: step.command for step in steps if not step.key.startswith("search ")}
    assert sorted(training) == ["finetune sst2/seed0", "rfp sst2/seed0", "supernet init-kd sst2/seed0"]
    for command in training.values():
        assert command[command.index("--min-train-words") + 1] == "10"
        assert command[command.index("--data-dir") + 1] == "/glue"
        assert command[command.index("--max-train-samples") + 1] == "5000"  # the task's own cap stays
    (search,) = [step.command for step in steps if step.key.startswith("search ")]
    assert "--min-train-words" not in search and "--data-dir" not in search
    assert data_arguments(None, None) == () and data_arguments(None, 0) == ("--min-train-words", "0")


def test_rfp_on_sentence_like_examples_is_a_baseline_of_its_own():
    steps = {step.key: step for step in plan(Path("/r"), ["sst2"], [2], ["init-kd"], ["ehvi"],
                                             rfp_variants=("rfp", "rfp-sentences"))}
    plain, sentences = steps["rfp sst2/seed2"], steps["rfp-sentences sst2/seed2"]
    assert "--min-train-words" not in plain.command
    assert sentences.command[sentences.command.index("--min-train-words") + 1] == "10"
    assert sentences.output_dir == Path("/r/baselines/sst2/rfp-sentences/seed2") and sentences.needs == plain.needs
    assert variant_of("rfp-sentences") == "rfp"  # exported and kept with the plain one


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


def test_an_export_adds_to_an_earlier_one(tmp_path, monkeypatch):
    """Exporting one variant into a folder with earlier exports keeps their rows (other variants, other steps)
    and replaces only what it exports again."""
    from benchmarks.studies import recipe

    dest = tmp_path / "dest"
    dest.mkdir()
    earlier = pd.DataFrame({"task": ["sst2"] * 3, "metric": ["main"] * 3,
                            "method": ["init-random_search", "init-kd-hidden-nsga2", "rfp"], "seed": [0, 0, 0],
                            "fraction_pruned": [0.5] * 3, "relative_performance": [0.9, 0.1, 0.95]})
    earlier.to_csv(dest / "relative.csv", index=False)
    pd.DataFrame({"step": ["supernet init sst2/seed0", "supernet init-kd-hidden sst2/seed0"],
                  "seconds": [10.0, 1.0]}).to_csv(dest / "cost.csv", index=False)
    fresh = pd.DataFrame({"task": ["sst2"] * 2, "metric": ["main"] * 2, "method": ["init-kd-hidden-nsga2", "rfp"],
                          "seed": [0, 0], "fraction_pruned": [0.5] * 2, "relative_performance": [0.96, 0.97]})
    monkeypatch.setattr(recipe, "export_results", lambda steps, root, dest: None)
    monkeypatch.setattr(recipe, "relative_table", lambda root: fresh)
    monkeypatch.setattr(recipe, "cost_table", lambda steps: pd.DataFrame(
        {"step": ["supernet init-kd-hidden sst2/seed0"], "seconds": [900.0]}))
    recipe.export_study([], tmp_path, dest, ["init-kd-hidden"], baselines=False)
    table = pd.read_csv(dest / "relative.csv").set_index("method")["relative_performance"].to_dict()
    assert table == {"init-random_search": 0.9, "init-kd-hidden-nsga2": 0.96, "rfp": 0.97}
    cost = pd.read_csv(dest / "cost.csv").set_index("step")["seconds"].to_dict()
    assert cost == {"supernet init sst2/seed0": 10.0, "supernet init-kd-hidden sst2/seed0": 900.0}
    assert "| sst2 | main | init-random_search | 1 | 90.0 |" in (dest / "relative.md").read_text()
