"""``plm-nas train-supernet``: train a weight-sharing super-network with one of the training strategies.

Every epoch it reports the validation error of the full network, the smallest and the mid-point
sub-network of the search space, and saves a checkpoint (``--resume`` continues a stopped run). At the
end the shared weights go to ``OUTPUT/supernet/`` (``save_pretrained``, tokenizer and ``supernet.json``),
so that the search reloads the same model, search space, task and, above all, the same dataset seed: a
different seed would put training examples into the search's validation split.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from benchmarks.artifacts import CHECKPOINT_DIR, METRICS_FILE, SUPERNET_DIR, SUPERNET_INFO_FILE
from benchmarks.commands.options import add_common_arguments, model_run
from benchmarks.files import write_folder_atomic, write_json_atomic
from benchmarks.finetuning import ModelRun, Setup, prefixed, prepare
from benchmarks.runinfo import write_run_info
from benchmarks.tasks.metrics import metrics_fn
from benchmarks.tasks.sources import local_data_dir
from search_spaces import SEARCH_SPACES, get_search_space
from search_spaces.masks import SubNetworkMasks
from supernet.evaluation import evaluate
from supernet.model import SuperNetwork
from supernet.strategies import STRATEGIES, check_options, get_strategy, strategy_options
from supernet.training import Trainer, TrainerCallback

DEFAULT_STRATEGY = "sandwich"
DEFAULT_SEARCH_SPACE = "small"


@dataclass(frozen=True)
class SupernetSettings:
    """Everything ``plm-nas train-supernet`` does, parsed once from its options."""

    run: ModelRun
    output_dir: Path
    search_space: str = DEFAULT_SEARCH_SPACE
    strategy: str = DEFAULT_STRATEGY
    num_random: int | None = None
    temperature: float | None = None
    resume: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "SupernetSettings":
        return cls(run=model_run(args), output_dir=Path(args.output_dir), search_space=args.search_space,
                   strategy=args.strategy, num_random=args.num_random, temperature=args.temperature,
                   resume=args.resume)


def reference_sub_networks(space: Any) -> dict[str, SubNetworkMasks | None]:
    """The sub-networks tracked during training: full network, smallest and mid-point of the space."""
    return {"full": None, "smallest": space.to_masks(space.smallest()), "midpoint": space.to_masks(space.midpoint())}


class SubNetworkValidation(TrainerCallback):
    """Validation metrics of the full, smallest and mid-point sub-networks after every epoch."""

    def __init__(self, setup: Setup, sub_networks: Mapping[str, SubNetworkMasks | None]) -> None:
        self.setup = setup
        self.sub_networks = dict(sub_networks)

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> dict[str, Any]:
        record = score_sub_networks(trainer.supernet, self.setup, self.sub_networks, "validation")
        errors = "  ".join(f"{name}={record[f'valid_{name}_error']:.4f}" for name in self.sub_networks)
        print(f"epoch {epoch}/{trainer.config.epochs}  validation error: {errors}", flush=True)
        return record


def score_sub_networks(
    supernet: SuperNetwork, setup: Setup, sub_networks: Mapping[str, SubNetworkMasks | None], split: str
) -> dict[str, float]:
    """``{prefix}_{name}_{metric}`` for every sub-network, ``prefix`` being ``valid`` or ``test``."""
    prefix = "valid" if split == "validation" else split
    record: dict[str, float] = {}
    for name, masks in sub_networks.items():
        result = evaluate(supernet, setup.loaders[split], masks=masks, metrics_fn=metrics_fn(setup.task))
        record.update(prefixed(f"{prefix}_{name}", result))
    return record


def supernet_info(settings: SupernetSettings, options: Mapping[str, Any]) -> dict[str, Any]:
    """What the search needs to reload this super-network consistently."""
    run, data = settings.run, settings.run.data
    return {
        "model": run.model,
        "task": run.task.name,
        "head": run.task.head,
        "num_labels": run.task.num_labels,
        "problem_type": run.task.problem_type,
        "search_space": settings.search_space,
        "strategy": settings.strategy,
        "strategy_options": dict(options),
        "dataset_seed": data.dataset_seed,
        "max_valid_samples": data.max_valid_samples,
        "max_train_samples": data.max_train_samples,
        "max_length": data.max_length,
        # resolved here so a search started elsewhere (other cwd, other GLUE_DIR) reads the same copy
        "data_dir": _resolved_data_dir(run, data.data_dir),
        "seed": run.trainer.seed,
        "epochs": run.trainer.epochs,
    }


def _resolved_data_dir(run: ModelRun, data_dir: str | None) -> str | None:
    """The absolute local data folder the run read (``--data-dir`` or ``GLUE_DIR``), or None for the hub."""
    folder = local_data_dir(run.task, data_dir)
    return str(Path(folder).resolve()) if folder is not None else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument(
        "--search-space", default=DEFAULT_SEARCH_SPACE, choices=tuple(SEARCH_SPACES),
        help=f"where random and smallest sub-networks come from (default {DEFAULT_SEARCH_SPACE})",
    )
    parser.add_argument(
        "--strategy", default=DEFAULT_STRATEGY, choices=tuple(STRATEGIES),
        help=f"super-network training strategy (default {DEFAULT_STRATEGY})",
    )
    parser.add_argument(
        "--num-random", type=int, default=None,
        help="random sub-networks per step (default: 2 for sandwich/full, 1 for random/linear_random/kd)",
    )
    parser.add_argument(
        "--temperature", type=float, default=None, help="distillation temperature of kd and full (default 10)"
    )


def run(args: argparse.Namespace) -> int:
    """Train the super-network, then save it with its tokenizer, supernet.json, metrics.json and run.json."""
    settings = SupernetSettings.from_args(args)
    output_dir = settings.output_dir
    check_options(settings.strategy, num_random=settings.num_random, temperature=settings.temperature)  # fail before loading
    output_dir.mkdir(parents=True, exist_ok=True)
    write_run_info(output_dir, args, seed=args.seed, keep_previous=settings.resume, command_name="train-supernet")
    setup = prepare(settings.run)
    supernet = SuperNetwork(setup.model)
    space = get_search_space(settings.search_space, supernet.shape)
    strategy = get_strategy(settings.strategy, space, num_random=settings.num_random, temperature=settings.temperature)
    options = {name: getattr(strategy, name) for name in strategy_options(settings.strategy)}
    sub_networks = reference_sub_networks(space)
    trainer = Trainer(
        supernet,
        strategy,
        setup.loaders["train"],
        settings.run.trainer,
        checkpoint_dir=output_dir / CHECKPOINT_DIR,
        callbacks=[SubNetworkValidation(setup, sub_networks)],
        data_identity=settings.run.data_identity(),
    )
    history = trainer.fit(resume=settings.resume)
    supernet.reset()

    def save(folder: Path) -> None:
        supernet.model.save_pretrained(folder)
        setup.tokenizer.save_pretrained(folder)
        write_json_atomic(supernet_info(settings, options), folder / SUPERNET_INFO_FILE)

    folder = write_folder_atomic(output_dir / SUPERNET_DIR, save)
    final = {
        "task": setup.task.name,
        "search_space": settings.search_space,
        "strategy": settings.strategy,
        "strategy_options": options,
        "valid": {key: value for key, value in history[-1].items() if key.startswith("valid_")},
        "test": score_sub_networks(supernet, setup, sub_networks, "test"),
        "history": history,
    }
    write_json_atomic(final, output_dir / METRICS_FILE)
    errors = "  ".join(f"{name}={final['test'][f'test_{name}_error']:.4f}" for name in sub_networks)
    print(f"test error after {len(history)} epochs: {errors}; super-network in {folder}", flush=True)
    return 0
