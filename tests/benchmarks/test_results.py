"""Atomic writing of result files and model folders."""
from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.files import write_folder_atomic


def test_a_folder_save_that_fails_leaves_the_previous_folder(tmp_path):
    target = tmp_path / "best_model"

    def save(text: str):
        def fill(folder: Path) -> None:
            folder.mkdir()
            (folder / "a.txt").write_text(text)
            if text == "broken":
                raise RuntimeError("killed while saving")
            (folder / "b.txt").write_text(text)
        return fill

    write_folder_atomic(target, save("first"))
    with pytest.raises(RuntimeError):
        write_folder_atomic(target, save("broken"))
    assert {p.name: p.read_text() for p in target.iterdir()} == {"a.txt": "first", "b.txt": "first"}
    write_folder_atomic(target, save("second"))
    assert {p.name: p.read_text() for p in target.iterdir()} == {"a.txt": "second", "b.txt": "second"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best_model"]


def _pareto_by_definition(errors, sizes):
    """The definition, pairwise: dominated by a better-or-equal point that is strictly better or comes first."""
    flags = []
    for i, (e, s) in enumerate(zip(errors, sizes)):
        flags.append(not any(
            e2 <= e and s2 <= s and (e2 < e or s2 < s or j < i)
            for j, (e2, s2) in enumerate(zip(errors, sizes)) if j != i
        ))
    return flags


def test_pareto_mask_equals_the_pairwise_definition_with_ties_and_nans():
    import numpy as np

    from benchmarks.results import pareto_mask

    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(0, 25))
        errors = rng.integers(0, 5, n).astype(float)  # few values: many ties and duplicates
        sizes = rng.integers(0, 5, n).astype(float)
        errors[rng.random(n) < 0.1] = np.nan
        assert pareto_mask(errors, sizes) == _pareto_by_definition(errors.tolist(), sizes.tolist())
    assert pareto_mask([0.2, 0.2, 0.1], [0.5, 0.5, 0.9]) == [True, False, True]  # the first of equal points


def test_report_takes_extra_sections_through_its_api(tmp_path):
    import pandas as pd

    from benchmarks.results import COLUMNS, write_atomic
    from plotting.document import Cell, Paragraph, Section, Table
    from plotting.report import write_report

    rows = [{**{c: "" for c in COLUMNS}, "run_id": "r", "kind": "weight-sharing", "method": "random_search",
             "task": "rte", "model": "m", "seed": 0, "config": "{}", "valid_error": e, "test_error": e,
             "params": 10, "param_fraction": f, "encoder_param_fraction": f, "macs": 1.0, "mac_fraction": f,
             "size_objective": "param_fraction", "runtime_s": float(i), "epoch": float("nan"), "pareto": True}
            for i, (e, f) in enumerate([(0.3, 1.0), (0.4, 0.5)])]
    write_atomic(pd.DataFrame(rows, columns=list(COLUMNS)), tmp_path / "run" / "results.csv")
    extra = Section("Extracted models", [Paragraph("measured here"), Table(["model"], [[Cell("subnet-00")]])])
    md = write_report(tmp_path / "run", tmp_path / "report", sections=[extra]).read_text()
    assert md.rstrip().endswith("| subnet-00 |") and "## Extracted models\n\nmeasured here" in md
    page = (tmp_path / "report" / "report.html").read_text()
    assert page.index("<h2>Extracted models</h2>") < page.index("<td>subnet-00</td>") < page.index("</body>")
