"""Normalising objectives before computing hypervolumes, so that tasks and objectives on different scales compare.

Two schemes, both computed per task over all rows being compared (every method, seed and run of that task):

- ``quantile`` (the paper's): a value ``x`` maps to the empirical CDF of all finite values of that objective,
  ``F(x) = #{r : r <= x} / n``. Results lie in (0, 1]; the smallest value maps to ``1/n`` (or to ``k/n`` when it
  occurs ``k`` times) and the largest to 1. Ties map to the same number. Used with reference point (2, 2).
- ``minmax``: ``(x - low) / (high - low)`` with ``low, high`` the minimum and maximum of all finite values (or
  bounds given by the user per column); a column with ``high == low`` maps to 0. Used with a user-given
  reference point.

NaN stays NaN (and later contributes nothing to a hypervolume).
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

Bounds = tuple[float, float]


def _finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def quantile_normalize(
    values: Sequence[float] | np.ndarray, reference: Sequence[float] | np.ndarray | None = None
) -> np.ndarray:
    """Map values through the empirical CDF of ``reference`` (default: of the values themselves)."""
    values = np.asarray(values, dtype=float)
    ref = np.sort(_finite(np.asarray(values if reference is None else reference, dtype=float)))
    out = np.full(values.shape, np.nan)
    if ref.size == 0:
        return out
    ok = np.isfinite(values)
    out[ok] = np.searchsorted(ref, values[ok], side="right") / ref.size
    return out


def minmax_normalize(
    values: Sequence[float] | np.ndarray,
    reference: Sequence[float] | np.ndarray | None = None,
    bounds: Bounds | None = None,
) -> np.ndarray:
    """Map values linearly so the reference minimum goes to 0 and its maximum to 1 (or use the given bounds)."""
    values = np.asarray(values, dtype=float)
    if bounds is None:
        ref = _finite(np.asarray(values if reference is None else reference, dtype=float))
        if ref.size == 0:
            return np.full(values.shape, np.nan)
        low, high = float(ref.min()), float(ref.max())
    else:
        low, high = (float(b) for b in bounds)
    if high < low:
        raise ValueError(f"min-max bounds must satisfy low <= high, got ({low}, {high})")
    if high == low:
        return np.where(np.isfinite(values), 0.0, np.nan)
    return (values - low) / (high - low)


Normalizer = Callable[..., np.ndarray]

NORMALIZERS: dict[str, Normalizer] = {
    "quantile": quantile_normalize,
    "minmax": minmax_normalize,
}


def get_normalizer(name: str) -> Normalizer:
    """Look a normalisation scheme up by name."""
    if name not in NORMALIZERS:
        raise ValueError(f"unknown normalization {name!r}; valid choices: {sorted(NORMALIZERS)}")
    return NORMALIZERS[name]


def normalize_objectives(
    frame: pd.DataFrame,
    columns: Sequence[str],
    method: str = "quantile",
    group_by: str | Sequence[str] | None = "task",
    bounds: Mapping[str, Bounds] | None = None,
) -> pd.DataFrame:
    """Return the normalised ``columns`` of ``frame`` (same index), each group normalised over all its rows.

    ``bounds`` (column -> (low, high)) fixes the min-max range instead of taking it from the data; it is only
    valid with ``method="minmax"``.
    """
    normalizer = get_normalizer(method)
    if bounds and method != "minmax":
        raise ValueError(f"bounds are only used by the 'minmax' normalization, not by {method!r}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"cannot normalise missing columns {missing}; frame has {list(frame.columns)}")
    out = pd.DataFrame(index=frame.index, columns=list(columns), dtype=float)
    groups = [(None, frame)] if group_by is None else frame.groupby(group_by, sort=False, dropna=False)
    for _, part in groups:
        for col in columns:
            values = part[col].to_numpy(dtype=float)
            kwargs = {"bounds": bounds[col]} if bounds and col in bounds else {}
            out.loc[part.index, col] = normalizer(values, **kwargs)
    return out
