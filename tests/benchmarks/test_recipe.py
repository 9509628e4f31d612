"""The super-network recipe's pieces end to end on a tiny model: starting from a fine-tuned model with it as the
frozen teacher (``train-supernet --init-from``)."""
from __future__ import annotations

import json

import pytest

from benchmarks.cli import main as cli
from benchmarks.cli import run_command as main  # raises, so a failure shows its traceback

pytestmark = pytest.mark.usefixtures("one_thread")
DATA = ["--task", "rte", "--max-train-samples", "32", "--max-valid-samples", "24", "--max-test-samples", "24",
        "--threads", "1", "--no-progress", "--precision", "fp32"]


@pytest.fixture(scope="module")
def finetuned(tiny_bert_dir, glue_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("recipe") / "ft"
    assert main(["finetune", "--model", str(tiny_bert_dir), "--data-dir", str(glue_dir), "--output-dir", str(out),
                 "--epochs", "1", "--lr", "1e-3", *DATA]) == 0
    return out


def test_init_from_a_fine_tuned_model_starts_where_it_ended(finetuned, tiny_bert_dir, glue_dir, tmp_path):
    """With a learning rate too small to move the weights, the super-network's full network scores exactly what
    the fine-tuned model scored: rewiring (before the first step) permutes heads and units, not the function."""
    out = tmp_path / "sn"
    assert main(["train-supernet", "--data-dir", str(glue_dir), "--output-dir", str(out), "--init-from",
                 str(finetuned), "--epochs", "1", "--lr", "1e-12", *DATA]) == 0
    info = json.loads((out / "supernet" / "supernet.json").read_text())
    assert info["init_from"] == str((finetuned / "best_model").resolve()) == info["teacher"]
    assert info["model"] == str(tiny_bert_dir)  # the pre-trained model, as the fine-tuned one records it
    assert info["teacher_temperature"] == 2.0 and info["strategy_options"]["full_warmup"] == 0.0
    assert info["teacher_hidden_weight"] == 0.0
    # matching the teacher's hidden states too: recorded with the super-network, and the identity of a resume
    hidden = tmp_path / "sn-hidden"
    assert main(["train-supernet", "--data-dir", str(glue_dir), "--output-dir", str(hidden), "--init-from",
                 str(finetuned), "--epochs", "1", "--lr", "1e-12", "--teacher-hidden-weight", "0.5", *DATA]) == 0
    assert json.loads((hidden / "supernet" / "supernet.json").read_text())["teacher_hidden_weight"] == 0.5
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["rewired_at_step"] == 0
    reference = json.loads((finetuned / "metrics.json").read_text())
    assert 1 - metrics["test"]["test_full_error"] == pytest.approx(reference["test"]["main"], abs=1e-6)


def test_a_fine_tuned_model_of_another_task_or_split_is_refused(finetuned, glue_dir, tmp_path, capsys):
    common = ["train-supernet", "--data-dir", str(glue_dir), "--epochs", "1", "--max-train-samples", "32",
              "--threads", "1", "--no-progress"]
    assert cli([*common, "--task", "mrpc", "--output-dir", str(tmp_path / "a"), "--init-from", str(finetuned)]) == 2
    assert "fine-tuned on task 'rte', not 'mrpc'" in capsys.readouterr().err
    assert cli([*common, "--task", "rte", "--dataset-seed", "1", "--output-dir", str(tmp_path / "b"),
                "--init-from", str(finetuned)]) == 2
    assert "--dataset-seed 0" in capsys.readouterr().err
    assert cli([*common, "--task", "rte", "--output-dir", str(tmp_path / "c"), "--init-from", str(finetuned),
                "--teacher", str(finetuned), "--no-teacher"]) == 2
    assert "exclude each other" in capsys.readouterr().err
    assert cli([*common, "--task", "rte", "--output-dir", str(tmp_path / "e"), "--init-from", "pretrained",
                "--teacher-hidden-weight", "1"]) == 2
    assert "--teacher-hidden-weight needs a teacher" in capsys.readouterr().err
    assert cli([*common, "--task", "rte", "--output-dir", str(tmp_path / "f"), "--init-from", str(finetuned),
                "--teacher-hidden-weight", "-1"]) == 2
    assert "--teacher-hidden-weight" in capsys.readouterr().err
    assert cli([*common, "--task", "rte", "--output-dir", str(tmp_path / "d"), "--init-from",
                str(tmp_path / "nothing")]) == 2
    assert "--init-from" in capsys.readouterr().err
    assert not any((tmp_path / name).exists() for name in "abcdef")  # refused before anything was written


def test_init_from_finetune_fine_tunes_first_and_keeps_it_for_the_baselines(tiny_bert_dir, glue_dir, tmp_path, capsys):
    out = tmp_path / "sn"
    argv = ["train-supernet", "--model", str(tiny_bert_dir), "--data-dir", str(glue_dir), "--output-dir", str(out),
            "--init-from", "finetune", "--finetune-epochs", "1", "--epochs", "1", "--lr", "1e-3", *DATA]
    assert main(argv) == 0
    finetuned = out / "finetuned"
    record = json.loads((finetuned / "metrics.json").read_text())
    assert len(record["history"]) == 1 and (finetuned / "best_model" / "config.json").is_file()
    info = json.loads((out / "supernet" / "supernet.json").read_text())
    assert info["init_from"] == info["teacher"] == str((finetuned / "best_model").resolve())
    assert info["model"] == str(tiny_bert_dir)
    # the fine-tuned model is a plm-nas finetune output: a pruning baseline starts from it
    assert main(["prune", "--method", "rfp", "--finetuned", str(finetuned), "--output-dir", str(tmp_path / "rfp"),
                 "--budgets", "0.5", "--num-samples", "8", "--data-dir", str(glue_dir), "--max-valid-samples", "24",
                 "--max-test-samples", "24", "--threads", "1", "--no-progress"]) == 0
    # a second run of the same command does not fine-tune again
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 0
    assert "plain fine-tuning: done before" in capsys.readouterr().out


def test_the_commands_default_to_the_recipe(tmp_path):
    """Without options, ``train-supernet`` fine-tunes first (3 epochs), starts from that model, rewires it at step 0,
    distils every pass from it at T=2 for 2 epochs, at the CPU protocol's learning rate; from the pre-trained model
    the super-network keeps its 3 epochs and 30% warm-up. ``finetune`` shares the learning rate."""
    import argparse

    from benchmarks.commands import finetune, train_supernet
    from benchmarks.commands.train_supernet import TrainSupernetSettings, default_epochs

    parser = argparse.ArgumentParser()
    train_supernet.add_arguments(parser)
    args = parser.parse_args(["--task", "rte", "--output-dir", str(tmp_path / "sn")])
    assert (args.init_from, args.epochs, args.lr, args.finetune_epochs) == ("finetune", None, 5e-5, 3)
    assert default_epochs(args.init_from) == 2 and default_epochs("pretrained") == 3
    settings = TrainSupernetSettings.from_args(argparse.Namespace(**{**vars(args), "epochs": 2}))
    assert settings.finetune is not None and settings.finetune.trainer.epochs == 3
    assert settings.run.trainer.epochs == 2 and settings.run.trainer.lr == 5e-5
    assert settings.init_from == settings.teacher == (tmp_path / "sn" / "finetuned" / "best_model").resolve()
    assert settings.strategy.name == "sandwich" and settings.strategy.full_warmup == 0.0
    assert settings.teacher_temperature == 2.0
    pretrained = TrainSupernetSettings.from_args(argparse.Namespace(**{**vars(args), "epochs": 3,
                                                                    "init_from": "pretrained"}))
    assert pretrained.finetune is None and pretrained.teacher is None and pretrained.strategy.full_warmup is None
    parser = argparse.ArgumentParser()
    finetune.add_arguments(parser)
    assert parser.parse_args(["--task", "rte", "--output-dir", str(tmp_path / "ft")]).lr == 5e-5


def test_sst2_super_networks_train_on_sentence_like_examples_by_default(tmp_path):
    """On SST-2 the super-network stage keeps training examples of at least 10 words, its plain fine-tuning stage
    every example (the baselines' start); ``--min-train-words`` sets it (0: all); other tasks keep every example."""
    import argparse

    from benchmarks.commands import train_supernet
    from benchmarks.commands.train_supernet import TrainSupernetSettings

    parser = argparse.ArgumentParser()
    train_supernet.add_arguments(parser)

    def settings(*argv: str) -> TrainSupernetSettings:
        args = parser.parse_args(["--output-dir", str(tmp_path / "sn"), "--epochs", "2", *argv])
        return TrainSupernetSettings.from_args(args)

    sst2 = settings("--task", "sst2")
    assert sst2.run.data.min_train_words == 10 and sst2.finetune.data.min_train_words is None
    assert sst2.data_identity()["min_train_words"] == 10  # a resumed run must keep them
    assert settings("--task", "sst2", "--min-train-words", "0").run.data.min_train_words is None
    assert settings("--task", "sst2", "--min-train-words", "15").run.data.min_train_words == 15
    assert settings("--task", "sst2", "--min-train-words", "15").finetune.data.min_train_words is None
    assert settings("--task", "mrpc").run.data.min_train_words is None
    assert settings("--task", "mrpc", "--min-train-words", "12").run.data.min_train_words == 12


def test_info_says_where_sst2_super_networks_train(capsys):
    from benchmarks.cli import main

    assert main(["info", "--task", "sst2"]) == 0
    assert "trains the super-network on its training examples of at least 10 words" in capsys.readouterr().out
    assert main(["info", "--task", "mrpc"]) == 0
    assert "at least" not in capsys.readouterr().out
