"""`plm-nas export`: picking rows of a results table and extracting them from the super-network."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from benchmarks.cli import run_command as main  # raises, so a failure shows its traceback
from benchmarks.commands.export import EXPORT_FILE, SUBNETWORK_FILE, Pick, pick_rows
from benchmarks.results import RESULTS_FILE, ResultRow, parse_metrics, read_results, rows_to_frame
from search_spaces import get_search_space
from supernet.extract import load_extracted, load_extracted_masks
from supernet.loading import load_model, load_tokenizer
from supernet.model import SuperNetwork

from conftest import train_tiny_supernet

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def search_run(tmp_path_factory, glue_dir, tiny_bert_dir) -> tuple[Path, Path]:
    """(super-network folder, search folder): a briefly trained tiny super-network and an 8-sample search."""
    supernet = train_tiny_supernet(tmp_path_factory.mktemp("supernet"), tiny_bert_dir, glue_dir, "medium", 32)
    search = tmp_path_factory.mktemp("search")
    assert main([
        "search", "--supernet", str(supernet), "--output-dir", str(search), "--num-samples", "8",
        "--size-objective", "encoder_param_fraction", "--max-test-samples", "32", "--threads", "1", "--no-progress",
    ]) == 0
    return supernet, search


def test_exported_models_match_their_rows_and_the_supernetworks_sub_networks(search_run, tmp_path):
    supernet_dir, search_dir = search_run
    assert main(["export", "--results", str(search_dir), "--pick", "pareto", "--supernet", str(supernet_dir),
                 "--out", str(tmp_path)]) == 0
    frame = read_results(search_dir / RESULTS_FILE)
    front = frame[frame["pareto"]]
    listing = json.loads((tmp_path / EXPORT_FILE).read_text())["models"]
    assert len(listing) == len(front) >= 2
    supernet = SuperNetwork(load_model(str(supernet_dir / "supernet"), num_labels=2)).eval()
    space = get_search_space("medium", supernet.shape)
    tokenizer = load_tokenizer(str(supernet_dir / "supernet"))
    batch = tokenizer(["A man plays a guitar.", "Nobody is here at all"], ["Someone makes music.", "Empty"],
                      padding=True, return_tensors="pt")
    for entry in listing:
        folder = tmp_path / entry["name"]
        record = json.loads((folder / SUBNETWORK_FILE).read_text())
        row = front[front["config"].map(json.loads) == record["config"]].iloc[0]
        model = load_extracted(folder)
        assert sum(p.numel() for p in model.parameters()) == record["params"] == row["params"]
        assert record["valid_error"] == pytest.approx(row["valid_error"])
        assert record["test_error"] == pytest.approx(row["test_error"])
        assert record["test_metrics"] == parse_metrics(row["test_metrics"]) != {}  # every task metric, as JSON
        assert record["valid_metrics"] == parse_metrics(row["valid_metrics"]) != {}
        masks = space.to_masks(record["config"])
        assert record["masks"] == masks.to_dict() == load_extracted_masks(folder).to_dict()
        with torch.no_grad(), supernet.sub_network(masks):
            expected = supernet(**batch).logits
        with torch.no_grad():
            torch.testing.assert_close(model(**batch).logits, expected, atol=1e-5, rtol=1e-4)


def test_threshold_picks_on_a_real_front(search_run, tmp_path):
    supernet_dir, search_dir = search_run
    frame = read_results(search_dir / RESULTS_FILE)
    front = frame[frame["pareto"]].sort_values("encoder_param_fraction")
    middle = front.iloc[len(front) // 2]
    smallest = pick_rows(frame, Pick("smallest-within", float(middle["valid_error"])))
    assert smallest["config"].tolist() == [middle["config"]]
    largest = pick_rows(frame, Pick("largest-within", float(middle["encoder_param_fraction"])))
    assert largest["config"].tolist() == [middle["config"]]
    assert main(["export", "--results", str(search_dir / RESULTS_FILE), "--pick", "largest-within",
                 str(middle["encoder_param_fraction"]), "--supernet", str(supernet_dir), "--out", str(tmp_path)]) == 0
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == [f"subnet-00-params{int(middle['params'])}"]


# ------------------------------------------------------------------------------------- picks on toy tables


def toy_frame(kind: str = "weight-sharing", epochs: bool = False) -> pd.DataFrame:
    """Five sub-networks: (valid_error, param_fraction) = a (.1, .9), b (.2, .5), c (.3, .6), d (.4, .2), e (.5, .2)."""
    points = {"a": (0.1, 0.9), "b": (0.2, 0.5), "c": (0.3, 0.6), "d": (0.4, 0.2), "e": (0.5, 0.2)}
    rows = [
        ResultRow(run_id="r", kind=kind, method="m", task="rte", model="tiny", seed=0, config={"x": name},
                  valid_error=err, params=int(size * 100), param_fraction=size, encoder_param_fraction=size,
                  macs=size, mac_fraction=size, runtime_s=float(i), epoch=1.0 if epochs else float("nan"))
        for i, (name, (err, size)) in enumerate(points.items())
    ]
    return rows_to_frame(rows)


def names(frame: pd.DataFrame) -> list[str]:
    return [json.loads(c)["x"] for c in frame["config"]]


def test_picks_choose_from_the_front_smallest_first():
    frame = toy_frame()
    assert names(pick_rows(frame, Pick("pareto"))) == ["d", "b", "a"]
    assert names(pick_rows(frame, Pick("smallest-within", 0.25))) == ["b"]
    assert names(pick_rows(frame, Pick("smallest-within", 0.45))) == ["d"]
    assert names(pick_rows(frame, Pick("largest-within", 0.55))) == ["b"]  # the most accurate within size 0.55
    assert names(pick_rows(frame, Pick("largest-within", 1.0))) == ["a"]
    with pytest.raises(ValueError, match="no sub-network satisfies"):
        pick_rows(frame, Pick("smallest-within", 0.05))


def test_pick_parsing_names_the_choices():
    assert Pick.parse(["pareto"]) == Pick("pareto")
    assert Pick.parse(["largest-within", "0.5"]) == Pick("largest-within", 0.5)
    with pytest.raises(ValueError, match="pareto, smallest-within ERR, largest-within SIZE"):
        Pick.parse(["best"])
    with pytest.raises(ValueError, match="takes one value"):
        Pick.parse(["smallest-within"])
    with pytest.raises(ValueError, match="takes no value"):
        Pick.parse(["pareto", "1"])


def test_standard_rows_without_saved_models_explain_save_models(tmp_path):
    frame = toy_frame(kind="standard", epochs=True)
    frame.to_csv(tmp_path / RESULTS_FILE, index=False)
    with pytest.raises(ValueError, match="--save-models"):
        main(["export", "--results", str(tmp_path), "--pick", "pareto", "--out", str(tmp_path / "out")])


def test_several_runs_need_a_run_id():
    frame = pd.concat([toy_frame(), toy_frame().assign(run_id="other")], ignore_index=True)
    with pytest.raises(ValueError, match="--run-id"):
        pick_rows(frame, Pick("pareto"))
    assert names(pick_rows(frame, Pick("pareto"), run_id="other")) == ["d", "b", "a"]
