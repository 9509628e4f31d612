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
import math
from pathlib import Path
from typing import Any, Mapping

from torch.utils.data import DataLoader, Subset

from baselines.pruning.rfp.fisher import fisher_importance
from benchmarks.artifacts import CHECKPOINT_DIR, METRICS_FILE, SUPERNET_DIR, SUPERNET_INFO_FILE
from benchmarks.commands.options import add_common_arguments, model_run
from benchmarks.files import write_folder_atomic, write_json_atomic
from benchmarks.finetuning import Setup, prefixed, prepare
from benchmarks.runinfo import write_run_info
from benchmarks.tasks.metrics import constant_predictor_metrics, metrics_fn
from benchmarks.tasks.registry import get_task
from benchmarks.tasks.sources import local_data_dir
from search_spaces import SEARCH_SPACES, get_search_space
from search_spaces.masks import SubNetworkMasks
from supernet.evaluation import evaluate
from supernet.model import SuperNetwork
from supernet.probes import Probe, probe_sub_networks
from supernet.rewire import RewireCallback
from supernet.strategies import STRATEGIES, SamplingStrategy, Strategy, check_options, get_strategy, strategy_options
from supernet.training import Trainer, TrainerCallback

DEFAULT_STRATEGY = "sandwich"
DEFAULT_SEARCH_SPACE = "small"


def probe_masks(probes: Mapping[str, Probe]) -> dict[str, SubNetworkMasks | None]:
    """The masks of the probe sub-networks tracked during training, by probe name."""
    return {name: probe.masks for name, probe in probes.items()}


def constant_metrics(setup: Setup, split: str) -> dict[str, float]:
    """The constant predictor's metrics on ``split`` (training majority class or mean score)."""
    return constant_predictor_metrics(
        setup.task, setup.loaders["train"].dataset.labels, setup.loaders[split].dataset.labels
    )


class SubNetworkValidation(TrainerCallback):
    """Validation metrics of the probe sub-networks after every epoch, so learning curves show every size."""

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


def supernet_info(args: argparse.Namespace, setup: Setup, options: Mapping[str, Any]) -> dict[str, Any]:
    """What the search needs to reload this super-network consistently."""
    return {
        "model": args.model,
        "task": setup.task.name,
        "head": setup.task.head,
        "num_labels": setup.task.num_labels,
        "problem_type": setup.task.problem_type,
        "search_space": args.search_space,
        "strategy": args.strategy,
        "strategy_options": dict(options),
        "dataset_seed": args.dataset_seed,
        "max_valid_samples": args.max_valid_samples,
        "max_train_samples": args.max_train_samples,
        "max_length": args.max_length,
        # resolved here so a search started elsewhere (other cwd, other GLUE_DIR) reads the same copy
        "data_dir": _resolved_data_dir(args.task, args.data_dir),
        "seed": args.seed,
        "epochs": args.epochs,
    }


def _resolved_data_dir(task: str, data_dir: str | None) -> str | None:
    """The absolute local data folder the run read (``--data-dir`` or ``GLUE_DIR``), or None for the hub."""
    folder = local_data_dir(get_task(task), data_dir)
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


def strategy_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The strategy options given on the command line (``None``: the strategy's default)."""
    return {"num_random": args.num_random, "temperature": args.temperature, "full_warmup": args.full_warmup,
            "sub_network_loss_weight": args.sub_network_loss_weight}


def rewire_callback(args: argparse.Namespace, setup: Setup, strategy: Strategy, total_steps: int) -> RewireCallback | None:
    """With ``--rewire``: reorder heads and units by Fisher importance when sub-networks join (else at the end)."""
    if not args.rewire:
        return None
    train = setup.loaders["train"]
    sample = Subset(train.dataset, range(min(args.rewire_examples, len(train.dataset))))
    batches = list(DataLoader(sample, batch_size=args.eval_batch_size, shuffle=False, collate_fn=train.collate_fn))
    at_step = math.ceil(strategy.full_warmup * total_steps) if isinstance(strategy, SamplingStrategy) else total_steps
    return RewireCallback(at_step, fisher_importance, batches)


def run(args: argparse.Namespace) -> int:
    """Train the super-network, then save it with its tokenizer, supernet.json, metrics.json and run.json."""
    output_dir = Path(args.output_dir)
    check_options(args.strategy, **strategy_settings(args))  # fail before loading
    if args.rewire_examples < 1:
        raise ValueError(f"--rewire-examples must be >= 1, got {args.rewire_examples}")
    output_dir.mkdir(parents=True, exist_ok=True)
    write_run_info(output_dir, args, seed=args.seed, keep_previous=args.resume, command_name="train-supernet")
    run = model_run(args)  # the model, data and training protocol, typed
    setup = prepare(run)
    supernet = SuperNetwork(setup.model)
    space = get_search_space(args.search_space, supernet.shape)
    strategy = get_strategy(args.strategy, space, **strategy_settings(args))
    options = {name: getattr(strategy, name) for name in strategy_options(args.strategy)}
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
    rewiring = rewire_callback(args, setup, strategy, trainer.total_steps)
    if rewiring is not None:
        trainer.callbacks.insert(0, rewiring)
    history = trainer.fit(resume=args.resume)
    supernet.reset()

    def save(folder: Path) -> None:
        supernet.model.save_pretrained(folder)
        setup.tokenizer.save_pretrained(folder)
        write_json_atomic(supernet_info(args, setup, options), folder / SUPERNET_INFO_FILE)

    folder = write_folder_atomic(output_dir / SUPERNET_DIR, save)
    final = {
        "task": setup.task.name,
        "main_metric": setup.task.main_metric,
        "search_space": args.search_space,
        "strategy": args.strategy,
        "strategy_options": options,
        "rewired_at_step": rewiring.at_step if rewiring is not None else None,
        "probes": [probe.to_dict() for probe in probes.values()],
        "constant": {"valid": constant_metrics(setup, "validation"), "test": constant_metrics(setup, "test")},
        "valid": {key: value for key, value in history[-1].items() if key.startswith("valid_")},
        "test": score_sub_networks(supernet, setup, sub_networks, "test"),
        "history": history,
    }
    write_json_atomic(final, output_dir / METRICS_FILE)
    errors = "  ".join(f"{name}={final['test'][f'test_{name}_error']:.4f}" for name in sub_networks)
    print(f"test error after {len(history)} epochs: {errors}; super-network in {folder}", flush=True)
    return 0
