"""The ``plm-nas`` command line: one registry of subcommands, each a module with ``add_arguments``/``run``.

Subcommand modules are imported only when used, so ``plm-nas --help`` stays fast and a command's heavy
dependencies load only for that command.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class Command:
    module: str
    help: str


COMMANDS: dict[str, Command] = {
    "info": Command("benchmarks.commands.info", "summarise a model, a task and the search spaces"),
    "finetune": Command("benchmarks.commands.finetune", "fine-tune the full model on a task"),
    "train-supernet": Command("benchmarks.commands.train_supernet", "train a weight-sharing super-network"),
    "search": Command("benchmarks.commands.search", "weight-sharing multi-objective search on a trained super-network"),
    "nas": Command("benchmarks.commands.nas", "standard NAS: fine-tune each sampled sub-network (Syne Tune)"),
    "export": Command("benchmarks.commands.export", "extract chosen sub-networks of a results table as standalone models"),
    "prune": Command("benchmarks.commands.prune", "structural pruning baselines (layer dropping, head pruning, RFP)"),
    "report": Command("plotting.report", "hypervolume tables, ranks and figures from results files"),
    "experiments": Command("benchmarks.commands.experiments", "run a grid of experiments (paper or CPU-sized), resumable"),
    "demo": Command("benchmarks.commands.demo", "the main job: super-network, search, extraction and report on MiniLM"),
}


def available_commands() -> dict[str, Command]:
    """Commands whose module is installed (all of them in a complete checkout)."""
    return {name: cmd for name, cmd in COMMANDS.items() if importlib.util.find_spec(cmd.module) is not None}


def _top_level_parser(commands: dict[str, Command]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plm-nas",
        description="Structural pruning of pre-trained language models by multi-objective NAS.",
        epilog="Run 'plm-nas COMMAND --help' for the options of one command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, cmd in commands.items():
        sub.add_parser(name, help=cmd.help, add_help=False)
    return parser


def build_parser(name: str, command: Command) -> argparse.ArgumentParser:
    """The full parser of one subcommand (imports its module)."""
    module = importlib.import_module(command.module)
    parser = argparse.ArgumentParser(prog=f"plm-nas {name}", description=command.help)
    module.add_arguments(parser)
    parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = available_commands()
    top = _top_level_parser(commands)
    if not argv or argv[0] in ("-h", "--help"):
        top.print_help()
        return 0 if argv else 2
    name = argv[0]
    if name not in commands:
        top.error(f"unknown command {name!r}; choose from {', '.join(commands)}")
    args = build_parser(name, commands[name]).parse_args(argv[1:])
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
