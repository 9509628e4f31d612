"""The ``plm-nas`` command line: one registry of subcommands, each a module with ``add_arguments``/``run``.

Subcommand modules are imported only when used, so ``plm-nas --help`` stays fast and a command's heavy
dependencies load only for that command. :func:`main` is the console entry point: a refused input prints one
line, ``plm-nas COMMAND: error: WHAT``, on stderr and exits 2 (any other failure: one line, exit 1); the
traceback is shown only with ``--debug`` or ``PLM_NAS_DEBUG=1``. :func:`run_command` is the same without the
handler, for Python callers that want the exception. Both keep transformers' load reports and weight-loading bars
off unless ``--verbose`` or ``PLM_NAS_VERBOSE=1`` (:mod:`benchmarks.verbosity`).
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import traceback
from dataclasses import dataclass
from typing import NoReturn, Sequence

from benchmarks.verbosity import VERBOSE_ENV, VERBOSE_FLAG, configure_output, verbose_requested

DEBUG_FLAG = "--debug"
DEBUG_ENV = "PLM_NAS_DEBUG"
USAGE_EXIT = 2  # argparse's code for a refused argument; every refused input exits with it
FAILURE_EXIT = 1
INTERRUPTED_EXIT = 130
GLOBAL_FLAGS = (DEBUG_FLAG, VERBOSE_FLAG)  # taken anywhere on the command line, by every command
# Errors that mean "the input is wrong": raised by the checks of every command and by file parsers.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)


class CommandParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (no usage block), exit 2.

    Abbreviated options are refused: ``--epoch 2`` would otherwise silently mean ``--epochs 2``.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_EXIT, f"{self.prog}: error: {' '.join(message.split())} (see '{self.prog} --help')\n")


@dataclass(frozen=True)
class Command:
    module: str
    help: str
    loads_models: bool = True  # False: never imports transformers, so there is nothing to quieten


COMMANDS: dict[str, Command] = {
    "info": Command("benchmarks.commands.info", "summarise a model, a task and the search spaces"),
    "finetune": Command("benchmarks.commands.finetune", "fine-tune the full model on a task"),
    "train-supernet": Command("benchmarks.commands.train_supernet", "train a weight-sharing super-network"),
    "search": Command("benchmarks.commands.search", "weight-sharing multi-objective search on a trained super-network"),
    "nas": Command("benchmarks.commands.nas", "standard NAS: fine-tune each sampled sub-network (Syne Tune)"),
    "export": Command("benchmarks.commands.export", "extract chosen sub-networks of a results table as standalone models"),
    "prune": Command("benchmarks.commands.prune", "structural pruning baselines (layer dropping, head pruning, RFP)"),
    "latency-table": Command("benchmarks.commands.latency_table",
                             "measure a latency table: predicted latency of any sub-network, for --latency-table"),
    "report": Command("plotting.report", "hypervolume tables, ranks and figures from results files",
                      loads_models=False),
    "experiments": Command("benchmarks.commands.experiments",  # its steps are processes of their own
                           "run a grid of experiments (paper or CPU-sized), resumable", loads_models=False),
    "demo": Command("benchmarks.commands.demo", "the main job: super-network, search, extraction and report on MiniLM"),
}


def available_commands() -> dict[str, Command]:
    """Commands whose package is installed (all of them in a complete checkout); nothing is imported to tell."""
    return {name: cmd for name, cmd in COMMANDS.items()
            if importlib.util.find_spec(cmd.module.partition(".")[0]) is not None}


def _top_level_parser(commands: dict[str, Command]) -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="plm-nas",
        description="Structural pruning of pre-trained language models by multi-objective NAS.",
        epilog="Run 'plm-nas COMMAND --help' for the options of one command. Errors are one line; add "
        f"{DEBUG_FLAG} (or set {DEBUG_ENV}=1) to see the traceback, and {VERBOSE_FLAG} (or set {VERBOSE_ENV}=1) to "
        "see the load reports and weight-loading bars of transformers.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, cmd in commands.items():
        sub.add_parser(name, help=cmd.help, add_help=False)
    return parser


def build_parser(name: str, command: Command) -> argparse.ArgumentParser:
    """The full parser of one subcommand (imports its module)."""
    module = importlib.import_module(command.module)
    parser = CommandParser(prog=f"plm-nas {name}", description=command.help,
                           epilog=f"Add {DEBUG_FLAG} (or set {DEBUG_ENV}=1) to see the traceback of an error, "
                                  f"{VERBOSE_FLAG} (or set {VERBOSE_ENV}=1) to see transformers' load reports.")
    module.add_arguments(parser)
    parser.set_defaults(_run=module.run)
    return parser


def run_command(argv: Sequence[str]) -> int:
    """Parse ``argv`` (command and options) and run the command; errors propagate as exceptions."""
    verbose = verbose_requested(argv)
    argv = [arg for arg in argv if arg not in GLOBAL_FLAGS]
    commands = available_commands()
    top = _top_level_parser(commands)
    if not argv or argv[0] in ("-h", "--help"):
        top.print_help(sys.stdout if argv else sys.stderr)
        return 0 if argv else USAGE_EXIT
    name = argv[0]
    if name not in commands:
        top.error(f"unknown command {name!r}; choose from {', '.join(commands)}")
    args = build_parser(name, commands[name]).parse_args(argv[1:])
    if commands[name].loads_models or verbose:
        configure_output(verbose)
    return int(args._run(args) or 0)


def debug_requested(argv: Sequence[str]) -> bool:
    """``--debug`` anywhere on the command line, or ``PLM_NAS_DEBUG`` set to a true value."""
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def error_line(command: str, err: BaseException) -> str:
    """``plm-nas COMMAND: error: WHAT`` on one line; an unexpected error names its type and the --debug hint."""
    from benchmarks.errors import CommandFailed, one_line

    prog = f"plm-nas {command}".rstrip()
    if isinstance(err, (*USER_ERRORS, CommandFailed)):
        return f"{prog}: error: {one_line(err)}"
    return (f"{prog}: error: unexpected {type(err).__name__}: {one_line(err)} "
            f"(rerun with {DEBUG_FLAG} for the traceback, and please report it)")


def main(argv: Sequence[str] | None = None) -> int:
    """The ``plm-nas`` console entry point: run a command, turning any error into one line and an exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(argv)
    command = next((arg for arg in argv if arg not in GLOBAL_FLAGS), "")
    command = command if command in COMMANDS else ""
    prog = f"plm-nas {command}".rstrip()
    try:
        return run_command(argv)
    except SystemExit as done:  # argparse (help, refused arguments) and stages that exit with a message
        if isinstance(done.code, int) or done.code is None:
            return int(done.code or 0)
        print(f"{prog}: error: {done.code}", file=sys.stderr, flush=True)
        return FAILURE_EXIT
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(f"{prog}: interrupted", file=sys.stderr, flush=True)
        return INTERRUPTED_EXIT
    except Exception as err:  # noqa: BLE001 - the one place that turns every error into an exit code
        if debug:
            traceback.print_exc()
        sys.stdout.flush()
        print(error_line(command, err), file=sys.stderr, flush=True)
        return USAGE_EXIT if isinstance(err, USER_ERRORS) else FAILURE_EXIT


if __name__ == "__main__":
    sys.exit(main())
