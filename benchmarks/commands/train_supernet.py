"""``plm-nas train-supernet``: train a weight-sharing super-network with one of the training strategies.

Every epoch it reports the validation metrics of the probe sub-networks (full network, 75%, 50% and 25% of
the encoder's MACs, smallest; see :mod:`supernet.probes`) beside the constant predictor's, and saves a
checkpoint (``--resume`` continues a stopped run). At the
end the shared weights go to ``OUTPUT/supernet/`` (``save_pretrained``, tokenizer and ``supernet.json``),
so that the search reloads the same model, search space, task and, above all, the same dataset seed: a
different seed would put training examples into the search's validation split.

``--init-from FINETUNED`` starts the super-network from a fine-tuned model of the same task and split (the
output of ``plm-nas finetune``) instead of the pre-trained one: its heads and units are rewired by importance
before the first step, the full network needs no warm-up, and the fine-tuned model is also the frozen teacher
every pass learns from (``--teacher``, ``--no-teacher``; :mod:`supernet.teacher`).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from benchmarks.artifacts import BEST_MODEL_DIR, CHECKPOINT_DIR, METRICS_FILE, SUPERNET_DIR, SUPERNET_INFO_FILE
from benchmarks.commands.names import SEARCH_SPACE_NAMES, STRATEGY_NAMES
from benchmarks.commands.options import add_common_arguments, check_option_ranges, model_run
from benchmarks.errors import UsageError
from benchmarks.files import write_folder_atomic, write_json_atomic
from benchmarks.runinfo import write_run_info
from benchmarks.tasks.definition import file_sha256, task_definition, write_task_file

if TYPE_CHECKING:  # torch loads only when the command runs, so --help answers fast
    from benchmarks.finetuning import ModelRun, Setup
    from benchmarks.tasks.registry import TaskSpec

DEFAULT_STRATEGY = "sandwich"
DEFAULT_TEACHER_TEMPERATURE = 2.0  # as supernet.teacher.DEFAULT_TEACHER_TEMPERATURE
INIT_FINETUNE, INIT_PRETRAINED = "finetune", "pretrained"
DEFAULT_INIT = INIT_FINETUNE  # the recipe (issue 27): fine-tune, then train the super-network from it as teacher
EPOCHS_FROM_FINETUNED, EPOCHS_FROM_PRETRAINED = 2, 3
FINETUNED_DIR = "finetuned"  # with --init-from finetune: the plain fine-tuning, as plm-nas finetune writes it
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
    base_model: str | None = None  # with --init-from: the pre-trained model the fine-tuned one came from
    init_from: Path | None = None  # a fine-tuned model folder the super-network starts from
    teacher: Path | None = None  # a fine-tuned model folder every pass learns from
    teacher_temperature: float = DEFAULT_TEACHER_TEMPERATURE
    teacher_hidden_weight: float = 0.0  # weight of matching the teacher's last hidden states (0: logits only)
    finetune: ModelRun | None = None  # with --init-from finetune: plain fine-tuning first, into OUTPUT/finetuned

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "TrainSupernetSettings":
        """The settings; the strategy's options and the fine-tuned models are checked before the task (your own
        files) is read or a model loaded."""
        from supernet.strategies import check_options, strategy_options

        init_from = teacher = None
        full_warmup = args.full_warmup
        finetune_first = args.init_from == INIT_FINETUNE
        if finetune_first:
            init_from = (Path(args.output_dir) / FINETUNED_DIR / BEST_MODEL_DIR).resolve()
        elif args.init_from != INIT_PRETRAINED:
            init_from = fine_tuned_model(Path(args.init_from), "--init-from")
        if init_from is not None and full_warmup is None and "full_warmup" in strategy_options(args.strategy):
            full_warmup = 0.0  # the full network is trained already
        if args.teacher is not None and args.no_teacher:
            raise UsageError("--teacher and --no-teacher exclude each other")
        if args.teacher is not None:
            teacher = fine_tuned_model(args.teacher, "--teacher")
        elif init_from is not None and not args.no_teacher:
            teacher = init_from
        if teacher is None and args.teacher_hidden_weight:
            raise UsageError("--teacher-hidden-weight needs a teacher: --teacher DIR, or --init-from a fine-tuned "
                             "model without --no-teacher")
        strategy = StrategySettings(name=args.strategy, num_random=args.num_random, temperature=args.temperature,
                                    full_warmup=full_warmup, sub_network_loss_weight=args.sub_network_loss_weight)
        check_options(strategy.name, **strategy.options())  # fail before loading
        run = model_run(args)
        base_model = finetune = None
        if finetune_first:  # plain fine-tuning on every training example, as plm-nas finetune (the baselines' start)
            base_model = run.model
            finetune = replace(run, trainer=replace(run.trainer, epochs=args.finetune_epochs),
                               data=replace(run.data, min_train_words=None))
            run = replace(run, model=str(init_from))
        elif init_from is not None:
            base_model = check_fine_tuned(init_from, Path(args.init_from), run, "--init-from")
            run = replace(run, model=str(init_from))
        run = replace(run, data=replace(run.data, min_train_words=supernet_min_train_words(args, run.task)))
        if args.teacher is not None:
            check_fine_tuned(teacher, args.teacher, run, "--teacher")
        return cls(run=run, output_dir=Path(args.output_dir), search_space=args.search_space,
                   strategy=strategy, rewire=args.rewire, rewire_examples=args.rewire_examples, resume=args.resume,
                   base_model=base_model, init_from=init_from, teacher=teacher,
                   teacher_temperature=args.teacher_temperature,
                   teacher_hidden_weight=args.teacher_hidden_weight, finetune=finetune)

    def data_identity(self) -> dict[str, Any]:
        """What the training data and targets are: the run's data and, with a teacher, which teacher it is."""
        identity = self.run.data_identity()
        if self.teacher is not None:
            identity.update(teacher=str(self.teacher), teacher_temperature=self.teacher_temperature)
            if self.teacher_hidden_weight:  # absent at 0, so runs from before the option resume unchanged
                identity.update(teacher_hidden_weight=self.teacher_hidden_weight)
        return identity


def supernet_min_train_words(args: argparse.Namespace, task: TaskSpec) -> int | None:
    """The super-network's ``--min-train-words``: the option, else the task's default (SST-2: 10); 0 or None: all."""
    given = getattr(args, "min_train_words", None)
    return (task.supernet_min_train_words if given is None else given) or None


def fine_tuned_model(path: Path, option: str) -> Path:
    """The model folder of a ``plm-nas finetune`` output (or the folder itself), or a UsageError naming ``option``."""
    from benchmarks.artifacts import finetuned_model_dir

    try:
        return finetuned_model_dir(Path(path)).resolve()
    except FileNotFoundError as err:
        raise UsageError(f"{option} {path}: {err}") from err


def check_fine_tuned(model_dir: Path, given: Path, run: ModelRun, option: str) -> str:
    """Refuse a fine-tuned model of another task or split seed (its training examples would be validated on);
    return the pre-trained model it came from."""
    from benchmarks.artifacts import base_model_name, check_model_task, finetuned_dataset_seed

    check_model_task(model_dir, run.task)
    try:
        finetuned_dataset_seed(Path(given), run.data.dataset_seed, force=False)
    except ValueError as err:
        raise UsageError(f"{option} {given}: {err}") from err
    return base_model_name(Path(given), model_dir)


def supernet_info(settings: TrainSupernetSettings, setup: Setup, options: Mapping[str, Any]) -> dict[str, Any]:
    """What the search needs to reload this super-network consistently."""
    run = settings.run
    return {
        "model": settings.base_model or run.model,
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
        "min_train_words": run.data.min_train_words,
        "max_length": run.data.max_length,
        # resolved here so a search started elsewhere (other cwd, other GLUE_DIR) reads the same copy
        "data_dir": _resolved_data_dir(setup.task, run.data.data_dir),
        "seed": run.trainer.seed,
        "epochs": run.trainer.epochs,
        "precision": run.trainer.precision,
        "init_from": str(settings.init_from) if settings.init_from else None,
        "teacher": str(settings.teacher) if settings.teacher else None,
        "teacher_temperature": settings.teacher_temperature if settings.teacher else None,
        "teacher_hidden_weight": settings.teacher_hidden_weight if settings.teacher else None,
    }


def _resolved_data_dir(task: TaskSpec, data_dir: str | None) -> str | None:
    """The absolute local data folder the run read (``--data-dir`` or ``GLUE_DIR``), or None for the hub or files."""
    from benchmarks.tasks.sources import local_data_dir

    if task.files is not None:
        return None
    folder = local_data_dir(task, data_dir)
    return str(Path(folder).resolve()) if folder is not None else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, default_epochs=None, epochs_help=(
        f"training epochs of the super-network (default {EPOCHS_FROM_FINETUNED} from a fine-tuned model, "
        f"{EPOCHS_FROM_PRETRAINED} from the pre-trained one)"))
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
        help="share of the training steps that train the full network alone before sub-networks join "
             "(default 0.3; 0 with --init-from)",
    )
    start = parser.add_argument_group("starting from a fine-tuned model")
    start.add_argument("--init-from", default=DEFAULT_INIT, metavar="finetune|pretrained|DIR",
                       help="what the super-network starts from: 'finetune' (plain fine-tuning of the pre-trained "
                            "model first, --finetune-epochs, kept in OUTPUT/finetuned for the pruning baselines), a "
                            "fine-tuned model of this task and split (DIR: plm-nas finetune's output), or 'pretrained' "
                            "(the pre-trained model, with --full-warmup). From a fine-tuned model its heads and units "
                            "are rewired before the first step and it is the teacher every pass learns from "
                            f"(default {DEFAULT_INIT})")
    start.add_argument("--finetune-epochs", type=int, default=3,
                       help="epochs of plain fine-tuning with --init-from finetune (default 3)")
    start.add_argument("--teacher", type=Path, default=None,
                       help="a fine-tuned model every pass learns from (default: --init-from's, else none)")
    start.add_argument("--no-teacher", action="store_true", help="no teacher, also with --init-from")
    start.add_argument("--teacher-temperature", type=float, default=DEFAULT_TEACHER_TEMPERATURE,
                       help=f"temperature of the teacher's softened logits (default {DEFAULT_TEACHER_TEMPERATURE:g})")
    start.add_argument("--teacher-hidden-weight", type=float, default=0.0,
                       help="weight of the mean squared error between every pass's last hidden states and the "
                            "teacher's, over the real tokens, beside the logits (default 0: logits only)")


def default_epochs(init_from: str) -> int:
    """The super-network's epochs when ``--epochs`` is not given: fewer from a fine-tuned model, which needs no
    full-network warm-up and learns from a teacher."""
    return EPOCHS_FROM_PRETRAINED if init_from == INIT_PRETRAINED else EPOCHS_FROM_FINETUNED


def run(args: argparse.Namespace) -> int:
    """Train the super-network, then save it with its tokenizer, supernet.json, metrics.json and run.json."""
    if args.epochs is None:  # resolved here, so that run.json records the epochs the run trained
        args = argparse.Namespace(**{**vars(args), "epochs": default_epochs(args.init_from)})
    check_option_ranges(args)
    train_supernet(TrainSupernetSettings.from_args(args), arguments=vars(args))
    return 0


def fine_tune_first(run: ModelRun, folder: Path, arguments: Mapping[str, Any]) -> None:
    """Plain fine-tuning into ``folder`` (as ``plm-nas finetune`` writes it, so pruning baselines can start from it),
    unless it finished before; an interrupted one continues from its last epoch."""
    from benchmarks.finetuning import fine_tune_run

    if (folder / METRICS_FILE).is_file() and (folder / BEST_MODEL_DIR).is_dir():
        print(f"plain fine-tuning: done before, in {folder}", flush=True)
        return
    print(f"plain fine-tuning first ({run.trainer.epochs} epochs) into {folder}", flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    write_run_info(folder, arguments, seed=run.trainer.seed, keep_previous=(folder / CHECKPOINT_DIR).exists(),
                   command_name="finetune", precision=run.trainer.precision)
    write_task_file(run.task, folder)
    summary = fine_tune_run(run, folder, resume=(folder / CHECKPOINT_DIR).exists())
    print(f"plain fine-tuning: best epoch {summary['best_epoch']}, test {run.task.main_metric} "
          f"{summary['test']['main']:.4f}", flush=True)


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
        check_resume(output_dir / CHECKPOINT_DIR, run.trainer, strategy_name, settings.data_identity())
    if settings.finetune is not None:
        fine_tune_first(settings.finetune, output_dir / FINETUNED_DIR, {**arguments, "min_train_words": None})
    if run.data.min_train_words:
        print(f"super-network training examples: those of at least {run.data.min_train_words} words "
              f"(--min-train-words; 0: all)", flush=True)
    setup = prepare(run)  # model, tokenizer and data load (or fail) before anything is written
    output_dir.mkdir(parents=True, exist_ok=True)
    write_run_info(output_dir, arguments, seed=run.trainer.seed, keep_previous=settings.resume,
                   command_name="train-supernet", precision=run.trainer.precision)
    write_task_file(run.task, output_dir)
    supernet = SuperNetwork(setup.model)
    space = get_search_space(settings.search_space, supernet.shape)
    strategy = get_strategy(strategy_name, space, **settings.strategy.options())
    options = {name: getattr(strategy, name) for name in strategy_options(strategy_name)}
    probes = probe_sub_networks(space)
    sub_networks = probe_masks(probes)
    teacher = None
    if settings.teacher is not None:
        from supernet.loading import load_model
        from supernet.teacher import Teacher

        task = setup.task
        teacher = Teacher(load_model(str(settings.teacher), head=task.head, num_labels=task.num_labels,
                                     problem_type=task.problem_type, device=setup.device),
                          temperature=settings.teacher_temperature, hidden_weight=settings.teacher_hidden_weight)
    trainer = Trainer(
        supernet,
        strategy,
        setup.loaders["train"],
        run.trainer,
        checkpoint_dir=output_dir / CHECKPOINT_DIR,
        callbacks=[SubNetworkValidation(setup, sub_networks)],
        data_identity=settings.data_identity(),
        teacher=teacher,
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
        "precision": run.trainer.precision,
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
