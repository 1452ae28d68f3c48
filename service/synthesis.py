"""Running one model over a volume (or a 2D image) in model space.

volume → per-volume normalization of each source (manifest params, brain mask) → axial slices
→ slices without brain dropped → each slice cropped to the brain's bounding box → chunks of at
most ``max_batch_size`` slices through the model's :class:`~service.batcher.Batcher` →
reassembled, clipped to [0, 1] and zeroed outside the brain.

Cropping and skipping are the big levers on CPU: a BraTS brain fills about 45 % of a 240×240
slice and a tenth of the slices hold none. The box is shared by all slices of a volume (one
shape, so its chunks batch together) and aligned to the model's ``multiple_of`` grid, so the
network pools over the same 2×2 cells as it would on the whole slice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from service.batcher import Batcher
from synnet.errors import SynnetError
from synnet.manifest import ModelManifest
from synnet.modalities import Modality
from synnet.normalization import NormalizationParams, normalize


@dataclass(frozen=True)
class SliceStats:
    run: int
    skipped: int


def as_volume(image: np.ndarray) -> np.ndarray:
    """A 2D image (H, W) becomes a one-slice volume (H, W, 1); a volume is returned as is."""
    return image[..., None] if image.ndim == 2 else image


def brain_box(mask2d: np.ndarray, multiple: int, min_size: int) -> tuple[slice, slice]:
    """The bounding box of ``mask2d``'s True pixels, grown to the model's grid.

    The start is rounded down and the end up to multiples of ``multiple``; each side is at least
    ``min_size`` (rounded up to the multiple) and stays inside the image. An empty mask gives
    the whole image.
    """
    boxes = []
    for axis in (1, 0):
        extent = mask2d.shape[1 - axis]
        hits = np.flatnonzero(mask2d.any(axis=axis))
        if hits.size == 0:
            return slice(0, mask2d.shape[0]), slice(0, mask2d.shape[1])
        start = int(hits[0]) // multiple * multiple
        stop = -(-(int(hits[-1]) + 1) // multiple) * multiple
        length = max(stop - start, -(-min_size // multiple) * multiple)
        stop = min(start + length, extent)
        start = max(0, stop - length)
        boxes.append(slice(start, stop))
    return boxes[0], boxes[1]


def model_input(
    sources: dict[Modality, np.ndarray], mask: np.ndarray, manifest: ModelManifest
) -> np.ndarray:
    """Stack the sources in the manifest's ``src`` order, each normalized per volume: (C, X, Y, Z)."""
    return np.stack([normalize_source(sources[m], mask, manifest.normalization) for m in manifest.src])


def normalize_source(image: np.ndarray, mask: np.ndarray, params: NormalizationParams) -> np.ndarray:
    return as_volume(normalize(image, mask, params)[0])


def check_size(shape: Sequence[int], manifest: ModelManifest) -> None:
    """Refuse in-plane sizes outside what the model accepts (manifest ``input``)."""
    in_plane = tuple(shape[:2])
    low, high = manifest.input.min_size, manifest.input.max_size
    if min(in_plane) < low or max(in_plane) > high:
        raise SynnetError(
            f"in-plane size {in_plane} is outside what model {manifest.name} accepts: "
            f"every side from {low} to {high} pixels",
            code="bad_dimensions",
        )


@dataclass(frozen=True)
class SliceStack:
    """What the network runs for one volume: the slices holding brain, cropped to one box.

    Attributes:
        x: (n, C, h, w) float32, contiguous: slice ``slices[i]`` of the sources, rows × cols.
        slices: (n,) axial indices z of the slices that hold brain.
        rows, cols: the in-plane box (the whole slice when not cropping).
        stats: slices run and skipped.
    """

    x: np.ndarray
    slices: np.ndarray
    rows: slice
    cols: slice
    stats: SliceStats


def slice_stack(x: np.ndarray, mask: np.ndarray, manifest: ModelManifest, *, crop: bool = True) -> SliceStack:
    """The network's input for one volume (also what a benchmark needs to redo the same work).

    Args:
        x: (C, X, Y, Z) normalized sources (:func:`model_input`).
        mask: (X, Y, Z) or (X, Y) bool brain mask.
        manifest: the model's manifest (grid multiple and minimum size).
        crop: cut every slice to the brain's bounding box (False: whole slices).
    """
    volume_mask = as_volume(mask)
    slices = np.flatnonzero(volume_mask.any(axis=(0, 1)))
    stats = SliceStats(run=int(slices.size), skipped=int(volume_mask.shape[2] - slices.size))
    if crop and slices.size:
        rows, cols = brain_box(volume_mask.any(axis=2), manifest.input.multiple_of, manifest.input.min_size)
    else:
        rows, cols = slice(0, volume_mask.shape[0]), slice(0, volume_mask.shape[1])
    # (C, h, w, n) → (n, C, h, w): a contiguous stack of the slices the network will see.
    stack = np.ascontiguousarray(np.moveaxis(x[:, rows, cols][..., slices], -1, 0), dtype=np.float32)
    return SliceStack(stack, slices, rows, cols, stats)


async def run_model(
    x: np.ndarray,
    mask: np.ndarray,
    manifest: ModelManifest,
    batcher: Batcher,
    *,
    batch_size: int,
    crop: bool = True,
) -> tuple[np.ndarray, SliceStats]:
    """Synthesize every target of one model in model space.

    Args:
        x: (C, X, Y, Z) normalized sources (:func:`model_input`).
        mask: (X, Y, Z) bool brain mask.
        manifest: the model's manifest (grid multiple and size limits).
        batcher: the model's batcher.
        batch_size: most slices per submitted chunk.
        crop: run the brain's bounding box only (False: whole slices).

    Returns:
        ``(y, stats)``: y is (D, X, Y, Z) float32 in [0, 1], zero outside the brain.
    """
    volume_mask = as_volume(mask)
    y = np.zeros((len(manifest.dst), *volume_mask.shape), dtype=np.float32)
    stack = slice_stack(x, volume_mask, manifest, crop=crop)
    if stack.slices.size == 0:
        return y, stack.stats
    chunks = [torch.from_numpy(stack.x[i : i + batch_size]) for i in range(0, len(stack.x), batch_size)]
    outputs = await asyncio.gather(*(batcher.submit(chunk) for chunk in chunks))
    out = torch.cat(outputs).numpy()  # (n, D, h, w)
    y[:, stack.rows, stack.cols, stack.slices] = np.moveaxis(out, 0, -1)
    np.clip(y, 0.0, 1.0, out=y)
    y *= volume_mask[None]
    return y, stack.stats
