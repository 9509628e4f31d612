"""Vector codes for Syne Tune configs: the common ground of NSGA-II, local search and BO.

Every hyperparameter (non-constant entry of the config space) becomes one column of a float matrix:

* ``real``: a :class:`~syne_tune.config_space.Float`, coded by its value (optimisers and GPs see log-uniform
  ones on a log scale: :meth:`ConfigEncoder.warp`);
* ``integer``: an :class:`~syne_tune.config_space.Integer`, coded by its value, bounds inclusive;
* ``ordered``: an ordinal or finite range, coded by the index of its value;
* ``categorical``: an unordered choice, coded by the index of its value.

Configs may be huge (one key per head and unit of a model: 9,288 keys for MiniLM), so sampling works on
whole columns at once and configs are compared by the bytes of their code vector.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from syne_tune.config_space import (
    Categorical,
    Domain,
    FiniteRange,
    Float,
    Integer,
    Ordinal,
    is_log_space,
)

# Half-open margin so that rounding a relaxed integer code gives every value, both bounds included, the same width.
_RELAX = 0.5 - 1e-9


@dataclass(frozen=True)
class Column:
    """One hyperparameter: its domain and how it is coded."""

    key: str
    domain: Domain
    kind: str  # "real", "integer", "ordered" or "categorical"
    low: float
    high: float
    log: bool = False
    values: tuple = ()
    # True when uniform draws on the (warped) code scale follow the domain's own sampler (so they can be vectorised).
    uniform_codes: bool = True

    @property
    def discrete(self) -> bool:
        return self.kind != "real"

    @property
    def num_values(self) -> int | None:
        """Number of distinct values (None for real columns)."""
        return None if self.kind == "real" else int(self.high - self.low) + 1


def _column(key: str, domain: Domain) -> Column:
    """Describe how ``domain`` is coded."""
    sampler = domain.get_sampler()
    if isinstance(domain, Float):
        uniform = isinstance(sampler, (Float._Uniform, Float._LogUniform))
        low, high = float(domain.lower), float(domain.upper)
        return Column(key, domain, "real", low, high, log=is_log_space(domain), uniform_codes=uniform)
    if isinstance(domain, Integer):
        uniform = isinstance(sampler, Integer._Uniform)
        return Column(key, domain, "integer", float(domain.lower), float(domain.upper), uniform_codes=uniform)
    if isinstance(domain, FiniteRange):
        values = tuple(domain.values)
        return Column(key, domain, "ordered", 0.0, float(len(values) - 1), values=values)
    if isinstance(domain, Categorical):
        values = tuple(domain.categories)
        kind = "ordered" if isinstance(domain, Ordinal) else "categorical"
        uniform = isinstance(sampler, Categorical._Uniform)
        return Column(key, domain, kind, 0.0, float(len(values) - 1), values=values, uniform_codes=uniform)
    raise ValueError(
        f"hyperparameter {key!r} has unsupported domain {domain!r}; supported: Float, Integer, FiniteRange, "
        "Categorical, Ordinal (choice, ordinal, randint, uniform, loguniform, finrange, ...)"
    )


def _as_list(sample: Any, size: int) -> list:
    """Syne Tune returns a scalar for size 1 and a list otherwise."""
    return list(sample) if size > 1 else [sample]


class ConfigEncoder:
    """Maps configs of a Syne Tune config space to float code vectors and back, and samples codes."""

    def __init__(self, config_space: dict[str, Any]) -> None:
        self.config_space = config_space
        self.columns = [_column(k, v) for k, v in config_space.items() if isinstance(v, Domain)]
        if not self.columns:
            raise ValueError("the config space has no hyperparameter to search (all entries are constants)")
        self.keys = [c.key for c in self.columns]
        self.low = np.array([c.low for c in self.columns])
        self.high = np.array([c.high for c in self.columns])
        self.discrete = np.array([c.discrete for c in self.columns])
        self.log = np.array([c.log for c in self.columns])
        self._uniform_codes = np.array([c.uniform_codes for c in self.columns])
        self.warped_low, self.warped_high = self.warp(self.low), self.warp(self.high)
        self._index = [
            {v: i for i, v in enumerate(c.values)} if c.values else None for c in self.columns
        ]
        self._sample_groups = self._group_vectorisable()

    @property
    def dim(self) -> int:
        return len(self.columns)

    def _group_vectorisable(self) -> list[tuple[bool, float, float, np.ndarray]]:
        """Columns drawn together: same kind of uniform code draw and same bounds; others one by one."""
        groups: dict[tuple[bool, float, float], list[int]] = {}
        for j, c in enumerate(self.columns):
            if c.uniform_codes:
                groups.setdefault((c.discrete, self.warped_low[j], self.warped_high[j]), []).append(j)
        return [(disc, lo, hi, np.array(idx)) for (disc, lo, hi), idx in groups.items()]

    # ----------------------------------------------------------------------------------------------- codes
    def encode(self, config: dict[str, Any]) -> np.ndarray:
        """Code vector of one config (only hyperparameter keys are read)."""
        x = np.empty(self.dim)
        try:
            for j, (c, index) in enumerate(zip(self.columns, self._index)):
                value = c.domain.cast(config[c.key])
                if index is not None:
                    value = index[value]
                elif not c.low <= value <= c.high:
                    raise ValueError
                x[j] = value
        except (KeyError, AssertionError, ValueError, TypeError):  # Syne Tune's cast asserts on unknown values
            missing = [k for k in self.keys if k not in config]
            if missing:
                raise ValueError(f"config lacks hyperparameter(s) {missing[:5]}") from None
            raise ValueError(f"config[{c.key!r}]={config[c.key]!r} is not a value of {c.domain!r}") from None
        return x

    def repair(self, X: np.ndarray) -> np.ndarray:
        """Clip codes to their bounds and round discrete ones (so every row decodes to a valid config)."""
        X = np.clip(np.asarray(X, dtype=float), self.low, self.high)
        return np.where(self.discrete, np.rint(X), X)

    def decode(self, x: np.ndarray) -> dict[str, Any]:
        """Config of one code vector (hyperparameter keys only; repairs the codes first)."""
        x = self.repair(x)
        config = {}
        for c, v in zip(self.columns, x.tolist()):
            config[c.key] = c.values[int(v)] if c.values else c.domain.cast(v)
        return config

    @staticmethod
    def key(x: np.ndarray) -> bytes:
        """Hashable identity of a (repaired) code vector."""
        return np.ascontiguousarray(x, dtype=float).tobytes()

    # -------------------------------------------------------------------------------------------- sampling
    def sample(self, n: int, random_state: np.random.RandomState) -> np.ndarray:
        """``n`` random code vectors, each hyperparameter drawn from its domain's own sampler."""
        X = np.empty((n, self.dim))
        for discrete, lo, hi, idx in self._sample_groups:
            if discrete:
                X[:, idx] = random_state.randint(int(lo), int(hi) + 1, size=(n, len(idx)))
            else:
                X[:, idx] = random_state.uniform(lo, hi, size=(n, len(idx)))
        for j, c in enumerate(self.columns):
            if not c.uniform_codes:
                X[:, j] = self.sample_column(j, n, random_state)
        return self.repair(self.unwarp(X, only=self._uniform_codes))

    def sample_column(self, j: int, n: int, random_state: np.random.RandomState) -> np.ndarray:
        """``n`` random codes of column ``j`` from its domain's own sampler."""
        c = self.columns[j]
        if c.uniform_codes:
            if c.discrete:
                return random_state.randint(int(c.low), int(c.high) + 1, size=n).astype(float)
            codes = random_state.uniform(self.warped_low[j], self.warped_high[j], size=n)
            return np.clip(np.exp(codes) if c.log else codes, c.low, c.high)
        values = _as_list(c.domain.sample(size=n, random_state=random_state), n)
        if c.values:
            return np.array([self._index[j][c.domain.cast(v)] for v in values], dtype=float)
        return np.array(values, dtype=float)

    # --------------------------------------------------------------------------- scales used by the optimisers
    def warp(self, X: np.ndarray) -> np.ndarray:
        """Codes on the scale optimisers work on: log for log-uniform reals, unchanged otherwise."""
        X = np.asarray(X, dtype=float)
        if not self.log.any():
            return X
        with np.errstate(divide="ignore"):
            return np.where(self.log, np.log(np.where(self.log, X, 1.0)), X)

    def unwarp(self, X: np.ndarray, only: np.ndarray | None = None) -> np.ndarray:
        """Inverse of :meth:`warp` (restricted to the columns flagged in ``only`` if given)."""
        X = np.asarray(X, dtype=float)
        log = self.log if only is None else self.log & only
        return np.where(log, np.exp(np.where(log, X, 0.0)), X) if log.any() else X

    def relaxed_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Warped box whose rounding gives every discrete value (both bounds included) the same width."""
        margin = np.where(self.discrete, _RELAX, 0.0)
        return self.warped_low - margin, self.warped_high + margin

    def to_unit(self, X: np.ndarray) -> np.ndarray:
        """Warped codes scaled to [0, 1] per column (constant columns map to 0.5)."""
        span = self.warped_high - self.warped_low
        safe = np.where(span > 0, span, 1.0)
        return np.where(span > 0, (self.warp(X) - self.warped_low) / safe, 0.5)
