"""The volume pipeline around any ``forward``: prepare the network's input, assemble its output.

    sources (raw) ─ prepare ─► slice chunks (B, C, h, w) ─ forward ─► outputs ─ assemble ─► (D, X, Y, Z)

* :func:`prepare`: each source normalized per volume with the manifest's parameters inside the
  brain mask, stacked in ``src`` order (with its axial neighbours for a 2.5D model,
  :mod:`synnet.neighbours`); axial slices without brain dropped; every slice cut to one brain box
  on the model's grid.
* :func:`assemble`: outputs put back in place, clipped to [0, 1], zeroed outside the brain;
  :func:`to_raw_units` maps a target back to raw units with the manifest's output reference.

Plain synchronous functions: a request's pipeline (:mod:`synnet.pipeline`: the service, the CLI,
the Python API) runs its forward between the two steps; evaluation and calibration call
:func:`synthesize`, which runs ``forward`` in between. Everyone gets the same voxels for the same
volume.

Cropping and skipping are the big levers on CPU: a BraTS brain fills about 45 % of a 240×240
slice and a tenth of the slices hold none. The box is shared by all slices of a volume (one
shape, so chunks of several requests batch together) and aligned to the model's ``multiple_of``
grid, so the network pools over the same 2×2 cells as it would on the whole slice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from synnet.errors import SynnetError
from synnet.manifest import ModelManifest
from synnet.modalities import Modality
from synnet.neighbours import neighbour_stack
from synnet.normalization import denormalize, normalize

Forward = Callable[[torch.Tensor], torch.Tensor]


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


def model_input(sources: Mapping[Modality, np.ndarray], mask: np.ndarray, manifest: ModelManifest) -> np.ndarray:
    """The sources in the manifest's ``src`` order, each normalized per volume: (C, X, Y, Z).

    For an any-to-any model (``manifest.any_to_any``) every modality of ``src`` gets a channel and
    one not given is NaN throughout: model space has no value that means "absent", so the
    stack says it out of band, and :meth:`synnet.store.LoadedModel.forward` turns each NaN channel
    into a zero channel plus ``present = 0`` for the network. Chunks of requests with different
    sources then still batch together.
    """
    if manifest.any_to_any:
        shape = as_volume(mask).shape
        missing = np.full(shape, np.nan, dtype=np.float32)
        return np.stack(
            [
                as_volume(normalize(sources[m], mask, manifest.normalization)[0]) if m in sources else missing
                for m in manifest.src
            ]
        )
    return np.stack([as_volume(normalize(sources[m], mask, manifest.normalization)[0]) for m in manifest.src])


@dataclass(frozen=True)
class SliceStack:
    """What the network runs for one volume: the slices holding brain, cropped to one box.

    Attributes:
        x: (n, C, h, w) float32, contiguous: slice ``slices[i]`` of the sources, rows × cols (with
            its axial neighbours per source for a 2.5D model: C = ``manifest.input_channels``).
        slices: (n,) axial indices z of the slices that hold brain.
        rows, cols: the in-plane box (the whole slice when not cropping).
        mask: (X, Y, Z) bool brain mask of the volume (a 2D image as one slice).
        n_dst: output channels the network returns.
        stats: slices run and skipped.
    """

    x: np.ndarray
    slices: np.ndarray
    rows: slice
    cols: slice
    mask: np.ndarray
    n_dst: int
    stats: SliceStats

    def chunks(self, batch_size: int) -> list[torch.Tensor]:
        """The stack cut into forwards of at most ``batch_size`` slices (views, no copy)."""
        return [torch.from_numpy(self.x[i : i + batch_size]) for i in range(0, len(self.x), batch_size)]


def slice_stack(x: np.ndarray, mask: np.ndarray, manifest: ModelManifest, *, crop: bool = True) -> SliceStack:
    """The network's input for normalized sources ``x`` (C, X, Y, Z) and a (X, Y, Z) or (X, Y) mask."""
    volume_mask = as_volume(mask)
    slices = np.flatnonzero(volume_mask.any(axis=(0, 1)))
    stats = SliceStats(run=int(slices.size), skipped=int(volume_mask.shape[2] - slices.size))
    if crop and slices.size:
        rows, cols = brain_box(volume_mask.any(axis=2), manifest.input.multiple_of, manifest.input.min_size)
    else:
        rows, cols = slice(0, volume_mask.shape[0]), slice(0, volume_mask.shape[1])
    # (C, h, w, Z) → (n, C·(2k+1), h, w): a contiguous stack of the slices the network will see,
    # each source with its axial neighbours when the model takes them (2.5D).
    stack = neighbour_stack(x[:, rows, cols], slices, manifest.input.context_slices)
    return SliceStack(stack, slices, rows, cols, volume_mask, len(manifest.dst), stats)


def prepare(
    sources: Mapping[Modality, np.ndarray], mask: np.ndarray, manifest: ModelManifest, *, crop: bool = True
) -> SliceStack:
    """Raw sources (each (X, Y, Z) or (H, W)) and their brain mask → what the network runs.

    Raises:
        SynnetError: ``bad_dimensions`` when the in-plane size is outside the model's limits.
    """
    check_size(mask.shape, manifest)
    return slice_stack(model_input(sources, mask, manifest), mask, manifest, crop=crop)


def assemble(stack: SliceStack, outputs: Sequence[torch.Tensor]) -> np.ndarray:
    """The network's outputs for ``stack.chunks()`` → (D, X, Y, Z) float32 in [0, 1], zero outside the brain."""
    y = np.zeros((stack.n_dst, *stack.mask.shape), dtype=np.float32)
    if stack.slices.size == 0:
        return y
    out = torch.cat(list(outputs)).numpy()  # (n, D, h, w)
    y[:, stack.rows, stack.cols, stack.slices] = np.moveaxis(out, 0, -1)
    np.clip(y, 0.0, 1.0, out=y)
    y *= stack.mask[None]
    return y


def synthesize(
    forward: Forward,
    sources: Mapping[Modality, np.ndarray],
    mask: np.ndarray,
    manifest: ModelManifest,
    *,
    batch_size: int = 4,
    crop: bool = True,
) -> tuple[np.ndarray, SliceStats]:
    """Every target of one model for one volume, in model space: ``(y (D, X, Y, Z), stats)``.

    Args:
        forward: (B, manifest.input_channels, h, w) → (B, len(dst), h, w), e.g.
            :meth:`synnet.store.LoadedModel.forward`.
        sources: raw images by modality (at least the manifest's ``src``), all of ``mask``'s shape.
        mask: bool brain mask (the union of the sources' nonzero voxels, :func:`synnet.normalization.brain_mask`).
        batch_size: slices per forward.
        crop: run the brain's bounding box only (False: whole slices).
    """
    stack = prepare(sources, mask, manifest, crop=crop)
    return assemble(stack, [forward(chunk) for chunk in stack.chunks(batch_size)]), stack.stats


def to_raw_units(pred: np.ndarray, mask: np.ndarray, manifest: ModelManifest, target: Modality) -> np.ndarray:
    """A model-space target back in raw units, with the median training range of ``target`` (manifest)."""
    return denormalize(pred, mask, manifest.output_reference[target])


def synthetic_description(target: Modality, manifest: ModelManifest) -> str:
    """What an output file's header says it is (NIfTI ``descrip``, at most 80 bytes)."""
    return f"synthetic {target.value} by synnet model {manifest.name}"[:80]
