"""Your own data from the command line: fine-tune, train a super-network, search, export and prune on a CSV file.

The task definition (files with SHA-256, columns, label names, metric) is stored with every run, so the later
commands rebuild it untold; every saved model carries the real label names; a changed file is refused.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.cli import main, run_command

pytestmark = pytest.mark.usefixtures("one_thread")

WORDS = {"good": ["great", "lovely", "fine", "superb"], "bad": ["awful", "poor", "dull", "broken"]}


def write_reviews(path: Path, n: int, offset: int = 0, extra: str = "") -> Path:
    """A CSV of short reviews labelled good/bad, with a comma inside quoted text."""
    rows = ["review,verdict"]
    for i in range(offset, offset + n):
        label = "good" if i % 2 else "bad"
        rows.append(f'"a {WORDS[label][i % 4]} film, number {i}",{label}')
    path.write_text("\n".join(rows) + "\n" + extra)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("reviews")
    write_reviews(folder / "train.csv", 40)
    write_reviews(folder / "test.csv", 12, offset=100)
    return folder


def data_args(folder: Path, *extra: str) -> list[str]:
    return ["--train-file", str(folder / "train.csv"), "--test-file", str(folder / "test.csv"),
            "--text-columns", "review", "--label-column", "verdict", "--task", "reviews", *extra]


def train_args(model: Path, out: Path) -> list[str]:
    return ["--model", str(model), "--output-dir", str(out), "--epochs", "1", "--batch-size", "8", "--lr", "1e-3",
            "--threads", "1", "--no-progress"]


def labels_of(model_dir: Path) -> dict[str, str]:
    return json.loads((model_dir / "config.json").read_text())["id2label"]


def test_finetune_and_prune_on_your_own_data(tiny_bert_dir, data, tmp_path, capsys):
    ft = tmp_path / "ft"
    assert run_command(["finetune", *train_args(tiny_bert_dir, ft), *data_args(data, "--positive-label", "good"),
                        "--dataset-seed", "3"]) == 0
    assert "classification into bad, good (inferred" in capsys.readouterr().out
    assert labels_of(ft / "best_model") == {"0": "bad", "1": "good"}
    stored = json.loads((ft / "best_model" / "task.json").read_text())
    assert stored["dataset_seed"] == 3 and stored["label_names"] == ["bad", "good"] and stored["positive_label"] == 1
    assert stored["files"]["train"]["sha256"] and json.loads((ft / "task.json").read_text())["name"] == "reviews"

    # prune rebuilds the task and the split seed from the model folder: no --task, no files, no --dataset-seed
    out = tmp_path / "prune"
    assert run_command(["prune", "--method", "rfp", "--finetuned", str(ft), "--output-dir", str(out), "--budgets",
                        "0.5", "--num-samples", "8", "--threads", "1", "--no-progress"]) == 0
    run_info = json.loads((out / "run.json").read_text())
    assert run_info["dataset_seed"] == 3
    import pandas as pd

    assert set(pd.read_csv(out / "results.csv")["task"]) == {"reviews"}


def test_supernet_search_and_export_rebuild_the_task(tiny_bert_dir, data, tmp_path, capsys):
    sn = tmp_path / "sn"
    assert run_command(["train-supernet", *train_args(tiny_bert_dir, sn), *data_args(data)]) == 0
    assert labels_of(sn / "supernet") == {"0": "bad", "1": "good"}
    search = tmp_path / "search"
    assert run_command(["search", "--supernet", str(sn), "--output-dir", str(search), "--num-samples", "3",
                        "--threads", "1", "--no-progress"]) == 0
    models = tmp_path / "models"
    assert run_command(["export", "--results", str(search), "--pick", "pareto", "--supernet", str(sn),
                        "--out", str(models)]) == 0
    exported = [folder for folder in models.iterdir() if folder.is_dir()]
    assert exported and all(labels_of(folder) == {"0": "bad", "1": "good"} for folder in exported)

    # An edited config.json (here: one more layer, whose weights would be initialised at random) is refused.
    config_path = sn / "supernet" / "config.json"
    config_text = config_path.read_text()
    try:
        config = json.loads(config_text)
        config_path.write_text(json.dumps({**config, "num_hidden_layers": config["num_hidden_layers"] + 1}))
        capsys.readouterr()
        assert main(["search", "--supernet", str(sn), "--output-dir", str(tmp_path / "again")]) == 2
        assert "was edited" in capsys.readouterr().err and not (tmp_path / "again").exists()
    finally:
        config_path.write_text(config_text)

    # A changed data file is refused before anything is written.
    train = data / "train.csv"
    original = train.read_text()
    try:
        train.write_text(original.replace("number 1\"", "number one\""))
        capsys.readouterr()
        assert main(["search", "--supernet", str(sn), "--output-dir", str(tmp_path / "again"), "--num-samples",
                     "2"]) == 2
        err = capsys.readouterr().err
        assert "changed since" in err and "train.csv" in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "again").exists()
    finally:
        train.write_text(original)


BAD_DATA = [  # (what, how the training file is written, extra options, part of the one error line)
    ("label seen only in test", None, ["--test-file", "TEST_WITH_NEW_LABEL"], "not in the training file"),
    ("empty label", lambda p: write_reviews(p, 10, extra='"no verdict",\n'), [], "empty label"),
    ("single class", lambda p: p.write_text("review,verdict\na,good\nb,good\n"), [], "single class"),
    ("missing column", lambda p: p.write_text("text,verdict\na,good\nb,bad\n"), [], "lacks the columns"),
    ("unparsable CSV", lambda p: p.write_text('review,verdict\n"open quote,good\n'), [], "train.csv"),
    ("unknown metric", lambda p: write_reviews(p, 10), ["--metric", "spearman"], "does not fit"),
    ("unknown positive label", lambda p: write_reviews(p, 10), ["--positive-label", "meh"], "positive label"),
    ("three text columns", lambda p: write_reviews(p, 10), ["--text-columns", "a,b,c"], "--text-columns"),
    ("no test file", lambda p: write_reviews(p, 10), ["--test-file", None], "--test-file"),
]


@pytest.mark.parametrize("what, write, extra, message", BAD_DATA, ids=[case[0] for case in BAD_DATA])
def test_bad_data_gets_one_line_naming_the_file(what, write, extra, message, tmp_path, capsys):
    train = tmp_path / "train.csv"
    write_reviews(train, 10) if write is None else write(train)
    test = write_reviews(tmp_path / "test.csv", 4, offset=50)
    odd = write_reviews(tmp_path / "odd.csv", 4, extra='"so-so film",meh\n')
    argv = ["finetune", "--output-dir", str(tmp_path / "out"), "--train-file", str(train), "--test-file", str(test),
            "--text-columns", "review", "--label-column", "verdict"]
    for flag, value in zip(extra[::2], extra[1::2]):
        if flag in argv:
            index = argv.index(flag)
            argv[index:index + 2] = [] if value is None else [flag, str(odd) if value == "TEST_WITH_NEW_LABEL" else value]
        else:
            argv += [flag, value]
    before = sorted(path.name for path in tmp_path.iterdir())
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and message in err, err
    assert sorted(path.name for path in tmp_path.iterdir()) == before


def test_standard_nas_on_your_own_data(tiny_bert_dir, data, tmp_path):
    import pandas as pd

    out = tmp_path / "nas"
    assert run_command(["nas", "--model", str(tiny_bert_dir), *data_args(data), "--output-dir", str(out),
                        "--max-trials", "2", "--epochs", "1", "--workers", "1", "--threads", "1", "--lr", "1e-3",
                        "--poll-interval", "0.5", "--save-models", "--no-progress"]) == 0
    frame = pd.read_csv(out / "results.csv")
    assert len(frame) == 2 and set(frame["task"]) == {"reviews"}
    saved = [path.parent for path in out.rglob("trial.json")]
    assert saved and all(labels_of(folder) == {"0": "bad", "1": "good"} for folder in saved)


def test_nas_fails_loudly_when_no_trial_reports(tmp_path):
    from benchmarks.commands.nas import check_some_trial_reported
    from benchmarks.errors import CommandFailed

    (tmp_path / "results.csv").write_text("run_id,valid_error\n")
    (tmp_path / "syne-tune" / "0").mkdir(parents=True)
    (tmp_path / "syne-tune" / "0" / "std.err").write_text("Traceback ...\nValueError: the first trial broke\n")
    with pytest.raises(CommandFailed, match="every trial failed.*the first trial broke"):
        check_some_trial_reported(tmp_path)


def test_demo_on_your_own_data(tiny_bert_dir, data, tmp_path):
    import pandas as pd

    out = tmp_path / "demo"
    assert run_command(["demo", "--model", str(tiny_bert_dir), "--train-file", str(data / "train.csv"),
                        "--test-file", str(data / "test.csv"), "--text-columns", "review", "--label-column",
                        "verdict", "--output-dir", str(out), "--max-train-samples", "24", "--max-valid-samples",
                        "16", "--num-samples", "3", "--threads", "1", "--device", "cpu",
                        "--no-progress"]) == 0
    assert len(pd.read_csv(out / "search" / "results.csv")) == 3
    assert len(pd.read_csv(out / "models" / "latency.csv")) >= 1


def test_info_infers_regression_from_json_lines_with_a_validation_file(tmp_path, capsys):
    def write(name: str, n: int) -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps({"q": f"query {i}", "d": f"doc {i}", "relevance": i / 4}) + "\n"
                                for i in range(n)))
        return path

    argv = ["info", "--train-file", str(write("train.jsonl", 8)), "--validation-file", str(write("dev.jsonl", 3)),
            "--test-file", str(write("test.jsonl", 3)), "--text-columns", "q,d", "--label-column", "relevance"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"task {tmp_path.name!r}: regression (inferred" in out and "metric spearman" in out
    assert main([*argv, "--task-type", "classification", "--metric", "f1"]) == 2  # 8 classes: no F1
    assert "does not fit a 8-class classification task" in capsys.readouterr().err
