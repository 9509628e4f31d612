"""The common contract of every search space: a Syne Tune config space plus an exact map to and from masks.

A space stores its hyperparameters in a fixed key order, so that a config can be turned into one integer
vector, checked with numpy in a few vectorised operations and mapped to masks without looping over keys.
This keeps the ``large`` space (one key per head and per unit: 9,288 keys for MiniLM-L6) cheap to use.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Mapping

import numpy as np
from syne_tune.config_space import Categorical, Domain, Integer

from search_spaces.masks import SubNetworkMasks
from search_spaces.shape import ModelShape

Config = dict[str, int]

_KEYS_SHOWN = 5  # how many key names an error message lists before "..."


class SearchSpace(ABC):
    """A Syne Tune config space over sub-networks of one model, with exact config <-> mask maps.

    Subclasses define the domains (``_build_domains``), how an integer vector in key order becomes masks
    (``_masks_from_values``) and back (``_values_from_masks``), how to sample it, and the special
    sub-networks (smallest non-empty, largest = full model, midpoint).
    """

    name: ClassVar[str]

    def __init__(self, shape: ModelShape) -> None:
        self.shape = shape
        self._domains: dict[str, Domain] = self._build_domains()
        self._keys: tuple[str, ...] = tuple(self._domains)
        self._key_set = frozenset(self._keys)
        bounds = np.array([_bounds(d) for d in self._domains.values()], dtype=np.int64).reshape(-1, 2)
        self._lower, self._upper = bounds[:, 0].copy(), bounds[:, 1].copy()
        # Domains whose allowed values are not a contiguous integer range (ordinals such as 1, 2, 4, 8, 12).
        self._sparse = {
            i: frozenset(d.categories)
            for i, d in enumerate(self._domains.values())
            if isinstance(d, Categorical) and len(d) != bounds[i, 1] - bounds[i, 0] + 1
        }

    # ----------------------------------------------------------------------------------------------- subclass API
    @abstractmethod
    def _build_domains(self) -> dict[str, Domain]:
        """The Syne Tune domains, in the key order used by every integer vector of this space."""

    @abstractmethod
    def _masks_from_values(self, values: np.ndarray) -> SubNetworkMasks:
        """Masks of a valid integer vector (in key order)."""

    @abstractmethod
    def _values_from_masks(self, masks: SubNetworkMasks) -> np.ndarray:
        """Integer vector of masks that fit the model; ValueError (via ``_not_representable``) if impossible."""

    def _sample_values(self, rng: np.random.Generator) -> np.ndarray:
        """One random integer vector: every domain uniform over its values, independently.

        This is the distribution Syne Tune's random searcher draws from the same config space.
        """
        values = rng.integers(self._lower, self._upper + 1)
        for i, allowed in self._sparse.items():
            values[i] = rng.choice(sorted(allowed))
        return values

    @abstractmethod
    def _smallest_values(self) -> np.ndarray:
        """The smallest non-empty sub-network (the one super-network training uses)."""

    @abstractmethod
    def _midpoint_values(self) -> np.ndarray:
        """The middle of the space (half of every count, rounded up)."""

    def _largest_values(self) -> np.ndarray:
        """The full model: every domain at its upper bound (true for all spaces here)."""
        return self._upper.copy()

    # ------------------------------------------------------------------------------------------------- public API
    @property
    def config_space(self) -> dict[str, Domain]:
        """The Syne Tune config space (a fresh dict of the shared domain objects)."""
        return dict(self._domains)

    @property
    def keys(self) -> tuple[str, ...]:
        """Hyperparameter names in the fixed order of this space."""
        return self._keys

    @property
    def num_dimensions(self) -> int:
        return len(self._keys)

    def size(self) -> int:
        """Number of distinct configurations (an exact Python int, possibly astronomically large)."""
        return math.prod(len(domain) for domain in self._domains.values())

    def validate(self, config: Mapping[str, Any]) -> None:
        """Raise ValueError naming the offending key and its allowed values unless ``config`` is in the space."""
        self._checked_values(config)

    def to_masks(self, config: Mapping[str, Any]) -> SubNetworkMasks:
        """Head and unit masks of a config (validated first)."""
        return self._masks_from_values(self._checked_values(config))

    def from_masks(self, masks: SubNetworkMasks) -> Config:
        """The config whose masks are ``masks``; ValueError when this space cannot express them."""
        masks.check_shape(self.shape)
        return self._config(self._values_from_masks(masks))

    def sample(self, rng: np.random.Generator) -> Config:
        """A random config drawn from this space's own distribution (see the class docstring)."""
        return self._config(self._sample_values(rng))

    def smallest(self) -> Config:
        """The smallest non-empty sub-network of this space."""
        return self._config(self._smallest_values())

    def largest(self) -> Config:
        """The full model."""
        return self._config(self._largest_values())

    def midpoint(self) -> Config:
        """The middle of the space: half of every count, rounded up."""
        return self._config(self._midpoint_values())

    def __repr__(self) -> str:
        s = self.shape
        return (f"{type(self).__name__}(name={self.name!r}, layers={s.num_layers}, heads={s.num_heads}, "
                f"units={s.num_units}, dimensions={self.num_dimensions})")

    # ---------------------------------------------------------------------------------------------------- helpers
    def _config(self, values: np.ndarray) -> Config:
        return dict(zip(self._keys, values.tolist()))

    def _not_representable(self, reason: str) -> ValueError:
        return ValueError(f"masks are not representable in search space {self.name!r}: {reason}")

    def _checked_values(self, config: Mapping[str, Any]) -> np.ndarray:
        """The config as an int64 vector in key order, after checking keys, types and ranges."""
        if not isinstance(config, Mapping):
            raise ValueError(f"a config must be a dict of hyperparameter values, got {type(config).__name__}")
        if config.keys() != self._key_set:
            self._raise_key_error(config)
        raw = [config[k] for k in self._keys]
        if not set(map(type, raw)) <= {int}:
            for key, value in zip(self._keys, raw):
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                    raise ValueError(
                        f"config[{key!r}] must be an int, got {type(value).__name__} {value!r} "
                        f"(search space {self.name!r}, allowed {self._allowed(self._keys.index(key))})"
                    )
        try:
            values = np.array(raw, dtype=np.int64)
        except OverflowError:  # beyond int64, so surely out of range: report it like any other
            values = np.array([v if abs(v) < 2**62 else np.sign(v) * 2**62 for v in raw], dtype=np.int64)
        bad = (values < self._lower) | (values > self._upper)
        for i, allowed in self._sparse.items():
            bad[i] |= int(values[i]) not in allowed
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"config[{self._keys[i]!r}]={raw[i]} is out of range for search space {self.name!r}: "
                f"allowed {self._allowed(i)}"
            )
        return values

    def _allowed(self, i: int) -> str:
        if i in self._sparse:
            return f"values {sorted(self._sparse[i])}"
        return f"integers in [{int(self._lower[i])}, {int(self._upper[i])}]"

    def _raise_key_error(self, config: Mapping[str, Any]) -> None:
        missing = [k for k in self._keys if k not in config]
        extra = sorted(str(k) for k in config if k not in self._key_set)
        problems = []
        if missing:
            problems.append(f"missing key(s) {_short_list(missing)}")
        if extra:
            problems.append(f"unexpected key(s) {_short_list(extra)}")
        raise ValueError(
            f"config does not fit search space {self.name!r}: {'; '.join(problems)}. "
            f"Expected the {len(self._keys)} key(s) {_short_list(list(self._keys))}"
        )


def _bounds(domain: Domain) -> tuple[int, int]:
    """Inclusive integer bounds of an integer-valued domain."""
    if isinstance(domain, Integer):
        return int(domain.lower), int(domain.upper)
    if isinstance(domain, Categorical) and all(type(c) is int for c in domain.categories):
        return min(domain.categories), max(domain.categories)
    raise TypeError(f"search spaces only use integer-valued domains, got {domain!r}")


def _short_list(items: list[str]) -> str:
    shown = ", ".join(repr(k) for k in items[:_KEYS_SHOWN])
    return f"[{shown}{', ...' if len(items) > _KEYS_SHOWN else ''}]"
