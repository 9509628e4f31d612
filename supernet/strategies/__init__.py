"""Super-network training strategies, one registry from name to class.

Each strategy decides which sub-networks a training step visits; :meth:`Strategy.step_loss` runs those
passes with gradients summed, so the trainer takes one optimiser step per batch whatever the strategy.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any

from supernet.strategies.base import DistillingStrategy, Pass, SamplingStrategy, Strategy
from supernet.strategies.full import FullStrategy
from supernet.strategies.kd import KDStrategy
from supernet.strategies.linear_random import LinearRandomStrategy, random_probability
from supernet.strategies.losses import distillation_loss, is_regression, task_loss
from supernet.strategies.random_subnetworks import RandomStrategy
from supernet.strategies.sandwich import SandwichStrategy
from supernet.strategies.standard import StandardStrategy

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        StandardStrategy,
        RandomStrategy,
        LinearRandomStrategy,
        SandwichStrategy,
        KDStrategy,
        FullStrategy,
    )
}


def strategy_options(name: str) -> dict[str, Any]:
    """The options a strategy accepts, with their defaults (``search_space`` excluded)."""
    cls = _strategy_class(name)
    return {f.name: f.default for f in fields(cls) if f.name != "search_space"}


def check_options(name: str, **options: Any) -> dict[str, Any]:
    """The options that are set (not ``None``); ``ValueError`` for an unknown strategy or an option it ignores."""
    accepted = strategy_options(name)
    options = {key: value for key, value in options.items() if value is not None}
    unused = sorted(set(options) - set(accepted))
    if unused:
        allowed = ", ".join(accepted) or "none"
        raise ValueError(f"strategy {name!r} does not use {', '.join(unused)}; its options: {allowed}")
    return options


def get_strategy(name: str, search_space: Any = None, **options: Any) -> Strategy:
    """Build strategy ``name``; options left at ``None`` take the strategy's default.

    Raises ``ValueError`` for an unknown name or for an option the strategy does not use (for example a
    temperature for ``sandwich``), so a setting is never silently ignored.
    """
    cls = _strategy_class(name)
    options = check_options(name, **options)
    if issubclass(cls, SamplingStrategy):
        return cls(search_space=search_space, **options)
    return cls(**options)


def _strategy_class(name: str) -> type[Strategy]:
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


__all__ = [
    "STRATEGIES",
    "DistillingStrategy",
    "FullStrategy",
    "KDStrategy",
    "LinearRandomStrategy",
    "Pass",
    "RandomStrategy",
    "SamplingStrategy",
    "SandwichStrategy",
    "StandardStrategy",
    "Strategy",
    "check_options",
    "distillation_loss",
    "get_strategy",
    "is_regression",
    "random_probability",
    "strategy_options",
    "task_loss",
]
