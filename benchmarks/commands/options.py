"""Options several commands share, and their parsing into typed settings (the only place that sees argparse).

Only light modules are imported at the top, so that ``--help`` and argument errors answer fast; the settings
classes (torch, transformers) are imported by the functions that build them.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.commands.names import DEFAULT_MAX_LENGTH, DEFAULT_MODEL, DEFAULT_PRECISION, PRECISION_NAMES
from benchmarks.results import SIZE_OBJECTIVES

if TYPE_CHECKING:
    from benchmarks.finetuning import ModelRun
    from benchmarks.tasks.loaders import DataSettings
    from supernet.precision import Precision
    from supernet.training import TrainerConfig

DEFAULT_SIZE_OBJECTIVE = "param_fraction"  # as benchmarks.objectives.DEFAULT_SIZE_OBJECTIVE

DEVICES = ("auto", "cpu", "cuda")


DEFAULT_LR = 5e-5  # the CPU protocol's; 2e-5 cost a newcomer 7 points at half the MACs (issue 27)


def add_common_arguments(parser: argparse.ArgumentParser, default_lr: float = DEFAULT_LR,
                         epochs_help: str = "training epochs (default 3)", default_epochs: int | None = 3) -> None:
    """Model, data and optimisation options shared by ``finetune`` and ``train-supernet``."""
    parser.add_argument("--model", default=DEFAULT_MODEL, help="hub name or local folder (default: embedded MiniLM-L6)")
    add_task_arguments(parser)
    parser.add_argument("--output-dir", required=True, type=Path, help="folder for models, metrics and run.json")
    parser.add_argument("--epochs", type=int, default=default_epochs, help=epochs_help)
    parser.add_argument("--lr", type=float, default=default_lr, help=f"AdamW learning rate (default {default_lr:g})")
    parser.add_argument("--batch-size", type=int, default=16, help="training batch size (default 16)")
    parser.add_argument("--eval-batch-size", type=int, default=32, help="evaluation batch size (default 32)")
    parser.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (default 0.01)")
    parser.add_argument("--warmup-ratio", type=float, default=0.1, help="share of steps warming up (default 0.1)")
    parser.add_argument("--max-grad-norm", type=float, default=None, help="clip gradients to this norm (default: off)")
    parser.add_argument(
        "--max-length", type=int, default=DEFAULT_MAX_LENGTH,
        help=f"maximum tokens per example (default {DEFAULT_MAX_LENGTH})",
    )
    parser.add_argument("--max-train-samples", type=int, default=None, help="seeded subset of the training split")
    add_min_train_words_argument(parser)
    parser.add_argument(
        "--max-valid-samples", type=int, default=None,
        help="seeded subset of the validation split (default: 2,048 for large tasks, else all)",
    )
    parser.add_argument("--max-test-samples", type=int, default=None, help="seeded subset of the test split")
    parser.add_argument("--dataset-seed", type=int, default=0, help="seed of the 70/30 train/validation split")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialisation, shuffling, dropout, sampling")
    parser.add_argument("--device", default="auto", choices=DEVICES, help="auto: CUDA when available, else CPU")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    add_precision_argument(parser)
    parser.add_argument("--group-by-length", action="store_true",
                        help="batch training examples of similar length together (less padding; off by default)")
    parser.add_argument("--resume", action="store_true", help="continue from the last epoch checkpoint in --output-dir")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def add_min_train_words_argument(parser: argparse._ActionsContainer) -> None:
    """``--min-train-words N``: train only on examples of at least N words (SST-2's sentence-like ones)."""
    parser.add_argument(
        "--min-train-words", type=int, default=None, metavar="N",
        help="train only on training examples of at least N words, before --max-train-samples (0: all). "
             "SST-2's training split is mostly short phrases, its test set whole sentences: 10 keeps the "
             "sentence-like ones. Default: all, except train-supernet, which takes the task's default for the "
             "super-network (SST-2: 10; its plain fine-tuning stage uses all). Validation and test are never "
             "filtered",
    )


def add_precision_argument(parser: argparse._ActionsContainer, what: str = "forward passes") -> None:
    """``--precision``: the dtype of the forward passes (weights and optimiser state stay float32)."""
    parser.add_argument(
        "--precision", default=DEFAULT_PRECISION, choices=PRECISION_NAMES,
        help=f"dtype of the {what}: auto (bf16 where the device runs it natively: a CPU with AMX or AVX512-BF16, a "
             "GPU with bf16; else fp32), fp32, bf16, or fp16 (CUDA only, with a gradient scaler); weights and "
             f"optimiser state stay fp32 (default {DEFAULT_PRECISION}; a resumed run keeps its own)",
    )


def resolve_precision_option(requested: str, device: str, recorded: str | None = None,
                             where: str = "the earlier run") -> Precision:
    """The precision a command runs in: ``requested`` on ``device``, or for a resumed run the ``recorded`` one.

    ``auto`` keeps a recorded precision (a resumed run or grid finishes in the precision it started with); an
    explicit precision that differs from the recorded one is refused. Prints which precision it picked.
    """
    from benchmarks.errors import UsageError
    from supernet.loading import resolve_device
    from supernet.precision import Precision, check_precision, resolve_precision

    resolved_device = resolve_device(device)
    if recorded is not None:
        if requested not in ("auto", recorded):
            raise UsageError(f"--precision {requested}: {where} ran in {recorded}, and a resumed run keeps its "
                             f"precision; drop --precision (or pass {recorded}), or use another output folder")
        try:
            check_precision(recorded, resolved_device)
        except ValueError as err:
            raise UsageError(f"{where} ran in {recorded}, which this device cannot run: {err}") from err
        precision = Precision(recorded, resolved_device.type, f"kept from {where}")
    else:
        try:
            precision = resolve_precision(requested, resolved_device)
        except ValueError as err:
            raise UsageError(str(err)) from err
    print(f"precision: {precision.describe()}", flush=True)
    return precision


CUSTOM_DATA_OPTIONS = ("validation_file", "test_file", "text_columns", "label_column", "task_type", "metric",
                       "positive_label")


def add_task_arguments(parser: argparse.ArgumentParser, stored: str | None = None) -> None:
    """``--task`` (a built-in task) or your own files (``--train-file`` ...), in the conventions of run_glue.py.

    ``stored`` names where a command finds the task when neither is given (e.g. the fine-tuned model's folder).
    """
    group = parser.add_argument_group(
        "task: a built-in one (--task NAME), or your own data (--train-file, --test-file and --text-columns)")
    needed = f"; default: the one stored with {stored}" if stored else ""
    group.add_argument("--task", default=None,
                       help=f"task name, e.g. rte, mrpc, stsb; with --train-file, the display name of your task{needed}")
    group.add_argument("--data-dir", default=None,
                       help="local copy of a built-in task's data (default: $GLUE_DIR for GLUE tasks, else the hub)")
    add_custom_data_arguments(group)


def add_custom_data_arguments(group: argparse._ActionsContainer) -> None:
    """``--train-file``, ``--test-file`` ... : your own data, in the conventions of run_glue.py."""
    group.add_argument("--train-file", default=None, help="your training data: CSV, TSV, JSON or JSON lines")
    group.add_argument("--validation-file", default=None,
                       help="your validation data (default: a seeded 70/30 split of --train-file)")
    group.add_argument("--test-file", default=None, help="your test data (needed with --train-file)")
    group.add_argument("--text-columns", default=None, help="one text column, or two separated by a comma (A,B)")
    group.add_argument("--label-column", default=None, help="the label column (default: label)")
    group.add_argument("--task-type", default=None, choices=("classification", "regression"),
                       help="default: inferred from the training labels (numbers with fractions: regression), printed")
    group.add_argument("--metric", default=None,
                       help="main metric: accuracy, f1, mcc (two classes) or spearman, pearson (regression)")
    group.add_argument("--positive-label", default=None, help="the class F1 scores (two classes; default: the second)")


def custom_data_argv(args: argparse.Namespace) -> list[str]:
    """The options of your own data as given, to pass on to another command (e.g. the stages of ``demo``)."""
    argv: list[str] = []
    for name in ("train_file", *CUSTOM_DATA_OPTIONS):
        value = getattr(args, name, None)
        if value is not None:
            argv += [_flag(name), str(value)]
    return argv


def custom_data_given(args: argparse.Namespace) -> bool:
    """Whether any option of your own data was given."""
    return any(getattr(args, name, None) is not None for name in ("train_file", *CUSTOM_DATA_OPTIONS))


def task_spec(args: argparse.Namespace, stored: object = None) -> object:
    """The task the options name: a built-in ``--task``, your own files, or ``stored`` (a TaskSpec) when neither.

    Reads the files of a custom task (to learn its labels) and prints what it inferred; every problem is a
    :class:`~benchmarks.errors.UsageError` naming the option or file.
    """
    from benchmarks.errors import UsageError
    from benchmarks.tasks.custom import custom_task
    from benchmarks.tasks.registry import get_task

    if getattr(args, "train_file", None) is None:
        extra = [_flag(name) for name in CUSTOM_DATA_OPTIONS if getattr(args, name, None) is not None]
        if extra:
            raise UsageError(f"{', '.join(extra)} describe your own data: add --train-file and --test-file")
        if args.task is not None:
            return get_task(args.task)
        if stored is not None:
            return stored
        raise UsageError("give --task NAME (a built-in task) or your own data with --train-file, --test-file and "
                         "--text-columns")
    if args.test_file is None:
        raise UsageError("--train-file needs --test-file (and optionally --validation-file)")
    if args.text_columns is None:
        raise UsageError("--train-file needs --text-columns A (or A,B for text pairs)")
    if getattr(args, "data_dir", None) is not None:
        raise UsageError("--data-dir is for built-in tasks; your own data come from --train-file and --test-file")
    columns = [column.strip() for column in args.text_columns.split(",") if column.strip()]
    if not 1 <= len(columns) <= 2:
        raise UsageError(f"--text-columns takes one column or two (A,B), got {args.text_columns!r}")
    files = {"train": args.train_file, "test": args.test_file}
    if args.validation_file is not None:
        files["validation"] = args.validation_file
    for split, path in files.items():
        if not Path(path).is_file():
            raise UsageError(f"--{split}-file {path}: no such file")
    regression = None if args.task_type is None else args.task_type == "regression"
    train = Path(args.train_file).resolve()
    name = args.task or (train.parent.name if train.stem.lower() in ("train", "training") else train.stem)
    try:
        spec = custom_task(name, files, columns, args.label_column or "label", regression=regression,
                           main_metric=args.metric, positive_label=args.positive_label)
    except UsageError:
        raise
    except ValueError as err:
        raise UsageError(str(err)) from err
    if args.task_type is None:
        kind = "regression" if spec.is_regression else f"classification into {', '.join(spec.label_names)}"
        print(f"task {name!r}: {kind} (inferred; --task-type sets it), metric {spec.main_metric}", flush=True)
    return spec


def add_size_objective_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--size-objective`` option of ``nas``, ``search`` and ``prune``."""
    parser.add_argument(
        "--size-objective",
        default=DEFAULT_SIZE_OBJECTIVE,
        choices=SIZE_OBJECTIVES,
        help="size objective minimised beside the validation error (default: param_fraction, the paper's; "
        "mac_fraction or encoder_param_fraction suit small models whose embeddings dominate, like MiniLM; "
        "latency_fraction: predicted latency over the full model's, needs --latency-table)",
    )


def add_latency_table_argument(parser: argparse._ActionsContainer) -> None:
    """``--latency-table FILE``: predicted latency of every row, and the ``latency_fraction`` size objective."""
    parser.add_argument(
        "--latency-table", type=Path, default=None,
        help="a latency table (plm-nas latency-table) measured for this model where it will run: every row gets "
             "its predicted latency (latency_ms, latency_fraction), and --size-objective latency_fraction uses it",
    )


def read_latency_table(path: Path | None) -> object:
    """The latency table at ``path`` (None: none), or a UsageError naming the file."""
    if path is None:
        return None
    from benchmarks.errors import UsageError
    from search_spaces.latency import LatencyTable

    try:
        return LatencyTable.read(path)
    except (OSError, ValueError) as err:
        raise UsageError(f"--latency-table {path}: {err}") from err


def data_settings(args: argparse.Namespace, **overrides: object) -> DataSettings:
    """The data options of a command (those it lacks keep their defaults)."""
    from benchmarks.tasks.loaders import DataSettings

    names = ("data_dir", "dataset_seed", "max_train_samples", "max_valid_samples", "max_test_samples", "max_length",
             "batch_size", "eval_batch_size", "group_by_length", "min_train_words")
    values = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    return DataSettings(**{**values, **overrides})


def trainer_config(args: argparse.Namespace, precision: str = "fp32") -> TrainerConfig:
    """The training protocol of the common options, in a resolved ``precision``."""
    from supernet.loading import resolve_device
    from supernet.training import TrainerConfig

    return TrainerConfig(
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        weight_decay=args.weight_decay,
        warmup_ratio=args.warmup_ratio,
        max_grad_norm=args.max_grad_norm,
        seed=args.seed,
        device=str(resolve_device(args.device)),
        progress=not args.no_progress,
        precision=precision,
    )


def model_run(args: argparse.Namespace) -> ModelRun:
    """The common options of ``finetune`` and ``train-supernet`` as typed settings.

    The precision is resolved here (``auto`` decided for the device; a ``--resume`` keeps the checkpoint's).
    """
    from benchmarks.artifacts import CHECKPOINT_DIR
    from benchmarks.finetuning import ModelRun
    from supernet.training import checkpoint_precision

    recorded = checkpoint_precision(Path(args.output_dir) / CHECKPOINT_DIR) if args.resume else None
    precision = resolve_precision_option(args.precision, args.device, recorded, where="the checkpointed run")
    return ModelRun(model=args.model, task=task_spec(args), data=data_settings(args),
                    trainer=trainer_config(args, precision.name), device=args.device, threads=args.threads)


# ------------------------------------------------------------------------------- checks before any work

POSITIVE_INTS = ("epochs", "batch_size", "eval_batch_size", "max_length", "seq_len", "threads", "max_train_samples",
                 "max_valid_samples", "max_test_samples", "num_random", "rewire_examples", "workers", "max_trials",
                 "cpus_per_worker", "cpus_per_trial", "sample_batch_size", "latency_batch_size", "latency_repeats",
                 "finetune_epochs")
NON_NEGATIVE = ("weight_decay", "max_failures", "num_samples", "seed", "dataset_seed", "teacher_hidden_weight",
                "min_train_words")
POSITIVE_FLOATS = ("lr", "max_grad_norm", "temperature", "max_wallclock", "poll_interval", "step_fraction", "max_scale",
                   "teacher_temperature")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_option_ranges(args: argparse.Namespace) -> None:
    """Refuse out-of-range numbers before anything is loaded or written (only the options a command has)."""
    from benchmarks.errors import UsageError

    given = {name: value for name, value in vars(args).items() if value is not None and not name.startswith("_")}
    for name in POSITIVE_INTS:
        if name in given and given[name] < 1:
            raise UsageError(f"{_flag(name)} must be at least 1, got {given[name]}")
    for name in NON_NEGATIVE:
        if name in given and given[name] < 0:
            raise UsageError(f"{_flag(name)} must be 0 or more, got {given[name]}")
    for name in POSITIVE_FLOATS:
        if name in given and not given[name] > 0:
            raise UsageError(f"{_flag(name)} must be positive, got {given[name]}")
    for name in ("warmup_ratio", "full_warmup"):
        if name in given and not 0 <= given[name] < 1:
            raise UsageError(f"{_flag(name)} must lie in [0, 1), got {given[name]}")
    if "data_dir" in given and not Path(given["data_dir"]).is_dir():
        raise UsageError(f"--data-dir {given['data_dir']}: no such folder; pass the folder that holds the task's "
                         "data (for GLUE: RTE/, MRPC/, ...)")
    check_model_argument(given.get("model"))
    if given.get("device") == "cuda" and given.get("backend") != "ray":  # Ray trials may run on other machines
        from supernet.loading import resolve_device

        resolve_device("cuda")  # refuses a machine without CUDA (ValueError) before anything is loaded
    for name in ("output_dir", "out"):
        if name in given and Path(given[name]).exists() and not Path(given[name]).is_dir():
            raise UsageError(f"{_flag(name)} {given[name]} is a file; pass a folder")


def check_model_argument(model: str | None) -> None:
    """A ``--model`` that looks like a path must be a folder holding config.json (hub names pass)."""
    from benchmarks.errors import UsageError

    if model is None or model == DEFAULT_MODEL:
        return
    path = Path(model)
    looks_local = path.exists() or model.startswith((".", "/", "~")) or model.count("/") > 1
    if looks_local and not (path / "config.json").is_file():
        raise UsageError(f"--model {model}: no model there (a local model is a folder with config.json); pass "
                         f"such a folder, a hub name, or {DEFAULT_MODEL}")
