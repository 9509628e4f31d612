"""How much faster mixed precision and length-sorted batches make the project's work, measured in one run.

``python -m benchmarks.perf.precision_speed --supernet RUN/supernet --out DIR [--threads 2] [--steps 40]
[--num-samples 100] [--demo]`` times, on the super-network's task and data:

- a weight-sharing search's scoring: the same ``--num-samples`` sub-networks (drawn from the space with seed 0)
  scored on the validation split, the way the search did before mixed precision (fp32, validation batches in the
  dataset's order, padded for every sub-network) and the way it does now (``--precision``, default auto, batches
  sorted by length and padded once per search);
- super-network training (sandwich steps, every step after the full-network warm-up) and plain fine-tuning
  (``standard``): ``--steps`` optimiser steps each, as before (fp32, torch's multi-tensor AdamW) and now (fused
  AdamW, fp32 and ``--precision``, with and without ``--group-by-length``); the epoch time follows from the steps
  per epoch of the run's training split;
- with ``--demo``, ``plm-nas demo`` end to end, once with ``--precision fp32`` and once with ``--precision``.

Every variant runs on the same machine in the same process (the demo in subprocesses), one after another, so the
ratios are comparable; run it on an otherwise idle machine. Writes ``DIR/speed.csv`` (one row per measurement:
what, variant, seconds, units, seconds per unit) and ``DIR/speed.md``, and prints the ratios.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from benchmarks.artifacts import SuperNetSource, supernet_task
from benchmarks.files import write_json_atomic
from benchmarks.tasks.loaders import DataSettings, make_dataloaders, task_splits
from benchmarks.tasks.metrics import metrics_fn
from benchmarks.ws.scoring import CollatedBatches
from search_spaces import get_search_space
from supernet.evaluation import evaluate
from supernet.model import SuperNetwork
from supernet.precision import Precision, resolve_precision
from supernet.strategies import get_strategy
from supernet.training import Trainer, TrainerCallback, TrainerConfig


@dataclass(frozen=True)
class Measurement:
    """Seconds that ``units`` of ``what`` took in one ``variant``."""

    what: str
    variant: str
    seconds: float
    units: int
    unit: str

    @property
    def per_unit(self) -> float:
        return self.seconds / self.units


def _loaders(source: SuperNetSource, data: DataSettings, sort: bool, group: bool = False, seed: int = 0):
    task = supernet_task(source.info, source.folder)
    splits = task_splits(task, data)
    return task, make_dataloaders(task, splits, source.tokenizer, batch_size=data.batch_size,
                                  eval_batch_size=data.eval_batch_size, max_length=data.max_length, seed=seed,
                                  sort_eval_by_length=sort, group_by_length=group)


def time_search(source: SuperNetSource, data: DataSettings, precision: Precision, num_samples: int
                ) -> list[Measurement]:
    """Scoring ``num_samples`` sampled sub-networks on validation: before (fp32, dataset order) and now."""
    supernet = SuperNetwork(source.model).eval()
    space = get_search_space(str(source.info["search_space"]), source.shape)
    rng = np.random.default_rng(0)
    configs = [space.sample(rng) for _ in range(num_samples)]
    results = []
    variants = (("before: fp32, batches in dataset order", Precision("fp32"), False),
                (f"now: {precision.name}, batches sorted by length, padded once", precision, True))
    for name, chosen, now in variants:
        task, loaders = _loaders(source, data, sort=now)
        score = metrics_fn(task)
        evaluate(supernet, loaders["validation"], masks=space.to_masks(configs[0]), metrics_fn=score,
                 precision=chosen)  # warm-up
        started = time.perf_counter()
        # as the search does now: the split's batches padded once (timed), every sub-network scored on them
        batches = CollatedBatches(loaders["validation"]) if now else loaders["validation"]
        for config in configs:
            evaluate(supernet, batches, masks=space.to_masks(config), metrics_fn=score, precision=chosen)
        results.append(Measurement("search (scoring)", name, time.perf_counter() - started, num_samples,
                                   "sub-network"))
    return results


def time_training(source: SuperNetSource, data: DataSettings, precision: Precision, steps: int
                  ) -> tuple[list[Measurement], dict[str, int]]:
    """``steps`` optimiser steps of sandwich super-network training and of plain fine-tuning, per variant."""
    results = []
    steps_per_epoch = {}
    variants = (("before: fp32, multi-tensor AdamW", Precision("fp32"), False, False),
                ("fp32, fused AdamW", Precision("fp32"), False, True),
                (f"now: {precision.name}, fused AdamW", precision, False, True),
                (f"{precision.name}, fused AdamW, group by length", precision, True, True))
    for strategy_name, what in (("sandwich", "super-network training"), ("standard", "fine-tuning")):
        for name, chosen, group, fused in variants:
            _, loaders = _loaders(source, data, sort=True, group=group)
            train = loaders["train"]
            steps_per_epoch[what] = len(train)
            model = SuperNetSource.load(source.folder, device="cpu").model  # a fresh copy per variant
            supernet = SuperNetwork(model)
            space = get_search_space(str(source.info["search_space"]), supernet.shape)
            strategy = (get_strategy("standard") if strategy_name == "standard"
                        else get_strategy(strategy_name, space, full_warmup=0.0))
            config = TrainerConfig(epochs=1, lr=5e-5, batch_size=data.batch_size, seed=0, device="cpu",
                                   progress=False, precision=chosen.name)
            timer = StepTimer()
            with _adamw_fused(fused):
                trainer = Trainer(supernet, strategy, _first_batches(train, steps + 2), config, callbacks=[timer])
            trainer.fit()  # the first two steps are the warm-up, then ``steps`` timed ones
            times = timer.seconds()[2:]
            results.append(Measurement(what, name, float(sum(times)), len(times), "step"))
    return results, steps_per_epoch


@contextlib.contextmanager
def _adamw_fused(fused: bool):
    """The Trainer's AdamW fused or not (before fused AdamW, the Trainer used torch's multi-tensor one)."""
    from supernet import training

    original = training.fused_adamw
    training.fused_adamw = lambda device: fused and original(device)
    try:
        yield
    finally:
        training.fused_adamw = original


class StepTimer(TrainerCallback):
    """When each training step began, and when the epoch's training ended: the steps' wall-clock seconds."""

    def __init__(self) -> None:
        self.marks: list[float] = []

    def on_step_begin(self, trainer: Trainer, step: int) -> None:
        self.marks.append(time.perf_counter())

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        self.marks.append(time.perf_counter())

    def seconds(self) -> list[float]:
        return [end - start for start, end in zip(self.marks, self.marks[1:])]


class _first_batches:
    """The first ``count`` batches of a training loader, in its (seeded) order, re-iterable like a loader."""

    def __init__(self, loader, count: int) -> None:
        self.batches = []
        for batch in loader:
            self.batches.append(batch)
            if len(self.batches) == count:
                break

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


def time_demo(out: Path, precision: str, data_dir: str | None, threads: int | None) -> list[Measurement]:
    """``plm-nas demo`` end to end, fp32 and ``precision``, each in a fresh folder."""
    results = []
    for name in ("fp32", precision):
        folder = out / f"demo-{name}"
        argv = [sys.executable, "-m", "benchmarks.cli", "demo", "--output-dir", str(folder), "--precision", name,
                "--no-progress"]
        argv += ["--data-dir", data_dir] if data_dir else []
        argv += ["--threads", str(threads)] if threads else []
        started = time.perf_counter()
        with open(out / f"demo-{name}.log", "w") as log:
            subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=True)
        results.append(Measurement("demo", name, time.perf_counter() - started, 1, "run"))
    return results


def ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """Each variant's speed-up over the first variant of the same measurement (its seconds per unit)."""
    first = frame.groupby("what", sort=False)["seconds_per_unit"].transform("first")
    return frame.assign(speed_up=first / frame["seconds_per_unit"])


def markdown(frame: pd.DataFrame) -> str:
    """The frame as a Markdown table, numbers with three decimals."""
    def cell(value: object) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--supernet", required=True, type=Path, help="a train-supernet output (or its supernet/)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp16"))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--steps", type=int, default=40, help="timed optimiser steps per training variant")
    parser.add_argument("--num-samples", type=int, default=100, help="sub-networks scored per search variant")
    parser.add_argument("--demo", action="store_true", help="also time plm-nas demo, fp32 and --precision")
    parser.add_argument("--data-dir", default=None, help="for --demo: the GLUE copy (default: $GLUE_DIR)")
    parser.add_argument("--skip", nargs="*", default=(), choices=("search", "training"), help="leave these out")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    source = SuperNetSource.load(args.supernet, device="cpu")
    precision = resolve_precision(args.precision, "cpu")
    info = source.info
    data = DataSettings(data_dir=info.get("data_dir"), dataset_seed=int(info["dataset_seed"]),
                        max_train_samples=info.get("max_train_samples"), max_valid_samples=info.get("max_valid_samples"),
                        max_length=int(info.get("max_length") or 128), batch_size=16, eval_batch_size=32)
    args.out.mkdir(parents=True, exist_ok=True)
    measurements: list[Measurement] = []
    epochs: dict[str, int] = {}
    if "search" not in args.skip:
        measurements += time_search(source, data, precision, args.num_samples)
    if "training" not in args.skip:
        timed, epochs = time_training(source, data, precision, args.steps)
        measurements += timed
    if args.demo:
        measurements += time_demo(args.out, args.precision, args.data_dir, args.threads)
    frame = ratios(pd.DataFrame.from_records(
        [{"what": m.what, "variant": m.variant, "seconds": round(m.seconds, 2), "units": m.units, "unit": m.unit,
          "seconds_per_unit": m.per_unit} for m in measurements]))
    frame["epoch_minutes"] = [epochs[what] * row / 60 if what in epochs else np.nan
                              for what, row in zip(frame["what"], frame["seconds_per_unit"])]
    frame.to_csv(args.out / "speed.csv", index=False)
    setting = {"task": info["task"], "threads": torch.get_num_threads(), "precision": precision.describe(),
               "torch": torch.__version__, "steps_per_epoch": epochs, "command": sys.argv}
    write_json_atomic(setting, args.out / "setting.json")
    table = markdown(frame)
    (args.out / "speed.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
