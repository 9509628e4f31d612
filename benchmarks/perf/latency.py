"""Measured inference latency of a model on pre-tokenised batches (tokenisation stays outside the timing)."""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Sequence

import torch


@dataclass(frozen=True)
class Latency:
    """Median wall-clock time per batch over repeats, and the throughput it implies."""

    batch_size: int
    num_batches: int
    median_s_per_pass: float  # one pass over all batches
    examples_per_s: float
    ms_per_example: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def measure_latency(
    model: torch.nn.Module, batches: Sequence[dict[str, torch.Tensor]], warmup: int = 1, repeats: int = 3
) -> Latency:
    """Time ``repeats`` passes over ``batches`` after ``warmup`` passes, in eval mode with no gradients."""
    if not batches:
        raise ValueError("measure_latency needs at least one batch")
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    device = next(model.parameters()).device
    batches = [{k: v.to(device) for k, v in b.items() if k != "labels"} for b in batches]
    was_training = model.training
    model.eval()
    try:
        for _ in range(warmup):
            for batch in batches:
                model(**batch)
        times = []
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            for batch in batches:
                model(**batch)
            _sync(device)
            times.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
    examples = sum(int(b["input_ids"].shape[0]) for b in batches)
    median = statistics.median(times)
    return Latency(
        batch_size=int(batches[0]["input_ids"].shape[0]),
        num_batches=len(batches),
        median_s_per_pass=median,
        examples_per_s=examples / median,
        ms_per_example=1000.0 * median / examples,
    )
