"""Mixed precision: which dtype activations compute in, chosen per device, and the autocast that applies it.

Weights, gradients and optimiser state stay in float32 ("master weights"); only the matrix products and
attention of each forward pass run in bfloat16 or float16 under :func:`torch.autocast`. Losses, softmax and
normalisation accumulate in float32 (autocast's own lists, and :mod:`supernet.strategies.losses` casts logits
to float32 before any loss), so what changes is the precision of activations, not of the updates.

The task head (BERT's pooler and classifier, RoBERTa's classification head) runs in float32: it costs next to
nothing, and bfloat16 keeps about three significant digits, so a regression head's scores (STS-B's 0-5) would come
out in steps of 1/64 and tie, which moves rank metrics such as Spearman's of nearly constant sub-networks by
tenths (measured: Kendall's tau of 100 STS-B sub-networks' validation errors, bf16 against fp32 scoring, 0.76-0.83
with a bf16 head).

Two rules keep training correct:

- Autocast is entered around each forward pass and left before ``backward`` and the optimiser step. Inside
  one autocast region torch caches the low-precision copy of every weight; a region spanning several
  optimiser steps would keep computing with the *first* copy, so the model would never change (a whole
  program wrapped in one ``autocast`` trains nothing).
- float16 has a narrow exponent range, so its gradients are scaled (:class:`torch.amp.GradScaler`); it is
  offered on CUDA only, where it is fast. bfloat16 has float32's range and needs no scaler.

``auto`` picks bfloat16 where the device runs it natively (a CUDA GPU with bf16 support, a CPU with AMX or
AVX512-BF16 instructions, detected at run time) and float32 elsewhere.
"""
from __future__ import annotations

import contextlib
import functools
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ContextManager, Iterator

import torch

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
RESOLVED_PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# CPU flags (as /proc/cpuinfo names them) of instructions that compute bfloat16 products natively.
CPU_BF16_FLAGS: tuple[str, ...] = ("amx_bf16", "avx512_bf16")


@functools.lru_cache(maxsize=1)
def cpu_bf16_feature() -> str | None:
    """The first of :data:`CPU_BF16_FLAGS` this CPU has (``amx_bf16``, ``avx512_bf16``), or None.

    Read from ``/proc/cpuinfo`` on Linux; elsewhere, AMX is asked of torch and anything else counts as absent
    (bfloat16 then runs emulated, slower than float32).
    """
    cpuinfo = Path("/proc/cpuinfo")
    if platform.system() == "Linux" and cpuinfo.is_file():
        try:
            text = cpuinfo.read_text(errors="replace")
        except OSError:
            text = ""
        flags = set()
        for line in text.splitlines():
            if line.startswith("flags"):
                flags.update(line.partition(":")[2].split())
                break
        for flag in CPU_BF16_FLAGS:
            if flag in flags:
                return flag
        return None
    init_amx = getattr(getattr(torch._C, "_cpu", None), "_init_amx", None)
    try:
        return "amx_bf16" if init_amx is not None and bool(init_amx()) else None
    except Exception:  # noqa: BLE001 - a private torch hook; absent or failing means no AMX
        return None


def fast_bf16(device: torch.device) -> tuple[bool, str]:
    """Whether ``device`` runs bfloat16 natively, and why (for the message ``auto`` prints)."""
    if device.type == "cuda":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False):
            return True, f"{torch.cuda.get_device_name(device)} supports bf16"
        return False, "this GPU has no native bf16"
    if device.type == "cpu":
        feature = cpu_bf16_feature()
        if feature is not None:
            return True, f"the CPU has {feature}"
        return False, "the CPU has neither AMX nor AVX512-BF16"
    return False, f"no mixed precision on {device.type}"


def check_precision(name: str, device: torch.device) -> str:
    """``name`` if the device can run it; raise a ValueError that says what to use instead otherwise."""
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}; choose from {', '.join(PRECISIONS)}")
    if name == "fp16" and device.type != "cuda":
        raise ValueError("--precision fp16 runs on CUDA only (with a gradient scaler); on a CPU use bf16 or fp32")
    if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        raise ValueError("--precision bf16: this GPU has no native bf16; use fp16 or fp32")
    return name


@dataclass(frozen=True)
class Precision:
    """A resolved precision (``fp32``, ``bf16``, ``fp16``) on one device type, with the reason it was chosen."""

    name: str = "fp32"
    device_type: str = "cpu"
    reason: str = "asked for"

    def __post_init__(self) -> None:
        if self.name not in RESOLVED_PRECISIONS:
            raise ValueError(f"a resolved precision is one of {', '.join(RESOLVED_PRECISIONS)}, got {self.name!r}")

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self.name]

    @property
    def mixed(self) -> bool:
        """Whether forward passes run in a lower precision than the float32 weights."""
        return self.name != "fp32"

    def autocast(self, model: torch.nn.Module | None = None) -> ContextManager[Any]:
        """The context of ONE forward pass (leave it before ``backward`` and the optimiser step); ``model``'s task
        head (see :func:`head_modules`) runs in float32 inside it."""
        if not self.mixed:
            return contextlib.nullcontext()
        return _mixed(self.device_type, self.dtype, head_modules(model) if model is not None else [])

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """A gradient scaler for float16 training, None otherwise (bfloat16 and float32 need none)."""
        if self.name != "fp16":
            return None
        return torch.amp.GradScaler(self.device_type)

    def describe(self) -> str:
        """``bf16 (auto: the CPU has avx512_bf16)``: what runs, and why."""
        return f"{self.name} ({self.reason})"


FP32 = Precision("fp32", "cpu", "default")


def head_modules(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The task head of a Hugging Face classifier (or of a super-network or fixed network wrapping one): the
    ``classifier`` and, where the encoder has one, its ``pooler``."""
    inner = getattr(model, "model", model)  # SuperNetwork, FixedNetwork: the wrapped model
    modules = [getattr(inner, "classifier", None), getattr(getattr(inner, "base_model", None), "pooler", None)]
    return [module for module in modules if isinstance(module, torch.nn.Module)]


@contextlib.contextmanager
def _mixed(device_type: str, dtype: torch.dtype, heads: list[torch.nn.Module]) -> Iterator[None]:
    """Autocast, with ``heads`` computing in float32 on float32 inputs (their ``forward`` replaced for the block)."""
    patched = []
    for module in heads:
        patched.append((module, module.__dict__.get("forward")))
        module.forward = functools.partial(_float32_forward, module.forward, device_type)
    try:
        with torch.autocast(device_type, dtype=dtype):
            yield
    finally:
        for module, previous in patched:
            if previous is None:
                del module.forward
            else:
                module.forward = previous


def _float32_forward(forward: Any, device_type: str, *args: Any, **kwargs: Any) -> Any:
    cast = [arg.float() if torch.is_tensor(arg) and arg.is_floating_point() else arg for arg in args]
    with torch.autocast(device_type, enabled=False):
        return forward(*cast, **kwargs)


def resolve_precision(requested: str, device: torch.device | str) -> Precision:
    """The precision ``requested`` (one of :data:`PRECISIONS`) means on ``device``; ``auto`` decides at run time."""
    device = torch.device(device)
    if requested == "auto":
        fast, why = fast_bf16(device)
        return Precision("bf16" if fast else "fp32", device.type, f"auto: {why}")
    return Precision(check_precision(requested, device), device.type, "asked for")


def precision_of_device(model: torch.nn.Module, name: str) -> Precision:
    """A resolved precision ``name`` on the device of ``model``'s parameters."""
    param = next(model.parameters(), None)
    device_type = param.device.type if param is not None else "cpu"
    return Precision(name, device_type)
