"""2.5D input: each source slice fed together with its axial neighbours, as extra channels.

A 2D network sees one axial slice and cannot tell a vessel crossing the slice from a round lesion,
nor a partial-volume edge from a thin structure; the slices just above and below can. A model
trained with ``context`` neighbours on each side (manifest ``input.context_slices``) takes
``2·context + 1`` channels per source, source by source, each from the lowest z to the highest::

    channels = [src0 z-k, ..., src0 z, ..., src0 z+k, src1 z-k, ..., src1 z+k, ...]

Training and inference both build that stack here, so the order and the edge rule cannot drift
apart. At the ends of the volume the nearest slice is repeated (a 2D upload, one slice, becomes
``2·context + 1`` copies of itself): that is the continuation of the anatomy most like the truth,
and unlike zeros it does not look like the background beyond the brain.
"""

from __future__ import annotations

import numpy as np

MAX_CONTEXT_SLICES = 8  # beyond ±8 slices (±8 mm in BraTS) a neighbour no longer shows the same structure


def slices_per_source(context: int) -> int:
    """Channels each source takes with ``context`` neighbours on each side."""
    if context < 0:
        raise ValueError(f"context must be >= 0 neighbour slices on each side, got {context}")
    return 2 * context + 1


def neighbour_stack(volumes: np.ndarray, z: np.ndarray, context: int) -> np.ndarray:
    """The network input for the axial slices ``z``: ``(n, C·(2·context+1), X, Y)`` float32.

    Args:
        volumes: (C, X, Y, Z) sources in model space.
        z: (n,) axial indices of the slices to stack, each in [0, Z).
        context: neighbours on each side (0: the slices themselves, ``(n, C, X, Y)``).
    """
    z = np.asarray(z)
    channels, rows, cols, depth = volumes.shape
    per_source = slices_per_source(context)
    # filled one offset at a time: the peak is the result plus one offset's slices, not two results
    out = np.empty((z.size, channels, per_source, rows, cols), dtype=np.float32)
    for position, offset in enumerate(range(-context, context + 1)):
        out[:, :, position] = np.moveaxis(volumes[..., np.clip(z + offset, 0, depth - 1)], -1, 0)
    return out.reshape(z.size, channels * per_source, rows, cols)
