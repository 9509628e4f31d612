"""``plm-nas latency-table``: measure, once, what predicting any sub-network's latency needs (a latency table).

The table (:mod:`search_spaces.latency`) holds the cost of the embeddings and task head, of an attention block
per number of kept heads and of an FFN block on a grid of kept units, for one model shape, device, thread count,
precision, batch size and sequence length; it records all of these with the device's name, the torch version and
when it was measured. ``search``, ``nas``, ``prune`` and ``report`` take it with ``--latency-table FILE`` (and
``--size-objective latency_fraction``). ``--check N`` also times N held-out random sub-networks of the ``small``,
``medium``, ``layer`` and ``large`` spaces, in the same interleaved rounds as the table's cells, and writes how well
the table predicts them (``FILE.accuracy.csv``, Spearman correlation and median absolute error in the table's
notes).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from benchmarks.commands.names import DEFAULT_MODEL
from benchmarks.commands.options import DEVICES, check_option_ranges, resolve_precision_option

DEFAULT_UNIT_STEP = 32  # as benchmarks.perf.latency_table.DEFAULT_UNIT_STEP


@dataclass(frozen=True)
class LatencyTableSettings:
    """Everything ``plm-nas latency-table`` does, parsed once from its options."""

    model: str
    out: Path
    device: str
    threads: int | None
    precision: str
    batch_size: int
    seq_len: int
    repeats: int
    warmup: int
    clock: str
    unit_step: int
    check: int
    seed: int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL, help="hub name or local folder (default: embedded MiniLM-L6)")
    parser.add_argument("--out", required=True, type=Path, help="the table file to write (JSON)")
    parser.add_argument("--device", default="cpu", choices=DEVICES, help="where the model will run (default cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                        help="dtype of the forward passes, as the model will run (default auto)")
    parser.add_argument("--batch-size", type=int, default=1, help="sequences per batch (default 1)")
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per sequence (default 128)")
    parser.add_argument("--repeats", type=int, default=10, help="timed rounds; each cell keeps the median")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    parser.add_argument("--clock", default="wall", choices=("wall", "cpu"),
                        help="wall clock, or the process's CPU time (one thread only: robust on a shared machine)")
    parser.add_argument("--unit-step", type=int, default=DEFAULT_UNIT_STEP,
                        help=f"FFN units between measured grid points (default {DEFAULT_UNIT_STEP})")
    parser.add_argument("--check", type=int, default=0, metavar="N",
                        help="also time N held-out random sub-networks and report the table's accuracy")
    parser.add_argument("--seed", type=int, default=1, help="seed of the held-out sub-networks (default 1)")


def run(args: argparse.Namespace) -> int:
    check_option_ranges(args)
    from benchmarks.errors import UsageError

    for name in ("repeats", "unit_step"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.warmup < 0 or args.check < 0:
        raise UsageError("--warmup and --check must be 0 or more")
    if args.clock == "cpu" and (args.threads != 1 or args.device != "cpu"):
        raise UsageError("--clock cpu measures latency only with --threads 1 on the CPU")
    if args.out.is_dir():
        raise UsageError(f"--out {args.out} is a folder; pass the table's file name, e.g. {args.out / 'table.json'}")
    precision = resolve_precision_option(args.precision, args.device).name
    settings = LatencyTableSettings(model=args.model, out=args.out, device=args.device, threads=args.threads,
                                    precision=precision, batch_size=args.batch_size, seq_len=args.seq_len,
                                    repeats=args.repeats, warmup=args.warmup, clock=args.clock,
                                    unit_step=args.unit_step, check=args.check, seed=args.seed)
    latency_table(settings)
    return 0


def latency_table(settings: LatencyTableSettings) -> None:
    """Measure the table (and its accuracy with ``check``), write it, and print a summary."""
    from benchmarks.files import write_json_atomic
    from benchmarks.perf.latency import LatencySetting
    from benchmarks.perf.latency_table import accuracy_summary, held_out_masks, measure_table, prediction_accuracy
    from benchmarks.results import write_atomic
    from supernet.loading import load_model

    model = load_model(settings.model, device=settings.device).eval()
    setting = LatencySetting(batch_size=settings.batch_size, seq_len=settings.seq_len, threads=settings.threads,
                             precision=settings.precision, device=settings.device, warmup=settings.warmup,
                             repeats=settings.repeats, clock=settings.clock)
    held = held_out_masks(model, settings.check, settings.seed) if settings.check else {}
    table, measured = measure_table(model, setting, settings.model, unit_step=settings.unit_step, also=held)
    if settings.check:
        accuracy = prediction_accuracy(model, table, measured, held)
        path = settings.out.with_name(settings.out.stem + ".accuracy.csv")
        write_atomic(accuracy, path)
        summary = accuracy_summary(accuracy)
        table = type(table)(**{**table.__dict__, "notes": {**table.notes, "accuracy": summary}})
        print(f"held-out check ({summary['sub_networks']} sub-networks): Spearman {summary['spearman']:.3f}, "
              f"median absolute error {summary['median_absolute_error']:.1%}; {path}", flush=True)
    write_json_atomic(table.to_dict(), settings.out)
    print(f"latency table of {settings.model} ({table.describe()}): full model {table.full_ms:.2f} ms measured, "
          f"{table.full_prediction_ms():.2f} ms predicted, embeddings and head {table.fixed_ms:.2f} ms; "
          f"{settings.out}", flush=True)
