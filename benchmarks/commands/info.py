"""``plm-nas info``: what a model, a task and each search space look like, before spending compute; which precision
``auto`` picks on this machine; and with ``--run DIR``, what produced a run folder (its command, precision, seed)."""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.commands.options import add_task_arguments, check_option_ranges, custom_data_given, task_spec

if TYPE_CHECKING:  # torch loads only when the command runs, so --help answers fast
    from benchmarks.tasks.registry import TaskSpec
    from search_spaces.shape import ModelShape


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="minilm", help="hub name or local folder (default: embedded MiniLM-L6)")
    add_task_arguments(parser)  # optional here: a task sets the number of labels and the head
    parser.add_argument("--seq-len", type=int, default=128, help="sequence length for MAC counts")
    parser.add_argument("--run", type=Path, default=None,
                        help="a run's output folder (any command's): say what produced it instead")


def _format_count(n: float) -> str:
    if n >= 1e9:
        return f"{n / 1e9:.2f}G"
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}k"
    return str(int(n))


def _format_size(size: float) -> str:
    if size < 1e15:
        return f"{int(size):,}"
    return f"10^{math.log10(size):.0f}"


def describe(shape: ModelShape, seq_len: int) -> list[str]:
    """Lines of the model and search-space summary."""
    from search_spaces import SEARCH_SPACES, get_search_space
    from search_spaces.cost import cost_of

    full = cost_of(shape, None, seq_len=seq_len)
    lines = [
        f"family: {shape.model_type} ({shape.head}, {shape.num_outputs} output(s))",
        f"layers: {shape.num_layers}  heads/layer: {shape.num_heads} (head size {shape.head_dim})  "
        f"FFN units/layer: {shape.num_units}  hidden: {shape.hidden_size}",
        f"parameters: {full.params:,} (encoder {full.encoder_params:,}, "
        f"{full.encoder_params / full.params:.1%} of the model)",
        f"MACs at sequence length {seq_len}: {_format_count(full.macs)}",
        "",
        "size of the smallest and mid-point sub-networks as fractions of the full model's parameters / MACs:",
        f"{'search space':<14}{'dimensions':>12}{'configurations':>24}{'smallest':>18}{'mid-point':>18}",
    ]
    for name in SEARCH_SPACES:
        space = get_search_space(name, shape)
        smallest = cost_of(shape, space.to_masks(space.smallest()), seq_len=seq_len)
        mid = cost_of(shape, space.to_masks(space.midpoint()), seq_len=seq_len)
        lines.append(
            f"{name:<14}{space.num_dimensions:>12}{_format_size(space.size()):>24}"
            f"{smallest.param_fraction:>10.1%} /{smallest.mac_fraction:>6.1%}"
            f"{mid.param_fraction:>10.1%} /{mid.mac_fraction:>6.1%}"
        )
    return lines


@dataclass(frozen=True)
class InfoSettings:
    """What ``plm-nas info`` describes, parsed once from its options (``task=None``: no task given)."""

    model: str = "minilm"
    task: TaskSpec | None = None
    seq_len: int = 128

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "InfoSettings":
        task = task_spec(args) if args.task or custom_data_given(args) else None
        return cls(model=args.model, task=task, seq_len=args.seq_len)


def precision_lines() -> list[str]:
    """What ``--precision auto`` picks on this machine's CPU and, where there is one, its GPU."""
    import torch

    from supernet.precision import resolve_precision

    lines = [f"precision auto on the CPU: {resolve_precision('auto', 'cpu').describe()}"]
    if torch.cuda.is_available():
        lines.append(f"precision auto on CUDA: {resolve_precision('auto', 'cuda').describe()}")
    return lines


TRAINING_COMMANDS = ("finetune", "train-supernet", "search", "nas", "prune")


def run_lines(folder: Path) -> list[str]:
    """What produced a run folder, from its ``run.json`` (and a super-network's ``supernet.json``)."""
    import json

    from benchmarks.errors import UsageError
    from benchmarks.files import RUN_INFO_FILE

    path = folder / RUN_INFO_FILE
    if not path.is_file():
        raise UsageError(f"--run {folder}: no {RUN_INFO_FILE} there; pass the output folder of a plm-nas command")
    try:
        record = json.loads(path.read_text())
    except ValueError as err:
        raise UsageError(f"--run {folder}: {path} is not valid JSON ({err})") from err
    command = record.get("command_name") or next(iter(record.get("command", [])[1:2]), "?")
    precision = record.get("precision")
    if precision is None:
        precision = "fp32 (recorded before mixed precision existed)" if command in TRAINING_COMMANDS else "not recorded"
    lines = [
        f"run: {folder}",
        f"command: {' '.join(['plm-nas', *record.get('command', [])[1:]])}",
        f"precision: {precision}",
        f"seed: {record.get('seed')}",
        f"started: {record.get('started_at')}  ({len(record.get('previous', []))} earlier invocation(s) resumed)",
        "versions: " + ", ".join(f"{name} {version}" for name, version in (record.get("versions") or {}).items()),
    ]
    git = record.get("git") or {}
    if git:
        lines.append(f"git: {git.get('commit')}{' (uncommitted changes)' if git.get('dirty') else ''}")
    return lines


def run(args: argparse.Namespace) -> int:
    """Print the model's shape, the task's labels and metric, and each search space's size and extremes."""
    check_option_ranges(args)
    if args.run is not None:
        for line in run_lines(args.run):
            print(line)
        return 0
    settings = InfoSettings.from_args(args)
    shape, header = model_summary(settings)
    for line in header:
        print(line)
    for line in describe(shape, settings.seq_len):
        print(line)
    print()
    for line in precision_lines():
        print(line)
    return 0


def model_summary(settings: InfoSettings) -> tuple[ModelShape, list[str]]:
    """The model's shape (with the task's head, when a task is given) and the lines naming the model and task."""
    from search_spaces.shape import ModelShape
    from supernet.loading import load_config, resolve_model_name

    head, num_labels, task_line = "sequence-classification", 2, None
    task = settings.task
    if task is not None:
        head, num_labels = task.head, task.num_labels
        task_line = f"task: {task.name} ({'regression' if task.is_regression else f'{task.num_labels} classes'}, "
        task_line += f"metric {task.main_metric})"
        if task.supernet_min_train_words:
            task_line += (f"; train-supernet trains the super-network on its training examples of at least "
                          f"{task.supernet_min_train_words} words (--min-train-words)")
    config = load_config(settings.model, num_labels=num_labels)
    shape = ModelShape.from_config(config, head=head)
    header = [f"model: {resolve_model_name(settings.model)}"]
    if task_line:
        header.append(task_line)
    return shape, header
