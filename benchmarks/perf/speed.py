"""Inference speed of sub-networks computed three ways: masked (zeroing), sliced (super-network), extracted.

Run ``python -m benchmarks.perf.speed [--model minilm] [--batches 5] [--batch-size 32] [--seq-len 128]
[--threads N] [--clock wall|cpu] [--device cpu|cuda] [--precision fp32|bf16|fp16] [--dtype float32|bfloat16]
[--out speed.md] [--csv speed.csv]``. ``--precision`` runs the forward passes under autocast with float32 weights
(what the commands do); ``--dtype bfloat16`` casts the weights themselves (a model deployed in bf16).
It times eval-mode, no-grad forward passes over fixed random token ids (no data needed) for the full model and for
``small``-space sub-networks that keep every layer and scale heads and units to about 75%, 50% and 25% of the
encoder MACs, and prints (and optionally writes) a Markdown table, and with ``--csv`` a tidy table (one row per
sub-network and way). Masking should cost as much as the full model; slicing and extraction should scale
with MACs. On CUDA every timed pass ends with a device synchronisation, and the clock must be ``wall``.
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd
import torch

from search_spaces.cost import count_encoder_macs
from search_spaces.masks import SubNetworkMasks
from search_spaces.shape import ModelShape
from search_spaces.spaces import get_search_space
from supernet.extract import extract_sub_network
from supernet.loading import load_model, model_shape, resolve_device
from supernet.model import SuperNetwork
from supernet.precision import FP32, Precision, check_precision
from supernet.reference import masked

DEFAULT_FRACTIONS = (1.0, 0.75, 0.5, 0.25)
WAYS = ("masked", "sliced", "extracted")
# Wall-clock time is what users wait for; CPU time of the process is robust to other processes sharing the
# cores (use it with --threads 1 on a busy machine, where wall-clock times mostly measure the neighbours).
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16}
CSV_COLUMNS = ("model", "device", "dtype", "precision", "batch_size", "seq_len", "sub_network", "mac_fraction",
               "way", "examples_per_s", "time_vs_full")


@dataclass(frozen=True)
class SpeedConfig:
    """What to time and how."""

    model: str | None = None
    batches: int = 5
    warmup: int = 1
    batch_size: int = 32
    seq_len: int = 128
    threads: int = 0  # 0: all cores
    seed: int = 0
    clock: str = "wall"
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    device: str = "cpu"  # "cpu", "cuda" or "auto"
    dtype: str = "float32"  # a key of DTYPES; the model's weights and activations
    precision: str = "fp32"  # autocast of the forward passes (fp32: none), weights in ``dtype``


@dataclass(frozen=True)
class SpeedRow:
    """Throughput of one sub-network, computed three ways."""

    name: str
    mac_fraction: float
    examples_per_second: dict[str, float]


def uniform_masks(shape: ModelShape, fraction: float) -> tuple[str, SubNetworkMasks]:
    """The ``small``-space sub-network keeping all layers with ``fraction`` of the heads and units."""
    heads = min(shape.num_heads, max(1, round(fraction * shape.num_heads)))
    units = min(shape.num_units, max(1, round(fraction * shape.num_units)))
    config = {"num_layers": shape.num_layers, "num_heads": heads, "num_units": units}
    name = "full" if fraction >= 1.0 else f"{shape.num_layers} layers, {heads} heads, {units} units"
    return name, get_search_space("small", shape).to_masks(config)


def random_batch(shape: ModelShape, batch_size: int, seq_len: int, seed: int) -> dict[str, torch.Tensor]:
    """Fixed random token ids (avoiding the first 10 ids, which hold padding/special tokens), no padding."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(10, shape.vocab_size, (batch_size, seq_len), generator=generator)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


Runner = Callable[[], object]


def runners_for(
    model: torch.nn.Module, supernet: SuperNetwork, masks: SubNetworkMasks, batch: dict[str, torch.Tensor],
    precision: Precision = FP32,
) -> dict[str, Runner]:
    """One forward pass of the sub-network ``masks`` per way (masked, sliced, extracted), under ``precision``."""
    extracted = extract_sub_network(model, masks)

    def run_masked() -> object:
        with masked(model, masks), precision.autocast(model):
            return model(**batch)

    def run_sliced() -> object:
        with supernet.sub_network(masks), precision.autocast(supernet):
            return supernet(**batch)

    def run_extracted() -> object:
        with precision.autocast(extracted):
            return extracted(**batch)

    return {"masked": run_masked, "sliced": run_sliced, "extracted": run_extracted}


def best_seconds(
    cells: dict[tuple[str, str], Runner],
    rounds: int,
    warmup: int,
    clock: Callable[[], float] = time.perf_counter,
    sync: Callable[[], None] = lambda: None,
) -> dict[tuple[str, str], float]:
    """Fastest time of each cell over ``rounds`` interleaved rounds, after ``warmup`` rounds.

    Interleaving spreads any load from other processes over all cells, and the minimum is the least
    disturbed measurement (as ``timeit`` recommends). ``sync`` waits for queued device work (CUDA runs
    asynchronously), before the clock starts and before it stops.
    """
    times: dict[tuple[str, str], list[float]] = {key: [] for key in cells}
    with torch.inference_mode():
        for round_index in range(warmup + rounds):
            for key, run in cells.items():
                sync()
                start = clock()
                run()
                sync()
                if round_index >= warmup:
                    times[key].append(clock() - start)
    return {key: min(values) for key, values in times.items()}


def measure(config: SpeedConfig) -> list[SpeedRow]:
    """Time the full model and the sub-networks of ``config.fractions``."""
    torch.set_num_threads(config.threads or os.cpu_count() or 1)
    device = resolve_device(config.device)
    if device.type == "cuda" and config.clock != "wall":
        raise ValueError("CUDA runs asynchronously: time it with --clock wall")
    model = load_model(config.model, device=device).to(DTYPES[config.dtype]).eval()
    shape = model_shape(model)
    supernet = SuperNetwork(model).eval()
    batch = {k: v.to(device) for k, v in random_batch(shape, config.batch_size, config.seq_len, config.seed).items()}
    full_macs = count_encoder_macs(shape, None, config.seq_len)
    named = [uniform_masks(shape, fraction) for fraction in config.fractions]
    precision = Precision(check_precision(config.precision, device), device.type)
    cells = {
        (name, way): run
        for name, masks in named
        for way, run in runners_for(model, supernet, masks, batch, precision).items()
    }
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    seconds = best_seconds(cells, config.batches, config.warmup, CLOCKS[config.clock], sync)
    return [
        SpeedRow(
            name=name,
            mac_fraction=count_encoder_macs(shape, masks, config.seq_len) / full_macs,
            examples_per_second={way: config.batch_size / seconds[name, way] for way in WAYS},
        )
        for name, masks in named
    ]


def markdown_table(rows: Sequence[SpeedRow], config: SpeedConfig) -> str:
    """The result table; "time vs full" divides by the same column's full-model time."""
    full = next((row for row in rows if row.mac_fraction == 1.0), rows[0]).examples_per_second
    header = ["sub-network", "encoder MAC fraction"]
    for way in WAYS:
        header += [f"{way} ex/s", f"{way} time vs full"]
    lines = [
        f"Inference on {config.device}, {config.dtype} weights, {config.precision} forward passes (autocast), "
        f"batch {config.batch_size}, sequence length {config.seq_len}, "
        f"{torch.get_num_threads()} threads, {config.clock}-clock time, fastest of {config.batches} interleaved "
        f"rounds after {config.warmup} warm-up round(s).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in rows:
        cells = [row.name, f"{row.mac_fraction:.3f}"]
        for way in WAYS:
            speed = row.examples_per_second[way]
            cells += [f"{speed:.1f}", f"{full[way] / speed:.2f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def tidy_table(rows: Sequence[SpeedRow], config: SpeedConfig) -> pd.DataFrame:
    """One row per sub-network and way (``CSV_COLUMNS``); ``time_vs_full`` as in :func:`markdown_table`."""
    full = next((row for row in rows if row.mac_fraction == 1.0), rows[0]).examples_per_second
    records = [
        {"model": config.model or "minilm", "device": config.device, "dtype": config.dtype,
         "precision": config.precision, "batch_size": config.batch_size, "seq_len": config.seq_len, "sub_network": row.name,
         "mac_fraction": row.mac_fraction, "way": way, "examples_per_s": row.examples_per_second[way],
         "time_vs_full": full[way] / row.examples_per_second[way]}
        for row in rows
        for way in WAYS
    ]
    return pd.DataFrame.from_records(records, columns=list(CSV_COLUMNS))


def parse_args(argv: Sequence[str] | None = None) -> tuple[SpeedConfig, Path | None, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="hub name or folder; default: the embedded MiniLM-L6")
    parser.add_argument("--batches", type=int, default=SpeedConfig.batches, help="timed batches per cell")
    parser.add_argument("--warmup", type=int, default=SpeedConfig.warmup, help="untimed batches per cell")
    parser.add_argument("--batch-size", type=int, default=SpeedConfig.batch_size)
    parser.add_argument("--seq-len", type=int, default=SpeedConfig.seq_len)
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0: all cores")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall", help="wall-clock or process CPU time")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu", help="where to run (default: cpu)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="weights and activations")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                        help="autocast of the forward passes, as the commands' --precision (default fp32: none)")
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown table here")
    parser.add_argument("--csv", type=Path, default=None, help="also write the tidy table (CSV) here")
    args = parser.parse_args(argv)
    for name in ("batches", "batch_size", "seq_len"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    config = SpeedConfig(
        model=args.model,
        batches=args.batches,
        warmup=args.warmup,
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        threads=args.threads,
        seed=args.seed,
        clock=args.clock,
        device=args.device,
        dtype=args.dtype,
        precision=args.precision,
    )
    return config, args.out, args.csv


def main(argv: Sequence[str] | None = None) -> None:
    config, out, csv = parse_args(argv)
    rows = measure(config)
    table = markdown_table(rows, config)
    print(table)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(table)
    if csv is not None:
        csv.parent.mkdir(parents=True, exist_ok=True)
        tidy_table(rows, config).to_csv(csv, index=False)


if __name__ == "__main__":
    main()
