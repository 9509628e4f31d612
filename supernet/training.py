"""Training a super-network (or plain fine-tuning) with exact checkpoint/resume.

The :class:`Trainer` runs a :class:`~supernet.strategies.Strategy` over a training loader with AdamW and a
linear schedule with warm-up, one optimiser step per batch. After every epoch it runs its callbacks (for
validation) and then atomically saves a checkpoint with everything the rest of the run depends on: weights,
optimiser, schedule, the Python/NumPy/torch random states, the strategy's NumPy generator, the training
loader's shuffling generator, the step, the epoch and the history. A run killed at any point and started
again with ``resume=True`` continues from the last completed epoch to the same result as a run never stopped
(bit for bit on the same hardware and torch thread count: floating-point sums depend on the thread count).
"""
from __future__ import annotations

import math
import os
import random
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from supernet.loading import resolve_device
from supernet.precision import RESOLVED_PRECISIONS, Precision, check_precision
from supernet.strategies import Strategy
from supernet.teacher import Teacher

CHECKPOINT_FILE = "checkpoint.pt"
# Settings a resumed run must share with the checkpointed one (device and progress bar may change).
_RESUME_MUST_MATCH = ("epochs", "lr", "batch_size", "weight_decay", "warmup_ratio", "max_grad_norm", "seed",
                      "precision")
# What a checkpoint written before a setting existed means by it (checkpoints before mixed precision were fp32).
_RESUME_DEFAULTS = {"precision": "fp32"}
_NO_DECAY_MODULES = (torch.nn.LayerNorm, torch.nn.Embedding)


@dataclass
class TrainerConfig:
    """Optimisation settings. ``batch_size`` is the one the runner builds the loaders with (recorded here).

    ``precision`` is a resolved one (``fp32``, ``bf16``, ``fp16``; see :mod:`supernet.precision`): the dtype of
    the forward passes, while weights and optimiser state stay float32.
    """

    epochs: int = 3
    lr: float = 5e-5
    batch_size: int = 16
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float | None = None
    seed: int = 0
    device: str = "auto"
    progress: bool = True
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.precision not in RESOLVED_PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(RESOLVED_PRECISIONS)} (resolved, not 'auto'), "
                             f"got {self.precision!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be positive or None, got {self.max_grad_norm}")


class TrainerCallback:
    """Hooks of the training loop; override what you need. Callbacks must not draw from the global RNGs."""

    def on_train_begin(self, trainer: "Trainer") -> None:
        """Called once per :meth:`Trainer.fit`, after a checkpoint was restored (``trainer.history`` is set)."""

    def on_step_begin(self, trainer: "Trainer", step: int) -> None:
        """Called before training step ``step`` (0-based over the whole run), before gradients are zeroed."""

    def on_epoch_end(self, trainer: "Trainer", epoch: int) -> Mapping[str, Any] | None:
        """Called after training epoch ``epoch`` (1-based), before its checkpoint; returns metrics for the history."""

    def on_epoch_saved(self, trainer: "Trainer", epoch: int) -> None:
        """Called at the very end of epoch ``epoch``, after its checkpoint (if any) was written."""
        return None


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (model initialisation, dropout)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: weight decay on weight matrices only, none on biases, LayerNorm and embeddings."""
    decay, no_decay = [], []
    seen: set[int] = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            exempt = isinstance(module, _NO_DECAY_MODULES) or name == "bias" or param.dim() < 2
            (no_decay if exempt else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def fused_adamw(device: torch.device) -> bool:
    """Whether AdamW runs fused (one kernel over all parameters) on ``device``: on CPU and CUDA. On one CPU thread
    the default multi-tensor AdamW takes about 0.3 s per step for MiniLM's 22.7M parameters, the fused one 0.03 s;
    the update is the same up to float rounding."""
    return device.type in ("cpu", "cuda")


def loader_generators(loader: Any) -> list[torch.Generator]:
    """The torch generators that decide a DataLoader's shuffling (its own and its samplers')."""
    candidates = [
        getattr(loader, "generator", None),
        getattr(getattr(loader, "sampler", None), "generator", None),
        getattr(getattr(getattr(loader, "batch_sampler", None), "sampler", None), "generator", None),
    ]
    found: list[torch.Generator] = []
    for gen in candidates:
        if isinstance(gen, torch.Generator) and all(gen is not other for other in found):
            found.append(gen)
    return found


def move_to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {key: value.to(device) if torch.is_tensor(value) else value for key, value in batch.items()}


def _numpy_global_state() -> dict[str, Any]:
    state = np.random.get_state(legacy=False)
    state["state"] = {"key": torch.from_numpy(state["state"]["key"].astype(np.int64)), "pos": state["state"]["pos"]}
    return state


def _set_numpy_global_state(state: dict[str, Any]) -> None:
    inner = dict(state["state"])
    inner["key"] = inner["key"].numpy().astype(np.uint32)
    np.random.set_state({**state, "state": inner})


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` into a temporary file beside ``path``, then rename: a kill never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


class Trainer:
    """Train ``supernet`` with ``strategy`` over ``train_loader``; validate via callbacks; checkpoint every epoch.

    ``supernet`` is a :class:`~supernet.model.SuperNetwork` (or anything with its ``set_sub_network``,
    ``shape``, ``model`` and forward). ``checkpoint_dir=None`` disables checkpoints. A frozen ``teacher`` (see
    :mod:`supernet.teacher`) gives every pass its logits to learn from; which teacher belongs in
    ``data_identity``, so that a resumed run learns from the same one.
    """

    def __init__(
        self,
        supernet: torch.nn.Module,
        strategy: Strategy,
        train_loader: Any,
        config: TrainerConfig,
        checkpoint_dir: str | os.PathLike | None = None,
        callbacks: Sequence[TrainerCallback] = (),
        data_identity: Mapping[str, Any] | None = None,
        teacher: Teacher | None = None,
    ) -> None:
        if len(train_loader) == 0:
            raise ValueError("the training loader is empty")
        self.config = config
        self.device = resolve_device(config.device)
        self.supernet = supernet.to(self.device)
        self.teacher = teacher
        if teacher is not None:
            teacher.model.to(self.device)
        self.strategy = strategy
        self.train_loader = train_loader
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        # What the training data is (model, task, split seed, subsets...): a resumed run must train on the same.
        self.data_identity = {key: _plain(value) for key, value in (data_identity or {}).items()}
        self.callbacks = list(callbacks)
        self.rng = np.random.default_rng(config.seed)
        self.steps_per_epoch = len(train_loader)
        self.total_steps = config.epochs * self.steps_per_epoch
        self.precision = Precision(check_precision(config.precision, self.device), self.device.type)
        self.scaler = self.precision.grad_scaler()  # float16 only
        self.optimizer = torch.optim.AdamW(parameter_groups(supernet, config.weight_decay), lr=config.lr,
                                           fused=fused_adamw(self.device))
        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, math.ceil(config.warmup_ratio * self.total_steps), self.total_steps
        )
        self.step = 0
        self.epoch = 0
        self.history: list[dict[str, Any]] = []

    @property
    def checkpoint_path(self) -> Path | None:
        return self.checkpoint_dir / CHECKPOINT_FILE if self.checkpoint_dir is not None else None

    def fit(self, resume: bool = False) -> list[dict[str, Any]]:
        """Train the remaining epochs and return the history (one dict per epoch).

        A fresh run seeds the global generators and the training loader's shuffling with ``config.seed`` (so
        trainers sharing one loader see the same batch order); ``resume=True`` restores the last checkpoint
        instead when there is one (and starts fresh otherwise).
        """
        if resume and self.checkpoint_path is not None and self.checkpoint_path.is_file():
            self.load_checkpoint(self.checkpoint_path)
        else:
            seed_everything(self.config.seed)
            for generator in loader_generators(self.train_loader):
                generator.manual_seed(self.config.seed)
        for callback in self.callbacks:
            callback.on_train_begin(self)
        for epoch in range(self.epoch, self.config.epochs):
            started = time.perf_counter()
            train_loss = self._train_epoch(epoch)
            record: dict[str, Any] = {
                "epoch": epoch + 1,
                "step": self.step,
                "train_loss": train_loss,
                "lr": self.scheduler.get_last_lr()[0],
                "train_time_s": time.perf_counter() - started,
            }
            for callback in self.callbacks:
                metrics = callback.on_epoch_end(self, epoch + 1) or {}
                record.update({key: _plain(value) for key, value in metrics.items()})
            record["epoch_time_s"] = time.perf_counter() - started
            self.history.append(record)
            self.epoch = epoch + 1
            if self.checkpoint_path is not None:
                self.save_checkpoint(self.checkpoint_path)
            for callback in self.callbacks:
                callback.on_epoch_saved(self, epoch + 1)
        return self.history

    def _train_epoch(self, epoch: int) -> float:
        """One pass over the training loader; returns the mean per-step (summed over passes) loss."""
        self.supernet.train()
        total, count = 0.0, 0
        bar = tqdm(
            self.train_loader,
            total=self.steps_per_epoch,
            desc=f"epoch {epoch + 1}/{self.config.epochs}",
            disable=not self.config.progress,
            leave=False,
            dynamic_ncols=True,
        )
        for batch in bar:
            for callback in self.callbacks:
                callback.on_step_begin(self, self.step)
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.strategy.step_loss(
                self.supernet, move_to_device(batch, self.device), self.step, self.total_steps, self.rng,
                precision=self.precision, scaler=self.scaler, teacher=self.teacher,
            )
            self._optimizer_step()
            self.scheduler.step()
            self.step += 1
            total += loss
            count += 1
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        bar.close()
        return total / max(count, 1)

    def _optimizer_step(self) -> None:
        """Clip (if asked) and step; with a float16 gradient scaler, unscale first and skip steps with inf/NaN."""
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.supernet.parameters(), self.config.max_grad_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()

    # ------------------------------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue bit for bit (loadable with ``weights_only=True``)."""
        state: dict[str, Any] = {
            "model": self.supernet.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "step": self.step,
            "epoch": self.epoch,
            "history": self.history,
            "config": asdict(self.config),
            "strategy": self.strategy.name,
            "data": dict(self.data_identity),
            "rng": {
                "python": random.getstate(),
                "numpy": _numpy_global_state(),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "strategy": self.rng.bit_generator.state,
                "loader": [gen.get_state() for gen in loader_generators(self.train_loader)],
            },
        }
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the run must use the same strategy, settings and loader length."""
        check_resumable(state, self.config, self.strategy.name, self.data_identity)
        epochs_done, steps_done = int(state["epoch"]), int(state["step"])
        if steps_done != epochs_done * self.steps_per_epoch:
            raise ValueError(
                f"checkpoint has {steps_done} steps after {epochs_done} epochs, but this training loader has "
                f"{self.steps_per_epoch} batches per epoch: the data or batch size changed since it was written"
            )
        self.supernet.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch = steps_done, epochs_done
        self.history = [dict(record) for record in state["history"]]
        rng = state["rng"]
        random.setstate(_as_python_state(rng["python"]))
        _set_numpy_global_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.rng.bit_generator.state = rng["strategy"]
        generators = loader_generators(self.train_loader)
        if len(generators) != len(rng["loader"]):
            raise ValueError(
                f"checkpoint holds {len(rng['loader'])} loader generator state(s), this training loader has "
                f"{len(generators)}: build it the same way as the checkpointed run"
            )
        for gen, gen_state in zip(generators, rng["loader"]):
            gen.set_state(gen_state)

    def save_checkpoint(self, path: str | os.PathLike) -> Path:
        return atomic_torch_save(self.state_dict(), path)

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        self.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))


def _plain(value: Any) -> Any:
    """NumPy/torch scalars as Python numbers, so the history stays JSON- and ``weights_only``-friendly."""
    if isinstance(value, (np.generic, torch.Tensor)) and getattr(value, "ndim", 0) == 0:
        return value.item()
    return value


def _as_python_state(state: Iterable[Any]) -> tuple:
    """``random.setstate`` wants tuples; serialisation may hand back lists."""
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


# Data settings recorded only when they differ from these (``DataSettings.identity``), so older checkpoints resume.
_DATA_DEFAULTS: dict[str, Any] = {"group_by_length": False, "min_train_words": None}


def check_resumable(state: Mapping[str, Any], config: TrainerConfig, strategy: str,
                    data_identity: Mapping[str, Any] | None) -> None:
    """Refuse to resume a checkpoint ``state`` with another strategy, other training settings or other data."""
    if state["strategy"] != strategy:
        raise ValueError(f"cannot resume: the checkpoint was written by strategy {state['strategy']!r}, this run "
                         f"uses {strategy!r}; use the checkpoint's strategy, or another output folder")
    current = asdict(config)
    recorded_config = {**_RESUME_DEFAULTS, **state["config"]}
    changed = [key for key in _RESUME_MUST_MATCH if recorded_config.get(key) != current[key]]
    if changed:
        diff = ", ".join(f"{key}: {recorded_config.get(key)!r} -> {current[key]!r}" for key in changed)
        hint = " (--precision)" if "precision" in changed else ""
        raise ValueError(f"cannot resume with changed training settings ({diff}); use the checkpoint's "
                         f"settings{hint}")
    # keys a data identity holds only when set: absent from a checkpoint or from now means their default
    recorded = {**_DATA_DEFAULTS, **(state.get("data") or {})}
    identity = {**_DATA_DEFAULTS, **{key: _plain(value) for key, value in (data_identity or {}).items()}}
    changed_data = {key: (recorded.get(key), value) for key, value in identity.items()
                    if key in recorded and recorded[key] != value}
    if changed_data:
        options = ", ".join("--" + key.replace("_", "-") for key in changed_data)
        raise ValueError(f"cannot resume on other training data {changed_data} (checkpoint, now); "
                         f"use the checkpointed run's data settings ({options})")


def read_checkpoint(checkpoint_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The training checkpoint in ``checkpoint_dir`` (None when there is none), or a ValueError if it is damaged."""
    path = Path(checkpoint_dir) / CHECKPOINT_FILE
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises several types for a damaged file
        raise ValueError(f"cannot resume: {path} is not a readable checkpoint ({type(err).__name__}); "
                         "remove it to start afresh, or use another output folder") from err


def checkpoint_precision(checkpoint_dir: str | os.PathLike) -> str | None:
    """The precision a checkpointed run trained in (``fp32`` for checkpoints from before mixed precision), or
    None when there is no checkpoint."""
    state = read_checkpoint(checkpoint_dir)
    if state is None:
        return None
    return str({**_RESUME_DEFAULTS, **state.get("config", {})}["precision"])


def check_resume(checkpoint_dir: str | os.PathLike, config: TrainerConfig, strategy: str,
                 data_identity: Mapping[str, Any] | None) -> None:
    """Before any model is loaded or file written: refuse a ``--resume`` the checkpoint in ``checkpoint_dir``
    would refuse (no checkpoint: the run starts fresh)."""
    state = read_checkpoint(checkpoint_dir)
    if state is not None:
        check_resumable(state, config, strategy, data_identity)
