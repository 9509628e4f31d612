"""What every super-network training strategy shares: a plan of passes per step, run with summed gradients.

A strategy only decides *which* sub-networks one training step visits (:meth:`Strategy.plan`); running them,
computing their losses and accumulating their gradients is common code (:meth:`Strategy.step_loss`).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import numpy as np
import torch

from search_spaces.masks import SubNetworkMasks
from supernet.precision import FP32, Precision
from supernet.strategies.losses import distillation_loss, hidden_state_loss, is_regression, task_loss
from supernet.teacher import Teacher


@dataclass(frozen=True)
class Pass:
    """One forward/backward pass of a step: ``masks=None`` is the full network; ``distill`` uses its teacher."""

    masks: SubNetworkMasks | None
    distill: bool = False


@dataclass
class Strategy(ABC):
    """Base class: subclasses set ``name`` and implement :meth:`plan`.

    Options such as ``num_random`` or ``temperature`` are dataclass fields of the subclasses that use them,
    so asking a strategy for an option it ignores is an error (see :func:`supernet.strategies.get_strategy`).
    """

    name: ClassVar[str]

    @abstractmethod
    def plan(self, step: int, total_steps: int, rng: np.random.Generator) -> list[Pass]:
        """The passes of training step ``step`` (0-based) out of ``total_steps``; draws randomness from ``rng``."""

    def step_loss(
        self,
        supernet: Any,
        batch: Mapping[str, torch.Tensor],
        step: int,
        total_steps: int,
        rng: np.random.Generator,
        precision: Precision = FP32,
        scaler: torch.amp.GradScaler | None = None,
        teacher: Teacher | None = None,
    ) -> float:
        """Run every pass of this step, calling ``backward`` after each (gradients add up); return the summed loss.

        The caller zeroes gradients before and takes one optimiser step after. A distilled pass learns from
        the detached logits of the step's latest full-network pass. The full network is active afterwards.
        Each forward pass runs under ``precision``'s autocast; losses are computed in float32 outside it, and
        ``backward`` runs outside it too (on the loss scaled by ``scaler``, for float16).

        With a frozen ``teacher`` every pass, the full network's too, learns from the teacher's logits beside the
        labels (at the teacher's temperature), instead of from the labels alone or from the full network, and, with
        the teacher's ``hidden_weight > 0``, from its last hidden states.
        """
        passes = self.passes(step, total_steps, rng)
        labels = batch["labels"]
        inputs = {key: value for key, value in batch.items() if key != "labels"}
        regression = is_regression(supernet.model.config, supernet.shape.head)
        fixed = teacher.targets(inputs, precision) if teacher is not None else None
        hidden = fixed is not None and fixed.hidden is not None
        teacher_logits: torch.Tensor | None = None
        total = 0.0
        try:
            for current in passes:
                supernet.set_sub_network(current.masks)
                with precision.autocast(supernet):
                    outputs = supernet(**inputs, output_hidden_states=True) if hidden else supernet(**inputs)
                logits = outputs.logits.float()
                if fixed is not None:
                    loss = distillation_loss(logits, fixed.logits, labels, teacher.temperature, regression)
                    if hidden:
                        loss = loss + teacher.hidden_weight * hidden_state_loss(
                            outputs.hidden_states[-1], fixed.hidden, inputs.get("attention_mask"))
                elif current.distill:
                    if teacher_logits is None:
                        raise RuntimeError(f"strategy {self.name!r} distils before any full-network pass")
                    loss = distillation_loss(logits, teacher_logits, labels, self.distill_temperature, regression)
                else:
                    loss = task_loss(logits, labels, regression)
                if current.masks is not None:
                    loss = loss * self.sub_network_weight
                (scaler.scale(loss) if scaler is not None else loss).backward()
                total += float(loss.detach())
                if current.masks is None:
                    teacher_logits = logits.detach()
        finally:
            supernet.set_sub_network(None)
        return total

    @property
    def sub_network_weight(self) -> float:
        """Weight of a sub-network pass's loss against the full network's (1: the paper's plain sum)."""
        return 1.0

    def passes(self, step: int, total_steps: int, rng: np.random.Generator) -> list[Pass]:
        """The passes step ``step`` runs: :meth:`plan`, unless a subclass puts something before it."""
        return self.plan(step, total_steps, rng)

    @property
    def distill_temperature(self) -> float:
        """Temperature of distilled passes; only distilling strategies define one."""
        raise NotImplementedError(f"strategy {self.name!r} does not distil")


# Share of the steps that train the full network alone before sub-networks join. Without it, sub-networks
# train against a random classifier and pull the full network off the task (docs/supernet-training.md).
DEFAULT_FULL_WARMUP = 0.3


@dataclass
class SamplingStrategy(Strategy, ABC):
    """A strategy that draws sub-networks from a search space (``search_space.sample(rng)``)."""

    search_space: Any = None
    num_random: int = 1
    full_warmup: float = DEFAULT_FULL_WARMUP
    sub_network_loss_weight: float = 1.0
    min_random: ClassVar[int] = 1  # strategies that train other networks besides may allow 0

    def __post_init__(self) -> None:
        if self.search_space is None:
            raise ValueError(f"strategy {self.name!r} samples sub-networks and needs a search space")
        if self.num_random < self.min_random:
            raise ValueError(f"strategy {self.name!r} needs num_random >= {self.min_random}, got {self.num_random}")
        if not 0.0 <= self.full_warmup < 1.0:
            raise ValueError(f"full_warmup must be in [0, 1), got {self.full_warmup}")
        if not self.sub_network_loss_weight > 0:
            raise ValueError(f"sub_network_loss_weight must be positive, got {self.sub_network_loss_weight}")

    @property
    def sub_network_weight(self) -> float:
        return self.sub_network_loss_weight

    def passes(self, step: int, total_steps: int, rng: np.random.Generator) -> list[Pass]:
        """The full network alone for the first ``full_warmup`` share of steps, then :meth:`plan`.

        Sub-networks learn from a network that already solves the task (its representation, its
        classifier and, when distilling, its predictions) instead of from a random classifier.
        """
        if step < self.full_warmup * total_steps:
            return [Pass(None)]
        return self.plan(step, total_steps, rng)

    def random_passes(self, rng: np.random.Generator, distill: bool = False) -> list[Pass]:
        """``num_random`` sub-networks sampled from the search space's own distribution."""
        space = self.search_space
        return [Pass(space.to_masks(space.sample(rng)), distill) for _ in range(self.num_random)]

    def smallest_pass(self, distill: bool = False) -> Pass:
        """The smallest non-empty sub-network of the search space."""
        return Pass(self.search_space.to_masks(self.search_space.smallest()), distill)


@dataclass
class DistillingStrategy(SamplingStrategy, ABC):
    """A sampling strategy that distils sub-networks from the full network at ``temperature``."""

    temperature: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")

    @property
    def distill_temperature(self) -> float:
        return self.temperature
