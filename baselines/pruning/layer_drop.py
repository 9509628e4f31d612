"""Layer dropping (Sajjad et al., "On the Effect of Dropping Layers of Pre-trained Transformer Models").

The top-layer strategy removes the k layers closest to the output, then fine-tunes what remains on the task.
Here only the choice of sub-network lives; the fine-tuning is the standard protocol of the runner.
"""
from __future__ import annotations

from search_spaces.masks import SubNetworkMasks
from search_spaces.shape import ModelShape


def drop_top_layers(shape: ModelShape, num_dropped: int) -> SubNetworkMasks:
    """The sub-network keeping the bottom ``L - num_dropped`` layers whole."""
    if not 0 <= num_dropped < shape.num_layers:
        raise ValueError(
            f"num_dropped must be in [0, {shape.num_layers - 1}] for {shape.num_layers} layers, got {num_dropped}"
        )
    keep = shape.num_layers - num_dropped
    masks = SubNetworkMasks.full(shape)
    masks.heads[keep:] = False
    masks.units[keep:] = False
    return masks


def layer_drop_schedule(shape: ModelShape, num_dropped: list[int] | None = None) -> list[SubNetworkMasks]:
    """Sub-networks dropping k top layers for each k in ``num_dropped`` (default 1 .. L-1)."""
    counts = range(1, shape.num_layers) if num_dropped is None else num_dropped
    return [drop_top_layers(shape, k) for k in counts]
