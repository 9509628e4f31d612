"""Bad input on the command line: one line on stderr, exit 2, and the file tree exactly as it was.

Each case runs ``plm-nas`` in this process (``benchmarks.cli.main``, the console entry point) inside a folder
holding a few earlier outputs, and checks the exit code, that stderr is one ``plm-nas COMMAND: error:`` line
without a traceback, and that no file or folder was created, removed or rewritten.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from benchmarks.cli import COMMANDS, main

Tree = dict[str, tuple[str, int]]


def snapshot(root: Path) -> Tree:
    """Every path below ``root`` with its content hash (files) and modification time."""
    tree: Tree = {}
    for path in sorted(root.rglob("*")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        tree[str(path.relative_to(root))] = (digest, path.stat().st_mtime_ns)
    return tree


def fake_checkpoint(folder: Path, strategy: str = "standard", **config: object) -> None:
    """A checkpoint file with the fields ``--resume`` compares (no weights: the check must refuse first)."""
    import torch

    settings = {"epochs": 3, "lr": 2e-5, "batch_size": 16, "weight_decay": 0.01, "warmup_ratio": 0.1,
                "max_grad_norm": None, "seed": 0, **config}
    folder.mkdir(parents=True)
    torch.save({"strategy": strategy, "config": settings, "data": {}}, folder / "checkpoint.pt")


@pytest.fixture
def workspace(tmp_path: Path, tiny_bert_dir: Path) -> Path:
    """Earlier outputs the bad commands must leave alone: a fine-tuning run, a search run, a data file, a model."""
    (tmp_path / "ft").mkdir()
    (tmp_path / "ft" / "run.json").write_text(json.dumps({"arguments": {"dataset_seed": 0}}))
    fake_checkpoint(tmp_path / "ft" / "checkpoint")
    fake_checkpoint(tmp_path / "sn" / "checkpoint", strategy="sandwich")
    (tmp_path / "sn" / "run.json").write_text("{}")
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "results.csv").write_text("run_id\nx\n")
    (tmp_path / "afile").write_text("not a folder\n")
    (tmp_path / "bad.csv").write_text('text,label\n"unterminated,1\n')
    os.symlink(tiny_bert_dir, tmp_path / "model")
    edited = tmp_path / "sn-edited" / "supernet"  # supernet.json says 3 labels, the weights' config 2
    edited.mkdir(parents=True)
    (edited / "config.json").write_text(json.dumps({"id2label": {"0": "a", "1": "b"}}))
    (edited / "supernet.json").write_text(json.dumps({
        "task": "rte", "head": "sequence-classification", "num_labels": 3, "problem_type": "single_label_classification",
        "search_space": "small", "strategy": "sandwich", "dataset_seed": 0}))
    broken = tmp_path / "sn-broken" / "supernet"
    broken.mkdir(parents=True)
    (broken / "supernet.json").write_text('{"task": "rte", ')
    damaged = tmp_path / "damaged-model"  # a config and tokenizer, but weights that are not safetensors
    damaged.mkdir()
    for path in tiny_bert_dir.iterdir():
        if path.suffix != ".safetensors":
            (damaged / path.name).write_bytes(path.read_bytes())
    (damaged / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    (tmp_path / "ft-mrpc" / "best_model").mkdir(parents=True)
    (tmp_path / "ft-mrpc" / "best_model" / "config.json").write_text(json.dumps({"id2label": {"0": "a", "1": "b"}}))
    (tmp_path / "ft-mrpc" / "metrics.json").write_text(json.dumps({"task": "mrpc"}))
    edited_run_records(tmp_path)
    results_tables(tmp_path)
    mismatched_models(tmp_path, tiny_bert_dir)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("text,label\n" + "a fine film,1\na dull film,0\n" * 4)
    (tmp_path / "data" / "header-only.csv").write_text("text,label\n")
    (tmp_path / "data" / "empty.csv").write_text("")
    return tmp_path


RTE_CLASSES = {"0": "entailment", "1": "not_entailment"}


def mismatched_models(root: Path, model: Path) -> None:
    """Model folders whose parts do not fit: a tokenizer of a larger vocabulary than the embeddings (its token ids
    would crash the forward pass), and weights saved for another vocabulary than config.json says."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                             intermediate_size=4)).save_pretrained(root / "small-vocabulary")
    for folder in (root / "small-vocabulary", root / "other-config"):
        folder.mkdir(exist_ok=True)
        for path in model.iterdir():
            if path.name.startswith("tokenizer") or folder.name == "other-config":
                (folder / path.name).write_bytes(path.read_bytes())
    config = json.loads((root / "other-config" / "config.json").read_text())
    (root / "other-config" / "config.json").write_text(json.dumps({**config, "vocab_size": 50}))


def supernet_record(folder: Path, config: dict | None = None, **changes: object) -> Path:
    """A saved super-network's records as train-supernet writes them (no weights: the check must refuse first),
    with ``changes`` edited into supernet.json after the fact."""
    (folder / "supernet").mkdir(parents=True)
    (folder / "supernet" / "config.json").write_text(json.dumps(config or {"id2label": RTE_CLASSES}))
    info = {"task": "rte", "task_definition": {"name": "rte", "registered": True}, "head": "sequence-classification",
            "num_labels": 2, "problem_type": "single_label_classification", "search_space": "small",
            "strategy": "sandwich", "dataset_seed": 0}
    (folder / "supernet" / "supernet.json").write_text(json.dumps({**info, **changes}))
    (folder / "metrics.json").write_text(json.dumps({"task": "rte", "strategy": "sandwich", "search_space": "small"}))
    return folder


def edited_run_records(root: Path) -> None:
    """Super-networks whose supernet.json was edited: another task of as many labels (the model's class names and
    the run's metrics.json still say RTE; or only its task definition does), a regression task, another strategy."""
    supernet_record(root / "sn-retasked", task="mrpc", task_definition={"name": "mrpc", "registered": True})
    supernet_record(root / "sn-stsb", task="stsb", task_definition={"name": "stsb", "registered": True})
    supernet_record(root / "sn-renamed", config={"id2label": {"0": "LABEL_0", "1": "LABEL_1"}}, task="mrpc")
    (root / "sn-renamed" / "metrics.json").unlink()  # nor the model's class names nor the run's metrics tell
    (root / "sn-restrategied").mkdir()
    supernet_record(root / "sn-restrategied" / "run", strategy="kd")


def results_tables(root: Path) -> None:
    """A readable results table, one whose rows minimise a size objective nobody knows, one of a standard-NAS
    trial whose config is no longer JSON."""
    import pandas as pd

    from benchmarks.results import COLUMNS, write_atomic

    row = {column: "" for column in COLUMNS} | {
        "run_id": "r", "kind": "standard", "method": "random_search", "task": "rte", "model": "m", "seed": 0,
        "config": json.dumps({"num_layers": 1}), "valid_error": 0.3, "test_error": 0.35, "params": 10,
        "param_fraction": 0.5, "encoder_param_fraction": 0.5, "macs": 1.0, "mac_fraction": 0.5,
        "size_objective": "mac_fraction", "runtime_s": 1.0, "epoch": 1.0, "pareto": True}
    full = row | {"config": json.dumps({"num_layers": 2}), "valid_error": 0.2, "test_error": 0.25, "params": 20,
                  "param_fraction": 1.0, "mac_fraction": 1.0, "runtime_s": 2.0}
    write_atomic(pd.DataFrame([row, full]), root / "good" / "results.csv")
    scored = {"valid_metrics": json.dumps({"accuracy": 0.7}), "test_metrics": json.dumps({"accuracy": 0.65})}
    write_atomic(pd.DataFrame([row | scored, full | scored]), root / "good-metrics" / "results.csv")
    write_atomic(pd.DataFrame([row | {"size_objective": "params"}]), root / "odd-objective" / "results.csv")
    write_atomic(pd.DataFrame([row | {"config": '{"num_layers": 1'}]), root / "broken-config" / "results.csv")


def _grid(root: Path, *extra: str) -> list[str]:
    return ["experiments", "--output-dir", str(root / "grid"), *extra]


def _own_data(root: Path, command: str, train: str, test: str) -> list[str]:
    return [command, "--model", str(root / "model"), "--train-file", str(root / "data" / train), "--test-file",
            str(root / "data" / test), "--text-columns", "text", "--output-dir", str(root / "new")]


@dataclass(frozen=True)
class Case:
    name: str
    argv: Callable[[Path], list[str]]
    message: str  # a part of the one error line
    code: int = 2


def _ft(root: Path, *extra: str) -> list[str]:
    return ["finetune", "--model", str(root / "model"), "--task", "rte", "--output-dir", str(root / "new"), *extra]


CASES = [
    Case("unknown command", lambda r: ["fine-tune"], "unknown command"),
    Case("not an int", lambda r: _ft(r, "--epochs", "x"), "invalid int value"),
    Case("missing required option", lambda r: ["finetune", "--output-dir", str(r / "new")], "--task"),
    Case("unknown choice", lambda r: ["train-supernet", "--task", "rte", "--output-dir", str(r / "new"),
                                      "--strategy", "greedy"], "invalid choice"),
    Case("unknown option", lambda r: _ft(r, "--epoch", "2"), "unrecognized arguments"),
    Case("zero epochs", lambda r: _ft(r, "--epochs", "0"), "--epochs must be at least 1"),
    Case("negative learning rate", lambda r: _ft(r, "--lr", "-1"), "--lr must be positive"),
    Case("warm-up ratio of 1", lambda r: _ft(r, "--warmup-ratio", "1"), "--warmup-ratio"),
    Case("zero threads", lambda r: _ft(r, "--threads", "0"), "--threads must be at least 1"),
    Case("unknown task", lambda r: ["finetune", "--task", "rtee", "--output-dir", str(r / "new")], "unknown task"),
    Case("missing data folder", lambda r: _ft(r, "--data-dir", str(r / "nowhere")), "--data-dir"),
    Case("missing model folder", lambda r: ["finetune", "--model", str(r / "nomodel"), "--task", "rte",
                                            "--output-dir", str(r / "new")], "--model"),
    Case("damaged model weights", lambda r: ["finetune", "--model", str(r / "damaged-model"), "--task", "rte",
                                             "--output-dir", str(r / "new")], "cannot load the model weights"),
    Case("output folder is a file", lambda r: _ft(r)[:-1] + [str(r / "afile")], "is a file"),
    Case("resume with another learning rate", lambda r: ["finetune", "--model", str(r / "model"), "--task", "rte",
                                                         "--output-dir", str(r / "ft"), "--resume", "--lr", "1e-3"],
         "cannot resume with changed training settings"),
    Case("resume with another strategy", lambda r: ["train-supernet", "--model", str(r / "model"), "--task", "rte",
                                                    "--output-dir", str(r / "sn"), "--resume", "--strategy", "random"],
         "cannot resume"),
    Case("super-network strategy option", lambda r: ["train-supernet", "--task", "rte", "--output-dir", str(r / "new"),
                                                     "--strategy", "standard", "--num-random", "2"], "num_random"),
    Case("search without a super-network", lambda r: ["search", "--supernet", str(r / "ft"), "--output-dir",
                                                      str(r / "new")], "not a super-network"),
    Case("search on an edited super-network", lambda r: ["search", "--supernet", str(r / "sn-edited"), "--output-dir",
                                                         str(r / "new")], "was edited"),
    Case("search on a broken supernet.json", lambda r: ["search", "--supernet", str(r / "sn-broken"), "--output-dir",
                                                        str(r / "new")], "cannot read super-network record"),
    Case("search over an earlier search", lambda r: ["search", "--supernet", str(r / "sn"), "--output-dir",
                                                     str(r / "search")], "--resume"),
    Case("search with a multi-fidelity searcher", lambda r: ["search", "--supernet", str(r / "sn"), "--output-dir",
                                                             str(r / "new"), "--searcher", "moasha"], "moasha"),
    Case("nas with zero epochs", lambda r: ["nas", "--task", "rte", "--output-dir", str(r / "new"), "--max-trials",
                                            "2", "--epochs", "0"], "--epochs must be at least 1"),
    Case("nas with a missing data folder", lambda r: ["nas", "--task", "rte", "--data-dir", str(r / "nowhere"),
                                                      "--output-dir", str(r / "new"), "--max-trials", "2"], "--data-dir"),
    Case("nas with a data folder lacking the task", lambda r: ["nas", "--task", "rte", "--data-dir", str(r / "search"),
                                                               "--output-dir", str(r / "new"), "--max-trials", "2"],
         "no folder"),
    Case("prune without a fine-tuned model", lambda r: ["prune", "--method", "rfp", "--finetuned", str(r / "none"),
                                                        "--task", "rte", "--output-dir", str(r / "new")], "none"),
    Case("prune of a model fine-tuned on another task", lambda r: ["prune", "--method", "rfp", "--finetuned",
                                                                    str(r / "ft-mrpc"), "--task", "rte", "--output-dir",
                                                                    str(r / "new")], "fine-tuned on task 'mrpc'"),
    Case("prune with a head of another size", lambda r: ["prune", "--method", "rfp", "--finetuned",
                                                         str(r / "ft-mrpc"), "--task", "mnli", "--output-dir",
                                                         str(r / "new")], "head for 2 label(s)"),
    Case("prune with a zero budget", lambda r: ["prune", "--method", "rfp", "--finetuned", str(r / "ft"), "--task",
                                                "rte", "--output-dir", str(r / "new"), "--budgets", "0"], "--budgets"),
    Case("export of a missing results file", lambda r: ["export", "--results", str(r / "none.csv"), "--pick",
                                                        "pareto", "--out", str(r / "new")], "none.csv"),
    Case("demo with a multi-fidelity searcher", lambda r: ["demo", "--searcher", "moasha", "--output-dir",
                                                           str(r / "new")], "--searcher"),
    Case("demo with an unknown size objective", lambda r: ["demo", "--size-objective", "params", "--output-dir",
                                                           str(r / "new")], "--size-objective"),
    Case("report of the same results twice", lambda r: ["report", str(r / "search"), str(r / "search" / "results.csv"),
                                                        "--out", str(r / "new")], "given twice"),
    Case("report with a zero reference point", lambda r: ["report", str(r / "search"), "--out", str(r / "new"),
                                                          "--reference-point", "0", "2"], "every hypervolume zero"),
    Case("report of a missing file", lambda r: ["report", str(r / "none.csv"), "--out", str(r / "new")], "none.csv"),
    Case("report of a table that is not one", lambda r: ["report", str(r / "search"), "--out", str(r / "new")],
         "not a results table"),
    Case("experiments on an unknown grid", lambda r: ["experiments", "--grid", "huge"], "invalid choice"),
    # names a grid's lists do not know, refused before any folder (or grid.json) is made
    Case("experiments on an unknown task", lambda r: _grid(r, "--tasks", "rte", "foo"), "--tasks foo: not one of"),
    Case("experiments with a multi-fidelity weight-sharing searcher", lambda r: _grid(r, "--ws-searchers", "moasha"),
         "--ws-searchers moasha: not one of"),
    Case("experiments with an unknown standard-NAS searcher", lambda r: _grid(r, "--nas-searchers", "foo"),
         "--nas-searchers foo"),
    Case("experiments with an unknown strategy", lambda r: _grid(r, "--strategies", "greedy"), "--strategies greedy"),
    Case("experiments with an unknown search space", lambda r: _grid(r, "--search-spaces", "huge"),
         "--search-spaces huge"),
    Case("experiments with a model folder that holds none", lambda r: _grid(r, "--models", str(r / "nomodel")),
         "no model there"),
    Case("experiments with a negative seed", lambda r: _grid(r, "--seeds", "-1"), "--seeds must be 0 or more"),
    Case("experiments listing an unknown task", lambda r: _grid(r, "--tasks", "foo", "--list"), "--tasks foo"),
    Case("finetune with a negative seed", lambda r: _ft(r, "--seed", "-1"), "--seed must be 0 or more"),
    # run records edited after the fact
    Case("search on a super-network given another task", lambda r: ["search", "--supernet", str(r / "sn-retasked"),
                                                                     "--output-dir", str(r / "new")],
         "says task 'mrpc' but"),
    Case("search on a super-network given a regression task", lambda r: ["search", "--supernet", str(r / "sn-stsb"),
                                                                         "--output-dir", str(r / "new")],
         "that task needs a sequence-classification head for 1 (regression)"),
    Case("search on a super-network whose run says another task", lambda r: ["search", "--supernet",
                                                                             str(r / "sn-renamed"), "--output-dir",
                                                                             str(r / "new")],
         "says task 'mrpc' but its task definition"),
    Case("search on a super-network given another strategy", lambda r: ["search", "--supernet",
                                                                        str(r / "sn-restrategied" / "run"),
                                                                        "--output-dir", str(r / "new")],
         "says strategy 'kd' but"),
    # your own data: empty files
    Case("finetune on an empty training file", lambda r: _own_data(r, "finetune", "empty.csv", "train.csv"),
         "empty.csv is empty"),
    Case("finetune on a test file without rows", lambda r: _own_data(r, "finetune", "train.csv", "header-only.csv"),
         "header-only.csv holds no examples"),
    Case("super-network on an empty test file", lambda r: _own_data(r, "train-supernet", "train.csv", "empty.csv"),
         "empty.csv is empty"),
    Case("nas on an empty test file", lambda r: [*_own_data(r, "nas", "train.csv", "empty.csv"), "--max-trials", "1"],
         "empty.csv is empty"),
    # results files and options the commands cannot use
    Case("report of rows with an unknown size objective", lambda r: ["report", str(r / "odd-objective"), "--out",
                                                                     str(r / "new")],
         "unknown size objective(s) 'params'"),
    Case("export of rows with an unknown size objective", lambda r: ["export", "--results", str(r / "odd-objective"),
                                                                     "--pick", "pareto", "--out", str(r / "new")],
         "size objective(s) 'params'"),
    Case("export of a row whose config is broken", lambda r: ["export", "--results", str(r / "broken-config"),
                                                              "--pick", "pareto", "--out", str(r / "new")],
         "is not valid JSON"),
    Case("report with a fraction pruned of 1", lambda r: ["report", str(r / "good"), "--out", str(r / "new"),
                                                          "--cross-task-pruned", "1"], "--cross-task-pruned"),
    Case("report with a one-point time grid", lambda r: ["report", str(r / "good"), "--out", str(r / "new"),
                                                         "--grid-points", "1"], "--grid-points must be at least 2"),
    Case("report into a file", lambda r: ["report", str(r / "good"), "--out", str(r / "afile")], "is a file"),
    Case("finetune with the tokenizer of another model", lambda r: ["finetune", "--model", str(r / "small-vocabulary"),
                                                                    "--task", "rte", "--output-dir", str(r / "new")],
         "has 30,522 tokens but the model's embeddings hold 50"),
    Case("prune with the tokenizer of another model", lambda r: ["prune", "--method", "rfp", "--finetuned",
                                                                 str(r / "small-vocabulary"), "--task", "rte",
                                                                 "--output-dir", str(r / "new")],
         "has 30,522 tokens"),
    Case("finetune with weights of another config", lambda r: ["finetune", "--model", str(r / "other-config"),
                                                               "--task", "rte", "--output-dir", str(r / "new")],
         "do not fit its config.json"),
    Case("finetune a classifier on a regression task", lambda r: ["finetune", "--model", str(r / "model"), "--task",
                                                                  "stsb", "--output-dir", str(r / "new")],
         "has a task head for 2 label(s), and the task needs 1 output(s)"),
    Case("prune dropping more layers than the model has", lambda r: [
        "prune", "--method", "layer-drop", "--finetuned", str(r / "model"), "--train-file", str(r / "data" / "train.csv"),
        "--test-file", str(r / "data" / "train.csv"), "--text-columns", "text", "--output-dir", str(r / "new"),
        "--layers-dropped", "5"], "num_dropped must be in [0, 1] for 2 layers"),
    Case("fine-tuning on examples of at least -1 words", lambda r: ["finetune", "--task", "sst2", "--output-dir",
                                                                   str(r / "new"), "--min-train-words", "-1"],
         "--min-train-words must be 0 or more, got -1"),
    Case("demo without samples to search", lambda r: ["demo", "--output-dir", str(r / "new"), "--num-samples", "0"],
         "--num-samples must be at least 1"),
    Case("report of a secondary metric the rows lack", lambda r: ["report", str(r / "good-metrics"), "--out",
                                                                  str(r / "new"), "--secondary-metrics", "rte:mcc"],
         "rte:mcc: the rte rows record the metrics accuracy"),
    Case("nas with a damaged model", lambda r: ["nas", "--model", str(r / "damaged-model"), "--task", "rte",
                                                "--output-dir", str(r / "new"), "--max-trials", "1"],
         "cannot load the model weights"),
    Case("nas with a model folder of another family", lambda r: ["nas", "--model", str(r / "ft-mrpc" / "best_model"),
                                                                 "--task", "rte", "--output-dir", str(r / "new"),
                                                                 "--max-trials", "1"], "--model"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_gets_one_line_and_changes_nothing(case: Case, workspace: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(workspace)
    before = snapshot(workspace)
    code = main(case.argv(workspace))
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == case.code, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("plm-nas"), err
    assert ": error: " in lines[0] and case.message in lines[0], err
    assert snapshot(workspace) == before


def test_debug_shows_the_traceback(workspace: Path, capsys, monkeypatch) -> None:
    argv = _ft(workspace, "--epochs", "0")
    assert main([*argv, "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("PLM_NAS_DEBUG", "1")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("plm-nas finetune: error:")


def test_help_and_argument_errors_import_no_heavy_library() -> None:
    """Every command's --help (its parser) is built without torch, transformers or syne_tune."""
    script = (
        "import sys\n"
        "from benchmarks.cli import COMMANDS, build_parser\n"
        "for name, command in COMMANDS.items():\n"
        "    build_parser(name, command).format_help()\n"
        "heavy = ('torch', 'transformers', 'syne_tune', 'datasets', 'ray', 'scipy.stats')\n"
        "heavy = sorted(m for m in heavy if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert done.stdout.strip() == ""


def test_cli_choices_match_the_registries() -> None:
    from baselines.pruning.rfp.pipeline import TEACHERS
    from baselines.searchers import SEARCHERS
    from baselines.searchers.loop import DEFAULT_NUM_SAMPLES
    from benchmarks.commands import names, nas, options, prune, search
    from benchmarks.nas.common import DEFAULT_SEARCH_SPACE, DEFAULT_SEARCHER
    from benchmarks.objectives import DEFAULT_SIZE_OBJECTIVE
    from benchmarks.prune import context, rows
    from benchmarks.prune.methods import METHODS
    from benchmarks.tasks.loaders import DEFAULT_MAX_LENGTH
    from search_spaces import SEARCH_SPACES
    from supernet.loading import DEFAULT_MODEL
    from supernet.strategies import STRATEGIES

    assert names.SEARCH_SPACE_NAMES == tuple(SEARCH_SPACES)
    assert names.STRATEGY_NAMES == tuple(STRATEGIES)
    assert names.SEARCHER_NAMES == tuple(SEARCHERS)
    assert names.PRUNE_METHOD_NAMES == tuple(METHODS)
    assert names.RFP_TEACHER_NAMES == tuple(TEACHERS)
    assert (names.DEFAULT_MODEL, names.DEFAULT_MAX_LENGTH) == (DEFAULT_MODEL, DEFAULT_MAX_LENGTH)
    assert options.DEFAULT_SIZE_OBJECTIVE == DEFAULT_SIZE_OBJECTIVE
    assert search.DEFAULT_NUM_SAMPLES == DEFAULT_NUM_SAMPLES
    assert (nas.DEFAULT_SEARCHER, nas.DEFAULT_SEARCH_SPACE) == (DEFAULT_SEARCHER, DEFAULT_SEARCH_SPACE)
    assert prune.DEFAULT_BUDGETS == context.DEFAULT_BUDGETS and prune.MODELS_DIR == rows.MODELS_DIR
    assert set(COMMANDS) >= {"finetune", "search", "nas", "prune", "export", "report"}


@pytest.mark.parametrize("argv", [
    lambda r: _ft(r, "--device", "cuda"),
    lambda r: ["search", "--supernet", str(r / "sn"), "--output-dir", str(r / "new"), "--device", "cuda"],
    lambda r: ["demo", "--output-dir", str(r / "new"), "--device", "cuda"],
    lambda r: _grid(r, "--device", "cuda", "--tasks", "rte"),
], ids=["finetune", "search", "demo", "experiments"])
def test_cuda_without_cuda_is_a_refused_option(argv, workspace: Path, capsys, monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # also on a machine with a GPU
    monkeypatch.chdir(workspace)
    before = snapshot(workspace)
    assert main(argv(workspace)) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--device cuda: CUDA is not available on this machine" in lines[0], lines
    assert "unexpected" not in lines[0]
    assert snapshot(workspace) == before
