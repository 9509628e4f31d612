"""Weight-sharing search (`plm-nas search`) on a tiny super-network trained on an RTE subset."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import pandas as pd
import pytest

from baselines.searchers.loop import Budget, Evaluation, SearchLoop
from benchmarks.artifacts import check_dataset_seed
from benchmarks.cli import run_command as main  # raises, so a failure shows its traceback
from benchmarks.commands.search import check_searcher
from benchmarks.results import COLUMNS, RESULTS_FILE, pareto_mask, parse_metrics, read_results, task_metrics
from benchmarks.tasks.loaders import load_splits, make_dataloaders, subsample
from benchmarks.tasks.metrics import compute_metrics
from benchmarks.tasks.registry import get_task
from benchmarks.ws.table import Measured, ResultsTable, RunIdentity
from search_spaces import cost_of, get_search_space
from supernet.evaluation import evaluate
from supernet.loading import load_model, load_tokenizer
from supernet.model import SuperNetwork
from supernet.precision import resolve_precision

from conftest import train_tiny_supernet

SAMPLES = 10
SEARCH_FLAGS = ("--max-test-samples", "48", "--threads", "1", "--no-progress")

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def supernet_dir(tmp_path_factory, glue_dir, tiny_bert_dir) -> Path:
    """A super-network trained for one epoch (sandwich, small space) on 32 RTE examples, dataset seed 3."""
    return train_tiny_supernet(tmp_path_factory.mktemp("supernet"), tiny_bert_dir, glue_dir, "small", 40,
                               "--dataset-seed", "3")


def search(supernet_dir: Path, out: Path, *extra: str) -> pd.DataFrame:
    assert main(["search", "--supernet", str(supernet_dir), "--output-dir", str(out), *SEARCH_FLAGS, *extra]) == 0
    return read_results(out / RESULTS_FILE)


@pytest.fixture(scope="module")
def direct(supernet_dir, glue_dir):
    """Scores a config straight from the saved super-network, independently of the search code."""
    folder = supernet_dir / "supernet"
    supernet = SuperNetwork(load_model(str(folder), num_labels=2))
    space = get_search_space("small", supernet.shape)
    splits = load_splits(get_task("rte"), data_dir=glue_dir, seed=3, max_valid_samples=40)
    splits = {"validation": splits["validation"], "test": subsample(splits["test"], 48, 3)}
    loaders = make_dataloaders(get_task("rte"), splits, load_tokenizer(str(folder)), batch_size=32)

    # the search's default precision (auto) on this machine, which every row records
    precision = resolve_precision("auto", "cpu")

    def scores(config: dict, split: str) -> dict:
        result = evaluate(supernet, loaders[split], masks=space.to_masks(config),
                          metrics_fn=functools.partial(compute_metrics, get_task("rte")), precision=precision)
        return result.metrics

    def error(config: dict, split: str) -> float:
        return scores(config, split)["error"]

    error.space = space
    error.scores = scores
    error.precision = precision
    return error


@pytest.mark.parametrize("searcher", ["random_search", "local_search", "morea"])
def test_search_writes_distinct_rows_with_correct_pareto_test_errors(supernet_dir, tmp_path, direct, searcher):
    frame = search(supernet_dir, tmp_path, "--searcher", searcher, "--num-samples", str(SAMPLES),
                   "--size-objective", "mac_fraction")
    space = direct.space
    configs = [json.loads(c) for c in frame["config"]]
    assert tuple(frame.columns) == COLUMNS and len(frame) == SAMPLES
    assert len({json.dumps(c, sort_keys=True) for c in configs}) == SAMPLES  # nothing evaluated twice
    assert configs[:3] == [space.largest(), space.smallest(), space.midpoint()]
    assert set(frame["kind"]) == {"weight-sharing"} and set(frame["strategy"]) == {"sandwich"}
    assert set(frame["size_objective"]) == {"mac_fraction"} and frame["epoch"].isna().all()
    assert set(frame["precision"]) == {direct.precision.name}
    assert frame["runtime_s"].is_monotonic_increasing
    for row, config in zip(frame.itertuples(), configs):
        assert row.mac_fraction == pytest.approx(cost_of(space.shape, space.to_masks(config)).mac_fraction)
    assert frame["pareto"].tolist() == pareto_mask(frame["valid_error"], frame["mac_fraction"])
    # Validation errors of a few rows, and the test error of every Pareto row, scored directly.
    for row, config in list(zip(frame.itertuples(), configs))[:4]:
        assert row.valid_error == pytest.approx(direct(config, "validation"))
    front = frame[frame["pareto"]]
    assert frame.loc[~frame["pareto"], "test_error"].isna().all()
    for row in front.itertuples():
        assert row.test_error == pytest.approx(direct(json.loads(row.config), "test"))
    # Every task metric (RTE: accuracy) of every row on validation and of every front row on test, as the task's
    # metric function gives them for the same sub-network's predictions.
    for row, config in zip(frame.itertuples(), configs):
        valid = parse_metrics(row.valid_metrics)
        assert valid == pytest.approx(task_metrics(direct.scores(config, "validation")))
        assert list(valid) == ["accuracy"] and valid["accuracy"] == pytest.approx(1 - row.valid_error)
        if row.pareto:
            assert parse_metrics(row.test_metrics) == pytest.approx(task_metrics(direct.scores(config, "test")))
        else:
            assert row.test_metrics == ""


def test_resume_continues_exactly_like_an_uninterrupted_run(supernet_dir, tmp_path):
    first = search(supernet_dir, tmp_path / "resumed", "--num-samples", "6", "--searcher", "local_search")
    resumed = search(supernet_dir, tmp_path / "resumed", "--num-samples", "10", "--searcher", "local_search",
                     "--resume")
    straight = search(supernet_dir, tmp_path / "straight", "--num-samples", "10", "--searcher", "local_search")
    assert len(first) == 6 and len(resumed) == 10 and resumed["config"].nunique() == 10
    columns = ["config", "valid_error", "runtime_s"]
    pd.testing.assert_frame_equal(resumed[columns].head(6), first[columns])
    assert resumed["config"].tolist() == straight["config"].tolist()
    assert resumed["valid_error"].tolist() == straight["valid_error"].tolist()
    assert resumed["runtime_s"].iloc[6] > resumed["runtime_s"].iloc[5]
    assert resumed["test_error"].notna().tolist() == resumed["pareto"].tolist()
    assert resumed["valid_metrics"].tolist() == straight["valid_metrics"].tolist()
    assert (resumed["test_metrics"] != "").tolist() == resumed["pareto"].tolist()


def test_guards(supernet_dir, tmp_path):
    with pytest.raises(ValueError, match="moasha.*plm-nas nas"):
        check_searcher("moasha")
    with pytest.raises(ValueError, match="dataset-seed 3"):
        check_dataset_seed(0, 3, force=False)
    assert check_dataset_seed(0, 3, force=True) == 0 and check_dataset_seed(None, 3, force=False) == 3
    with pytest.raises(ValueError, match="dataset-seed"):
        main(["search", "--supernet", str(supernet_dir), "--output-dir", str(tmp_path), "--dataset-seed", "0"])
    search(supernet_dir, tmp_path, "--num-samples", "3")
    with pytest.raises(ValueError, match="--resume"):
        main(["search", "--supernet", str(supernet_dir), "--output-dir", str(tmp_path), "--num-samples", "3"])
    with pytest.raises(ValueError, match="another run"):
        main(["search", "--supernet", str(supernet_dir), "--output-dir", str(tmp_path), "--num-samples", "4",
              "--searcher", "nsga2", "--resume", *SEARCH_FLAGS])
    other_subset = [flag if flag != "48" else "40" for flag in SEARCH_FLAGS]  # --max-test-samples 40
    with pytest.raises(ValueError, match="scored differently.*max_test_samples"):
        main(["search", "--supernet", str(supernet_dir), "--output-dir", str(tmp_path), "--num-samples", "4",
              "--resume", *other_subset])


# ------------------------------------------------------------------------------- the loop without a model


def layer_space_loop(searcher: str, calls: list[dict], evaluations=()) -> SearchLoop:
    """A search over the 4 configs of the ``layer`` space of a 2-layer model, scored by a counting function."""
    from baselines.searchers import AskTellSearch, make_scheduler
    from search_spaces.shape import ModelShape

    shape = ModelShape("bert", 2, 4, 8, 32, 16, 100, 64, 2)
    space = get_search_space("layer", shape)
    metrics = ["valid_error", "param_fraction"]

    def make_search(recorded):
        points = list(recorded or [space.largest(), space.smallest()])
        return AskTellSearch(make_scheduler(searcher, space.config_space, metrics=metrics,
                                            points_to_evaluate=points, random_seed=0, mode="weight-sharing"))

    def score(config: dict) -> float:
        calls.append(config)
        return 0.1 * config["layer_0"] + 0.2 * config["layer_1"]

    return SearchLoop(make_search, score=score, size=lambda c: float(sum(c.values())), metrics=metrics,
                      evaluations=list(evaluations), max_repeats=5)


def test_repeated_proposals_are_told_from_the_cache_not_evaluated():
    calls: list[dict] = []
    loop = layer_space_loop("random_search", calls)
    loop.run(Budget(num_samples=10))
    keys = [json.dumps(c, sort_keys=True) for c in calls]
    assert len(keys) == len(set(keys)) == len(loop.evaluations) == 4  # the whole space, each config once
    assert loop.num_repeats == 5  # then the searcher only repeats itself, and the loop gives up


def test_replay_falls_back_to_recorded_configs_when_the_searcher_diverges():
    calls: list[dict] = []
    recorded = layer_space_loop("random_search", calls)
    recorded.run(Budget(num_samples=3))
    # Pretend the file was written by another seed: swap the order of the last two rows.
    rows = recorded.evaluations[:1] + recorded.evaluations[1:][::-1]
    calls.clear()
    loop = layer_space_loop("random_search", calls, evaluations=rows)
    loop.run(Budget(num_samples=4))
    assert not loop.exact_replay
    assert [e.config for e in loop.evaluations[:3]] == [e.config for e in rows]
    assert len(calls) == 1 and calls[0] not in [e.config for e in rows]


def test_results_table_marks_the_front_and_bounds_its_writing_time(tmp_path):
    from baselines.searchers.ask_tell import config_key
    from benchmarks.objectives import CostFields

    identity = RunIdentity(run_id="r", searcher="random_search", search_space="layer", strategy="sandwich",
                           task="rte", model="m", seed=0, size_objective="param_fraction")

    def cost(config: dict) -> CostFields:
        fraction = sum(config.values()) / 4
        return CostFields(params=int(100 * fraction), param_fraction=fraction, encoder_param_fraction=fraction,
                          macs=int(100 * fraction), mac_fraction=fraction)

    configs = [{"a": 1, "b": 1}, {"a": 1, "b": 0}, {"a": 0, "b": 1}]  # sizes 0.5, 0.25, 0.25
    evaluations = [Evaluation(c, e, float(i)) for i, (c, e) in enumerate(zip(configs, [0.2, 0.3, 0.4]))]
    table = ResultsTable(identity, cost, tmp_path / "results.csv")
    tested = Measured(test_errors={config_key(configs[1]): 0.35, config_key(configs[2]): 0.45},
                      valid_metrics={config_key(c): {"accuracy": 1 - e} for c, e in zip(configs, [0.2, 0.3, 0.4])},
                      test_metrics={config_key(configs[1]): {"accuracy": 0.65}, config_key(configs[2]): {"accuracy": 0.55}})
    frame = table.write(evaluations[:2], tested)
    assert frame["pareto"].tolist() == [True, True] and frame["test_error"].isna().tolist() == [True, False]
    assert frame["test_metrics"].tolist() == ["", '{"accuracy": 0.65}']
    table._last_duration = 3600.0  # pretend the last write took an hour: the next one waits
    assert table.write(evaluations, tested) is None
    assert len(read_results(tmp_path / "results.csv")) == 2
    frame = table.write(evaluations, tested, force=True)
    assert frame["pareto"].tolist() == [True, True, False]  # (0.4, 0.25) is dominated by (0.3, 0.25)
    assert frame["test_error"].tolist()[1] == 0.35 and pd.isna(frame["test_error"].tolist()[2])
    assert frame["test_metrics"].tolist()[2] == ""  # off the front: no test scores
    written = read_results(tmp_path / "results.csv")
    assert written["valid_error"].tolist() == [0.2, 0.3, 0.4]
    assert [parse_metrics(cell) for cell in written["valid_metrics"]] == [{"accuracy": 0.8}, {"accuracy": 0.7},
                                                                          {"accuracy": 0.6}]
