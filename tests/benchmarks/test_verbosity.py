"""Quiet commands: transformers' load report and weight-loading bars are hidden unless --verbose or
PLM_NAS_VERBOSE=1; the choice reaches the processes a command starts through the environment."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.cli import main
from benchmarks.verbosity import VERBOSE_ENV, configure_output, verbose_requested

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def encoder_dir(tmp_path_factory) -> Path:
    """A tiny BERT saved without a classification head: loading it for a task reports the head as MISSING."""
    import torch
    from transformers import BertConfig, BertModel

    from supernet.loading import load_tokenizer

    folder = tmp_path_factory.mktemp("encoder")
    tokenizer = load_tokenizer(None)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=8, max_position_embeddings=128)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def restore_output(monkeypatch):
    """Leave the environment and transformers' output as quiet as the command line leaves them."""
    monkeypatch.setenv(VERBOSE_ENV, "")
    yield
    configure_output(False)


def load(folder: Path) -> None:
    from supernet.loading import load_model

    load_model(str(folder), num_labels=2)


def test_loading_a_model_with_a_new_head_is_quiet_unless_verbose(encoder_dir, capfd, restore_output):
    from transformers.utils import logging

    configure_output(False)
    load(encoder_dir)
    quiet = capfd.readouterr()
    assert "LOAD REPORT" not in quiet.err + quiet.out and "Loading weights" not in quiet.err + quiet.out
    assert logging.get_verbosity() == logging.ERROR and not logging.is_progress_bar_enabled()
    assert os.environ[VERBOSE_ENV] == ""

    configure_output(True)  # the report itself is checked end to end below: pytest holds on to the log's stream
    load(encoder_dir)
    assert "Loading weights" in capfd.readouterr().err
    assert logging.get_verbosity() == logging.WARNING and logging.is_progress_bar_enabled()
    assert os.environ[VERBOSE_ENV] == "1"  # what the command starts inherits it


def test_the_hubs_download_bars_are_left_as_they_were(restore_output):
    import huggingface_hub.utils as hub

    hub.enable_progress_bars()
    configure_output(False)
    assert not hub.are_progress_bars_disabled()
    hub.disable_progress_bars()
    configure_output(True)
    assert hub.are_progress_bars_disabled()
    hub.enable_progress_bars()


def test_verbose_is_a_flag_anywhere_or_the_environment(monkeypatch, capsys, restore_output):
    assert not verbose_requested(["report", "x"])
    assert verbose_requested(["report", "--verbose", "x"])
    monkeypatch.setenv(VERBOSE_ENV, "1")
    assert verbose_requested([])
    monkeypatch.setenv(VERBOSE_ENV, "")
    # the flag is taken off the command line before the command parses it, and recorded for its subprocesses
    assert main(["--verbose", "report", str(REPO / "nothing-here"), "--out", "x"]) == 2
    assert "no such results file or folder" in capsys.readouterr().err
    assert os.environ[VERBOSE_ENV] == "1"


def test_a_command_that_loads_and_saves_a_model_prints_only_its_own_lines(encoder_dir, tmp_path):
    """``plm-nas finetune`` of a head-less model on your own data, in a fresh interpreter as a user runs it: the
    load report and the loading and saving bars appear with --verbose only."""
    rows = "".join(f"a {word} film,{label}\n" for word, label in [("fine", 1), ("dull", 0)] * 4)
    (tmp_path / "train.csv").write_text("text,label\n" + rows)
    env = {**os.environ, "PYTHONPATH": str(REPO), VERBOSE_ENV: ""}

    def finetune(out: str, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "benchmarks.cli", "finetune", "--model", str(encoder_dir), "--train-file",
             "train.csv", "--test-file", "train.csv", "--text-columns", "text", "--output-dir", out, "--epochs", "1",
             "--threads", "1", "--no-progress", "--precision", "fp32", "--device", "cpu", *extra],
            capture_output=True, text=True, env=env, cwd=tmp_path)

    quiet = finetune("quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "" and "best epoch 1:" in quiet.stdout, quiet.stderr
    loud = finetune("loud", "--verbose")
    assert loud.returncode == 0, loud.stderr
    for text in ("LOAD REPORT", "MISSING", "Loading weights", "Writing model shards"):
        assert text in loud.stderr, text
