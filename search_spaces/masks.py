"""Head and unit masks: the one representation of a sub-network shared by every part of the project."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from search_spaces.shape import ModelShape


@dataclass(frozen=True)
class SubNetworkMasks:
    """Which heads and FFN units a sub-network keeps (True = kept).

    ``heads`` has shape [layers, heads] and ``units`` shape [layers, units]. A layer with no heads skips its
    attention block, a layer with no units skips its FFN block; a layer with neither is dropped (identity).
    """

    heads: torch.Tensor
    units: torch.Tensor

    def __post_init__(self) -> None:
        if self.heads.dtype != torch.bool or self.units.dtype != torch.bool:
            raise TypeError("head and unit masks must be bool tensors")
        if self.heads.dim() != 2 or self.units.dim() != 2 or self.heads.shape[0] != self.units.shape[0]:
            raise ValueError(
                f"masks must be [layers, heads] and [layers, units] with the same number of layers, "
                f"got {tuple(self.heads.shape)} and {tuple(self.units.shape)}"
            )

    @classmethod
    def full(cls, shape: ModelShape) -> "SubNetworkMasks":
        """The whole network."""
        return cls(
            heads=torch.ones(shape.num_layers, shape.num_heads, dtype=torch.bool),
            units=torch.ones(shape.num_layers, shape.num_units, dtype=torch.bool),
        )

    def check_shape(self, shape: ModelShape) -> None:
        """Raise a clear error when the masks do not fit the model."""
        want_h = (shape.num_layers, shape.num_heads)
        want_u = (shape.num_layers, shape.num_units)
        if tuple(self.heads.shape) != want_h or tuple(self.units.shape) != want_u:
            raise ValueError(
                f"masks of shape {tuple(self.heads.shape)}/{tuple(self.units.shape)} do not fit a model with "
                f"[layers, heads]={want_h} and [layers, units]={want_u}"
            )

    @property
    def heads_per_layer(self) -> list[int]:
        return [int(n) for n in self.heads.sum(dim=1)]

    @property
    def units_per_layer(self) -> list[int]:
        return [int(n) for n in self.units.sum(dim=1)]

    @property
    def layers_kept(self) -> list[bool]:
        """A layer counts as kept when it keeps any head or unit."""
        return [bool(h or u) for h, u in zip(self.heads.any(dim=1), self.units.any(dim=1))]

    def is_prefix(self) -> bool:
        """True when every layer keeps a prefix of its heads and of its units (views suffice, no gather)."""
        return _rows_are_prefixes(self.heads) and _rows_are_prefixes(self.units)

    def is_uniform(self) -> bool:
        """True when all kept layers keep the same numbers of heads and of units."""
        pairs = {(h, u) for h, u, k in zip(self.heads_per_layer, self.units_per_layer, self.layers_kept) if k}
        return len(pairs) <= 1

    def to(self, device: torch.device | str) -> "SubNetworkMasks":
        return SubNetworkMasks(self.heads.to(device), self.units.to(device))

    def to_dict(self) -> dict[str, list[list[int]]]:
        """JSON-friendly form (lists of 0/1)."""
        return {"heads": self.heads.int().tolist(), "units": self.units.int().tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> "SubNetworkMasks":
        return cls(
            heads=torch.tensor(data["heads"], dtype=torch.int64).bool(),
            units=torch.tensor(data["units"], dtype=torch.int64).bool(),
        )


def _rows_are_prefixes(mask: torch.Tensor) -> bool:
    counts = mask.sum(dim=1, keepdim=True)
    positions = torch.arange(mask.shape[1]).unsqueeze(0)
    return bool(torch.equal(mask, positions < counts))
