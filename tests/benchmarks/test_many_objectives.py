"""Searches with more than two objectives: n-D fronts, the loop's metrics, the report's n-D hypervolume."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.cli import main as cli
from benchmarks.cli import run_command as main
from benchmarks.results import pareto_mask_nd, read_results
from plotting.many_objectives import nd_hypervolume

from conftest import train_tiny_supernet

pytestmark = pytest.mark.usefixtures("one_thread")


def test_pareto_front_in_three_objectives_by_hand():
    points = np.array([[0.1, 0.9, 0.5], [0.2, 0.2, 0.9], [0.3, 0.3, 0.95], [0.1, 0.9, 0.5], [0.5, 0.5, 0.1],
                       [0.6, 0.6, 0.2]])
    # row 2 is dominated by row 1; row 3 equals row 0 (the first is kept); row 5 by row 4
    assert pareto_mask_nd(points) == [True, True, False, False, True, False]


def test_three_dimensional_hypervolume_by_hand():
    # two boxes against reference (1, 1, 1): [0.5,1]^3 (0.125) and [0,1]x[0.5,1]x[0.75,1] (0.125), overlap 0.0625
    points = np.array([[0.5, 0.5, 0.5], [0.0, 0.5, 0.75]])
    assert nd_hypervolume(points, np.ones(3)) == pytest.approx(0.125 + 0.125 - 0.0625)
    assert nd_hypervolume(np.array([[1.5, 0.0, 0.0]]), np.ones(3)) == 0.0


def test_a_search_with_three_objectives(tiny_bert_dir, glue_dir, tmp_path, capsys):
    supernet = train_tiny_supernet(tmp_path / "sn", tiny_bert_dir, glue_dir, "medium", 24)
    common = ["search", "--supernet", str(supernet), "--num-samples", "8", "--threads", "1", "--no-progress",
              "--max-test-samples", "24"]
    out = tmp_path / "three"
    assert main([*common, "--output-dir", str(out), "--searcher", "nsga2", "--objectives", "valid_error",
                 "mac_fraction", "param_fraction"]) == 0
    frame = read_results(out / "results.csv")
    assert set(frame["objectives"]) == {"valid_error,mac_fraction,param_fraction"}
    assert set(frame["size_objective"]) == {"mac_fraction"}
    columns = ["valid_error", "mac_fraction", "param_fraction"]
    assert frame["pareto"].tolist() == pareto_mask_nd(frame[columns].to_numpy())
    assert frame.loc[frame["pareto"], "test_error"].notna().all()
    report = main(["report", str(out), "--out", str(tmp_path / "report")])
    assert report == 0
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## More than two objectives" in text and "n-D hypervolume" in text
    assert any(p.name.startswith("projections_") for p in (tmp_path / "report" / "figures").iterdir())
    # refused: a searcher of two objectives, an unknown objective, valid_error not first
    for extra, message in ((["--searcher", "rsbo", "--objectives", "valid_error", "mac_fraction", "param_fraction"],
                            "takes two objectives"),
                           (["--objectives", "valid_error", "flops"], "unknown size objective"),
                           (["--objectives", "mac_fraction", "valid_error"], "starts with valid_error")):
        assert cli([*common, "--output-dir", str(tmp_path / "refused"), *extra]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()
