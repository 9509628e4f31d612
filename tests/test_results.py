"""Atomic writing of result files and model folders."""
from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.results import write_folder_atomic


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
