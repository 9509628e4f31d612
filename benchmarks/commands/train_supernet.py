"""``plm-nas train-supernet``: train a weight-sharing super-network with one of the training strategies.

Every epoch it reports the validation metrics of the probe sub-networks (full network, 75%, 50% and 25% of
the encoder's MACs, smallest; see :mod:`supernet.probes`) beside the constant predictor's, and saves a
checkpoint (``--resume`` continues a stopped run). At the
end the shared weights go to ``OUTPUT/supernet/`` (``save_pretrained``, tokenizer and ``supernet.json``),
so that the search reloads the same model, search space, task and, above all, the same dataset seed: a
different seed would put training examples into the search's validation split.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from benchmarks.artifacts import CHECKPOINT_DIR, METRICS_FILE, SUPERNET_DIR, SUPERNET_INFO_FILE
from benchmarks.commands.names import SEARCH_SPACE_NAMES, STRATEGY_NAMES
from benchmarks.commands.options import add_common_arguments, check_option_ranges, model_run
from benchmarks.files import write_folder_atomic, write_json_atomic
from benchmarks.runinfo import write_run_info
from benchmarks.tasks.definition import file_sha256, task_definition, write_task_file

if TYPE_CHECKING:  # torch loads only when the command runs, so --help answers fast
    from benchmarks.finetuning import ModelRun, Setup
    from benchmarks.tasks.registry import TaskSpec

DEFAULT_STRATEGY = "sandwich"
DEFAULT_SEARCH_SPACE = "small"


@dataclass(frozen=True)
class StrategySettings:
    """The training strategy and the options given for it (``None``: the strategy's default)."""

    name: str = DEFAULT_STRATEGY
    num_random: int | None = None
    temperature: float | None = None
    full_warmup: float | None = None
    sub_network_loss_weight: float | None = None

    def options(self) -> dict[str, Any]:
        """The options given on the command line, as the strategy takes them."""
        return {"num_random": self.num_random, "temperature": self.temperature, "full_warmup": self.full_warmup,
                "sub_network_loss_weight": self.sub_network_loss_weight}


@dataclass(frozen=True)
class TrainSupernetSettings:
    """Everything ``plm-nas train-supernet`` does, parsed once from its options."""

    run: ModelRun
    output_dir: Path
    search_space: str = DEFAULT_SEARCH_SPACE
    strategy: StrategySettings = StrategySettings()
    rewire: bool = True
    rewire_examples: int = 256
    resume: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "TrainSupernetSettings":
        """The settings; the strategy's options are checked before the task (your own files) is read."""
        from supernet.strategies import check_options

        strategy = StrategySettings(name=args.strategy, num_random=args.num_random, temperature=args.temperature,
                                    full_warmup=args.full_warmup, sub_network_loss_weight=args.sub_network_loss_weight)
        check_options(strategy.name, **strategy.options())  # fail before loading
        return cls(run=model_run(args), output_dir=Path(args.output_dir), search_space=args.search_space,
                   strategy=strategy, rewire=args.rewire, rewire_examples=args.rewire_examples, resume=args.resume)


def supernet_info(settings: TrainSupernetSettings, setup: Setup, options: Mapping[str, Any]) -> dict[str, Any]:
    """What the search needs to reload this super-network consistently."""
    run = settings.run
    return {
        "model": run.model,
        "task": setup.task.name,
        "task_definition": task_definition(setup.task),  # your own data: files, SHA-256, labels, metric
        "head": setup.task.head,
        "num_labels": setup.task.num_labels,
        "problem_type": setup.task.problem_type,
        "search_space": settings.search_space,
        "strategy": settings.strategy.name,
        "strategy_options": dict(options),
        "dataset_seed": run.data.dataset_seed,
        "max_valid_samples": run.data.max_valid_samples,
        "max_train_samples": run.data.max_train_samples,
        "max_length": run.data.max_length,
        # resolved here so a search started elsewhere (other cwd, other GLUE_DIR) reads the same copy
        "data_dir": _resolved_data_dir(setup.task, run.data.data_dir),
        "seed": run.trainer.seed,
        "epochs": run.trainer.epochs,
    }


def _resolved_data_dir(task: TaskSpec, data_dir: str | None) -> str | None:
    """The absolute local data folder the run read (``--data-dir`` or ``GLUE_DIR``), or None for the hub or files."""
    from benchmarks.tasks.sources import local_data_dir

    if task.files is not None:
        return None
    folder = local_data_dir(task, data_dir)
    return str(Path(folder).resolve()) if folder is not None else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument(
        "--search-space", default=DEFAULT_SEARCH_SPACE, choices=SEARCH_SPACE_NAMES,
        help=f"where random and smallest sub-networks come from (default {DEFAULT_SEARCH_SPACE})",
    )
    parser.add_argument(
        "--strategy", default=DEFAULT_STRATEGY, choices=STRATEGY_NAMES,
        help=f"super-network training strategy (default {DEFAULT_STRATEGY})",
    )
    parser.add_argument(
        "--num-random", type=int, default=None,
        help="random sub-networks per step (default: 2 for sandwich/full, 1 for random/linear_random/kd)",
    )
    parser.add_argument(
        "--temperature", type=float, default=None, help="distillation temperature of kd and full (default 10)"
    )
    parser.add_argument(
        "--rewire", action=argparse.BooleanOptionalAction, default=True,
        help="when sub-networks join (after --full-warmup; for 'standard' after training), reorder every layer's "
             "heads and units by Fisher importance so that prefix sub-networks keep the most important ones "
             "(default: on)",
    )
    parser.add_argument(
        "--rewire-examples", type=int, default=256, help="training examples the importance is measured on (default 256)"
    )
    parser.add_argument(
        "--sub-network-loss-weight", type=float, default=None,
        help="weight of each sub-network pass's loss against the full network's (default 1: summed losses)",
    )
    parser.add_argument(
        "--full-warmup", type=float, default=None,
        help="share of the training steps that train the full network alone before sub-networks join",
    )


def run(args: argparse.Namespace) -> int:
    """Train the super-network, then save it with its tokenizer, supernet.json, metrics.json and run.json."""
    check_option_ranges(args)
    train_supernet(TrainSupernetSettings.from_args(args), arguments=vars(args))
    return 0


def train_supernet(settings: TrainSupernetSettings, arguments: Mapping[str, Any]) -> None:
    """Train the super-network, then save it with its tokenizer, supernet.json, metrics.json and run.json
    (which records ``arguments``, the command's options)."""
    from benchmarks.finetuning import prepare
    from benchmarks.ws import training as ws_training
    from benchmarks.ws.training import SubNetworkValidation, probe_masks, rewire_callback
    from search_spaces import get_search_space
    from supernet.model import SuperNetwork
    from supernet.probes import probe_sub_networks
    from supernet.strategies import get_strategy, strategy_options
    from supernet.training import Trainer, check_resume

    output_dir, run, strategy_name = settings.output_dir, settings.run, settings.strategy.name
    if settings.resume:
        check_resume(output_dir / CHECKPOINT_DIR, run.trainer, strategy_name, run.data_identity())
    setup = prepare(run)  # model, tokenizer and data load (or fail) before anything is written
    output_dir.mkdir(parents=True, exist_ok=True)
    write_run_info(output_dir, arguments, seed=run.trainer.seed, keep_previous=settings.resume,
                   command_name="train-supernet")
    write_task_file(run.task, output_dir)
    supernet = SuperNetwork(setup.model)
    space = get_search_space(settings.search_space, supernet.shape)
    strategy = get_strategy(strategy_name, space, **settings.strategy.options())
    options = {name: getattr(strategy, name) for name in strategy_options(strategy_name)}
    probes = probe_sub_networks(space)
    sub_networks = probe_masks(probes)
    trainer = Trainer(
        supernet,
        strategy,
        setup.loaders["train"],
        run.trainer,
        checkpoint_dir=output_dir / CHECKPOINT_DIR,
        callbacks=[SubNetworkValidation(setup, sub_networks)],
        data_identity=run.data_identity(),
    )
    rewiring = (rewire_callback(setup, strategy, trainer.total_steps, settings.rewire_examples,
                                run.data.eval_batch_size) if settings.rewire else None)
    if rewiring is not None:
        trainer.callbacks.insert(0, rewiring)
    history = trainer.fit(resume=settings.resume)
    supernet.reset()

    def save(folder: Path) -> None:
        supernet.model.save_pretrained(folder)
        setup.tokenizer.save_pretrained(folder)
        info = {**supernet_info(settings, setup, options), "config_sha256": file_sha256(folder / "config.json")}
        write_json_atomic(info, folder / SUPERNET_INFO_FILE)

    folder = write_folder_atomic(output_dir / SUPERNET_DIR, save)
    final = {
        "task": setup.task.name,
        "main_metric": setup.task.main_metric,
        "search_space": settings.search_space,
        "strategy": strategy_name,
        "strategy_options": options,
        "rewired_at_step": rewiring.at_step if rewiring is not None else None,
        "probes": [probe.to_dict() for probe in probes.values()],
        "constant": {split_name: ws_training.constant_metrics(setup, split)
                     for split_name, split in (("valid", "validation"), ("test", "test"))},
        "valid": {key: value for key, value in history[-1].items() if key.startswith("valid_")},
        "test": ws_training.score_sub_networks(supernet, setup, sub_networks, "test"),
        "history": history,
    }
    write_json_atomic(final, output_dir / METRICS_FILE)
    errors = "  ".join(f"{name}={final['test'][f'test_{name}_error']:.4f}" for name in sub_networks)
    print(f"test error after {len(history)} epochs: {errors}; super-network in {folder}", flush=True)
