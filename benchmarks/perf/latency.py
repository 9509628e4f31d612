"""Measured inference latency of a model: on pre-tokenised batches (tokenisation stays outside the timing), or on a
synthetic batch of fixed size and length (:class:`LatencySetting`), under a precision's autocast."""
from __future__ import annotations

import contextlib
import os
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Iterator, Sequence

import torch

from supernet.precision import FP32, Precision


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
    model: torch.nn.Module, batches: Sequence[dict[str, torch.Tensor]], warmup: int = 1, repeats: int = 3,
    precision: Precision = FP32,
) -> Latency:
    """Time ``repeats`` passes over ``batches`` after ``warmup`` passes, in eval mode with no gradients, forward
    passes under ``precision``'s autocast."""
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
                with precision.autocast(model):
                    model(**batch)
        times = []
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            for batch in batches:
                with precision.autocast(model):
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


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


@dataclass(frozen=True)
class LatencySetting:
    """Where and how a latency is measured: one batch of ``batch_size`` sequences of ``seq_len`` tokens (no
    padding), ``threads`` CPU threads (None: torch's default), forward passes in ``precision`` on ``device``; the
    median of ``repeats`` timed passes after ``warmup`` untimed ones.

    ``clock`` is ``wall`` (what a user waits for) or ``cpu``: the process's CPU time, which equals the wall clock
    of one thread on an idle core and is hardly disturbed by other processes sharing the machine (one thread
    only, on the CPU)."""

    batch_size: int = 1
    seq_len: int = 128
    threads: int | None = None
    precision: str = "fp32"
    device: str = "cpu"
    warmup: int = 3
    repeats: int = 10
    clock: str = "wall"

    def __post_init__(self) -> None:
        if self.clock not in CLOCKS:
            raise ValueError(f"clock must be one of {', '.join(CLOCKS)}, got {self.clock!r}")
        if self.clock == "cpu" and (self.threads != 1 or self.device != "cpu"):
            raise ValueError("the cpu clock measures latency only with one thread on the CPU (--threads 1)")
        for name in ("batch_size", "seq_len", "repeats"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")
        if self.warmup < 0:
            raise ValueError(f"warmup must be 0 or more, got {self.warmup}")

    def describe(self) -> str:
        threads = self.threads if self.threads is not None else torch.get_num_threads()
        return (f"{self.device}, {threads} thread(s), {self.precision}, batch {self.batch_size} x {self.seq_len} tokens, "
                f"median of {self.repeats} passes after {self.warmup} warm-up ({self.clock} clock)")

    @property
    def timer(self):
        return CLOCKS[self.clock]


def synthetic_batch(vocab_size: int, batch_size: int, seq_len: int, device: torch.device | str = "cpu",
                    seed: int = 0) -> dict[str, torch.Tensor]:
    """Fixed random token ids (not the first 10 ids, which hold padding and special tokens), no padding."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(10, max(11, vocab_size), (batch_size, seq_len), generator=generator)
    return {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device)}


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's CPU threads set to ``threads`` inside the block (None: unchanged), restored after."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def model_latency_ms(model: torch.nn.Module, setting: LatencySetting, vocab_size: int | None = None) -> float:
    """Median milliseconds of one forward pass of ``model`` over a synthetic batch in ``setting``."""
    device = next(model.parameters()).device
    vocab = vocab_size or int(getattr(getattr(model, "config", None), "vocab_size", 1000))
    batch = synthetic_batch(vocab, setting.batch_size, setting.seq_len, device)
    precision = Precision(setting.precision, device.type)
    with torch_threads(setting.threads):
        latency = measure_latency(model, [batch], warmup=setting.warmup, repeats=setting.repeats, precision=precision)
    return 1000.0 * latency.median_s_per_pass


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else the platform's processor string."""
    import platform

    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device | str) -> str:
    """A readable name of the device latencies were measured on."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()} ({os.cpu_count()} cores)"

