"""The search spaces of the method (``small``, ``smallpower2``, ``layer``, ``medium``, ``large``) and their registry.

Every space is built from a :class:`ModelShape`, so bounds follow the model (MiniLM-L6, BERT-base, any size).
Conventions shared by all spaces:

- smallest: the smallest *non-empty* sub-network, as in the authors' paper-era code (method.md section 5);
- largest: the full model;
- midpoint: half of every count, rounded up (``ceil(n / 2)`` layers, heads, units), so that ``small``,
  ``medium`` and ``large`` give the very same midpoint masks and ``layer`` keeps the same layers;
- sampling: every hyperparameter uniform over its values, independently -- the distribution Syne Tune's
  random searcher draws from the same config space. ``large`` can instead draw the number of kept heads
  and units uniformly (``count_uniform=True``, the authors' super-network sampler), because independent
  coin flips over thousands of keys always keep about half of everything.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from syne_tune.config_space import Domain, choice, ordinal, randint

from search_spaces.base import Config, SearchSpace
from search_spaces.masks import SubNetworkMasks
from search_spaces.shape import ModelShape


def _half(n: int) -> int:
    """Half of a count, rounded up (the midpoint convention)."""
    return (n + 1) // 2


def _prefix_mask(counts: np.ndarray, width: int) -> torch.Tensor:
    """[len(counts), width] bool mask whose row i keeps its first counts[i] entries.

    Masks are built and read with numpy: these tensors are tiny, and torch's thread pool only adds
    overhead (milliseconds per op on a busy machine).
    """
    return torch.from_numpy(np.arange(width)[None, :] < np.asarray(counts)[:, None])


def _numpy_masks(masks: SubNetworkMasks) -> tuple[np.ndarray, np.ndarray]:
    return masks.heads.cpu().numpy(), masks.units.cpu().numpy()


def _prefix_counts(mask: np.ndarray) -> np.ndarray | None:
    """Kept entries per row when every row keeps a prefix, else None."""
    counts = mask.sum(axis=1)
    return counts if np.array_equal(mask, np.arange(mask.shape[1])[None, :] < counts[:, None]) else None


def power_of_two_head_counts(num_heads: int) -> list[int]:
    """Head counts of ``smallpower2``: the powers of two up to ``num_heads``, plus ``num_heads`` itself.

    ``num_heads`` is always included so that the full model stays in the space (12 heads: 1, 2, 4, 8, 12).
    The authors' code used ``num_heads // 2**i`` instead (12 heads: 1, 3, 6, 12); both agree when
    ``num_heads`` is a power of two.
    """
    return sorted({2**i for i in range(num_heads.bit_length()) if 2**i <= num_heads} | {num_heads})


class SmallSearchSpace(SearchSpace):
    """``num_layers`` in [0, L], ``num_heads`` in [1, H], ``num_units`` in [1, U].

    Keeps the first ``num_layers`` layers, and in each of them the first ``num_heads`` heads and first
    ``num_units`` units. All configs with ``num_layers=0`` are the empty network; ``from_masks`` maps it to
    ``num_heads`` and ``num_units`` at their lower bounds.
    """

    name = "small"

    def _head_domain(self) -> Domain:
        return randint(1, self.shape.num_heads)

    def _head_values(self) -> list[int]:
        return list(range(1, self.shape.num_heads + 1))

    def _build_domains(self) -> dict[str, Domain]:
        return {
            "num_layers": randint(0, self.shape.num_layers),
            "num_heads": self._head_domain(),
            "num_units": randint(1, self.shape.num_units),
        }

    def _masks_from_values(self, values: np.ndarray) -> SubNetworkMasks:
        num_layers, num_heads, num_units = values.tolist()
        layer_on = np.arange(self.shape.num_layers) < num_layers
        return SubNetworkMasks(
            heads=_prefix_mask(layer_on * num_heads, self.shape.num_heads),
            units=_prefix_mask(layer_on * num_units, self.shape.num_units),
        )

    def _values_from_masks(self, masks: SubNetworkMasks) -> np.ndarray:
        heads, units = _numpy_masks(masks)
        head_counts, unit_counts = _prefix_counts(heads), _prefix_counts(units)
        if head_counts is None or unit_counts is None:
            raise self._not_representable("some layer keeps heads or units that are not its first ones")
        kept = ((head_counts > 0) | (unit_counts > 0)).tolist()
        num_layers = sum(kept)
        if kept != [True] * num_layers + [False] * (len(kept) - num_layers):
            raise self._not_representable(f"kept layers {_indices(kept)} are not the first {num_layers}")
        if num_layers == 0:
            return np.array([0, self._head_values()[0], 1], dtype=np.int64)
        pairs = set(zip(head_counts[:num_layers].tolist(), unit_counts[:num_layers].tolist()))
        if len(pairs) != 1:
            raise self._not_representable(
                f"kept layers keep different (heads, units) counts {sorted(pairs)}; this space needs one"
            )
        num_heads, num_units = pairs.pop()
        if num_heads not in self._head_values() or num_units == 0:
            raise self._not_representable(
                f"kept layers keep {num_heads} heads and {num_units} units; allowed head counts "
                f"{_range_text(self._head_values())} and unit counts in [1, {self.shape.num_units}]"
            )
        return np.array([num_layers, num_heads, num_units], dtype=np.int64)

    def _smallest_values(self) -> np.ndarray:
        return np.array([1, self._head_values()[0], 1], dtype=np.int64)

    def _midpoint_values(self) -> np.ndarray:
        half_heads = max(h for h in self._head_values() if h <= _half(self.shape.num_heads))
        return np.array(
            [_half(self.shape.num_layers), half_heads, _half(self.shape.num_units)], dtype=np.int64
        )


class SmallPower2SearchSpace(SmallSearchSpace):
    """``small`` with ``num_heads`` an ordinal over :func:`power_of_two_head_counts` (uniform, index-encoded).

    The midpoint keeps the largest allowed head count not above half the heads (4 of 12).
    """

    name = "smallpower2"

    def _head_domain(self) -> Domain:
        return ordinal(self._head_values(), kind="equal")

    def _head_values(self) -> list[int]:
        return power_of_two_head_counts(self.shape.num_heads)


class LayerSearchSpace(SearchSpace):
    """``layer_i`` in {0, 1} for every layer i: any subset of layers, each kept whole."""

    name = "layer"

    def _build_domains(self) -> dict[str, Domain]:
        return {f"layer_{i}": choice([0, 1]) for i in range(self.shape.num_layers)}

    def _masks_from_values(self, values: np.ndarray) -> SubNetworkMasks:
        return SubNetworkMasks(
            heads=_prefix_mask(values * self.shape.num_heads, self.shape.num_heads),
            units=_prefix_mask(values * self.shape.num_units, self.shape.num_units),
        )

    def _values_from_masks(self, masks: SubNetworkMasks) -> np.ndarray:
        heads, units = _numpy_masks(masks)
        full = heads.all(axis=1) & units.all(axis=1)
        empty = ~heads.any(axis=1) & ~units.any(axis=1)
        partial = ~(full | empty)
        if partial.any():
            raise self._not_representable(
                f"layer(s) {np.flatnonzero(partial).tolist()} are kept only in part; "
                "this space keeps or drops whole layers"
            )
        return full.astype(np.int64)

    def _smallest_values(self) -> np.ndarray:
        values = np.zeros(self.shape.num_layers, dtype=np.int64)
        values[0] = 1
        return values

    def _midpoint_values(self) -> np.ndarray:
        return (np.arange(self.shape.num_layers) < _half(self.shape.num_layers)).astype(np.int64)


class MediumSearchSpace(SearchSpace):
    """Per layer i, ``num_heads_i`` in [0, H] and ``num_units_i`` in [0, U], each keeping a prefix.

    A layer with 0 heads skips its attention block, with 0 units its FFN block.
    """

    name = "medium"

    def _build_domains(self) -> dict[str, Domain]:
        domains: dict[str, Domain] = {}
        for i in range(self.shape.num_layers):
            domains[f"num_heads_{i}"] = randint(0, self.shape.num_heads)
            domains[f"num_units_{i}"] = randint(0, self.shape.num_units)
        return domains

    def _masks_from_values(self, values: np.ndarray) -> SubNetworkMasks:
        counts = values.reshape(self.shape.num_layers, 2)
        return SubNetworkMasks(
            heads=_prefix_mask(counts[:, 0], self.shape.num_heads),
            units=_prefix_mask(counts[:, 1], self.shape.num_units),
        )

    def _values_from_masks(self, masks: SubNetworkMasks) -> np.ndarray:
        heads, units = _numpy_masks(masks)
        head_counts, unit_counts = _prefix_counts(heads), _prefix_counts(units)
        if head_counts is None or unit_counts is None:
            raise self._not_representable("some layer keeps heads or units that are not its first ones")
        return np.stack([head_counts, unit_counts], axis=1).astype(np.int64).reshape(-1)

    def _smallest_values(self) -> np.ndarray:
        return np.ones(2 * self.shape.num_layers, dtype=np.int64)

    def _midpoint_values(self) -> np.ndarray:
        pair = [_half(self.shape.num_heads), _half(self.shape.num_units)]
        return np.array(pair * self.shape.num_layers, dtype=np.int64)


class LargeSearchSpace(SearchSpace):
    """One {0, 1} choice per head (``head_{layer}_{head}``) and per unit (``unit_{layer}_{unit}``).

    Keys list all heads (layer-major) and then all units; L*H + L*U dimensions (9,288 for MiniLM-L6).
    ``count_uniform=True`` samples the number of kept heads and units uniformly in [0, L*(H+U)] and then
    which ones uniformly; the default flips one fair coin per key, like Syne Tune's random searcher.
    """

    name = "large"

    def __init__(self, shape: ModelShape, count_uniform: bool = False) -> None:
        self.count_uniform = count_uniform
        super().__init__(shape)

    @property
    def _num_head_keys(self) -> int:
        return self.shape.num_layers * self.shape.num_heads

    def _build_domains(self) -> dict[str, Domain]:
        s = self.shape
        domains = {f"head_{i}_{j}": choice([0, 1]) for i in range(s.num_layers) for j in range(s.num_heads)}
        domains.update(
            {f"unit_{i}_{j}": choice([0, 1]) for i in range(s.num_layers) for j in range(s.num_units)}
        )
        return domains

    def _masks_from_values(self, values: np.ndarray) -> SubNetworkMasks:
        bits = values.astype(bool)
        s = self.shape
        return SubNetworkMasks(
            heads=torch.from_numpy(bits[: self._num_head_keys].reshape(s.num_layers, s.num_heads)),
            units=torch.from_numpy(bits[self._num_head_keys :].reshape(s.num_layers, s.num_units)),
        )

    def _values_from_masks(self, masks: SubNetworkMasks) -> np.ndarray:
        heads, units = _numpy_masks(masks)
        return np.concatenate([heads.reshape(-1), units.reshape(-1)]).astype(np.int64)

    def _sample_values(self, rng: np.random.Generator) -> np.ndarray:
        if not self.count_uniform:
            return super()._sample_values(rng)
        values = np.zeros(self.num_dimensions, dtype=np.int64)
        values[rng.permutation(self.num_dimensions)[: rng.integers(0, self.num_dimensions + 1)]] = 1
        return values

    def _smallest_values(self) -> np.ndarray:
        values = np.zeros(self.num_dimensions, dtype=np.int64)
        values[[0, self._num_head_keys]] = 1  # head 0 and unit 0 of layer 0
        return values

    def _midpoint_values(self) -> np.ndarray:
        s = self.shape
        heads = np.arange(s.num_heads) < _half(s.num_heads)
        units = np.arange(s.num_units) < _half(s.num_units)
        return np.concatenate([np.tile(heads, s.num_layers), np.tile(units, s.num_layers)]).astype(np.int64)


SEARCH_SPACES: dict[str, type[SearchSpace]] = {
    cls.name: cls
    for cls in (SmallSearchSpace, SmallPower2SearchSpace, LayerSearchSpace, MediumSearchSpace, LargeSearchSpace)
}


def get_search_space(name: str, model: ModelShape | Any, **options: Any) -> SearchSpace:
    """Build the search space ``name`` for a model given as a :class:`ModelShape` or a HF BERT/RoBERTa config.

    ``options`` go to the space's constructor (only ``large`` takes one: ``count_uniform``).
    """
    if name not in SEARCH_SPACES:
        raise ValueError(f"unknown search space {name!r}; choose from {', '.join(SEARCH_SPACES)}")
    if not isinstance(model, ModelShape) and not hasattr(model, "model_type"):
        raise ValueError(
            f"a search space needs a ModelShape or a Hugging Face BERT/RoBERTa config, got {type(model).__name__}"
        )
    shape = model if isinstance(model, ModelShape) else ModelShape.from_config(model)
    return SEARCH_SPACES[name](shape, **options)


def _indices(flags: list[bool]) -> list[int]:
    return [i for i, flag in enumerate(flags) if flag]


def _range_text(values: list[int]) -> str:
    contiguous = values == list(range(values[0], values[-1] + 1))
    return f"in [{values[0]}, {values[-1]}]" if contiguous else f"{values}"


__all__ = [
    "Config",
    "SEARCH_SPACES",
    "LargeSearchSpace",
    "LayerSearchSpace",
    "MediumSearchSpace",
    "SearchSpace",
    "SmallPower2SearchSpace",
    "SmallSearchSpace",
    "get_search_space",
    "power_of_two_head_counts",
]
