"""Axial training slices from a loaded case, in model space.

Training sees exactly what the service will see: the brain mask is the union of the nonzero voxels
of the SOURCE images only (the targets are what a user does not have), or the case's brain-mask file
when it has one (data whose background is not 0), and every modality is
normalized per volume inside that mask with :func:`synnet.normalization.normalize`. Normalizing
per volume rather than per slice keeps the intensity relation between slices of one brain, and is
what the service does with an uploaded volume.

Only slices with enough brain are kept: the top and bottom of a BraTS volume are empty or show a
sliver of cortex, which teaches the network nothing and would dominate the loss with background.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from synnet.modalities import Modality, check_disjoint, format_modalities, parse_modalities
from synnet.neighbours import neighbour_stack, slices_per_source
from synnet.normalization import IntensityRange, NormalizationParams, normalize, normalize_target
from training.data.brats import LoadedCase
from training.data.errors import DataError

logger = logging.getLogger(__name__)

# A mid-brain BraTS slice has ~20 000 brain pixels out of 240 x 240 = 57 600 (a fraction ~0.35);
# 0.05 keeps the cerebellum and the vertex but drops the last few slivers.
DEFAULT_MIN_BRAIN_FRACTION = 0.05


@dataclass
class SliceStack:
    """The usable axial slices of one case.

    Attributes:
        case_id: the subject the slices come from (splits are by subject).
        src: source modalities, in channel order.
        dst: target modalities, in channel order.
        sources: (N, len(src)·(2·context+1), X, Y) float32 in [0, 1], zero outside the brain: each
            source with its axial neighbours when extracted with ``context`` (:mod:`synnet.neighbours`).
        targets: (N, len(dst), X, Y) float32 in [0, 1], zero outside the brain.
        masks: (N, X, Y) bool brain mask (union of the nonzero source voxels).
        slice_indices: (N,) int axial index z of each slice in the volume.
        ranges: raw (lo, hi) of every src and dst modality of this case, as normalized.
        tumour: (N, X, Y) bool, inside the brain and the tumour (seg > 0); None when the case was
            loaded without its segmentation (the default: only ``--tumour-weight`` reads it).
    """

    case_id: str
    src: tuple[Modality, ...]
    dst: tuple[Modality, ...]
    sources: np.ndarray
    targets: np.ndarray
    masks: np.ndarray
    slice_indices: np.ndarray
    ranges: dict[Modality, IntensityRange] = field(default_factory=dict)
    tumour: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.sources.shape[0])

    @property
    def target_ranges(self) -> dict[Modality, IntensityRange]:
        """Raw (lo, hi) of each target modality the case has: what model space 0 and 1 meant for it."""
        return {m: self.ranges[m] for m in self.dst if m in self.ranges}


def brain_slice_indices(mask3d: np.ndarray, min_brain_fraction: float = DEFAULT_MIN_BRAIN_FRACTION) -> np.ndarray:
    """Axial slices (last axis) whose brain covers at least ``min_brain_fraction`` of the slice.

    Args:
        mask3d: (X, Y, Z) bool brain mask.
        min_brain_fraction: in [0, 1], the fraction of the X * Y pixels of a slice that must be
            brain. 0 keeps every slice with any brain at all.

    Returns:
        (N,) int64 ascending indices z.
    """
    mask3d = np.asarray(mask3d)
    if mask3d.ndim != 3:
        raise DataError(f"brain mask must be 3D (X, Y, Z), got shape {mask3d.shape}", code="bad_slices")
    if not 0.0 <= min_brain_fraction <= 1.0:
        raise DataError(f"min_brain_fraction must be in [0, 1], got {min_brain_fraction}", code="bad_slices")
    fraction = mask3d.astype(bool).mean(axis=(0, 1))
    keep = (fraction >= min_brain_fraction) & (fraction > 0)
    return np.flatnonzero(keep).astype(np.int64)


def extract_slices(
    case: LoadedCase,
    src: Sequence[Modality | str],
    dst: Sequence[Modality | str],
    params: NormalizationParams | None = None,
    min_brain_fraction: float = DEFAULT_MIN_BRAIN_FRACTION,
    context: int = 0,
) -> SliceStack:
    """Normalize one case per volume and cut it into axial slices with enough brain.

    Args:
        case: from :func:`training.data.brats.load_case`, holding every src and dst modality.
        src: input modalities (channel order of ``sources``).
        dst: target modalities (channel order of ``targets``), disjoint from ``src``.
        params: the manifest's normalization; defaults to 0.5 / 99.5 for sources and targets alike
            (``params.target_anchor``: how targets are scaled, :func:`synnet.normalization.normalize_target`).
        min_brain_fraction: see :func:`brain_slice_indices`.
        context: axial neighbours on each side stacked with every source slice (2.5D input); the
            neighbours of a kept slice are taken whether or not they are kept themselves.

    Returns:
        A :class:`SliceStack`; it may hold zero slices if no slice has enough brain.

    Raises:
        DataError: a src or dst modality is not loaded in ``case`` (code ``missing_modality``).
    """
    src_m, dst_m = parse_modalities(list(src)), parse_modalities(list(dst))
    check_disjoint(src_m, dst_m)
    absent = [m for m in (*src_m, *dst_m) if m not in case.images]
    if absent:
        raise DataError(
            f"case {case.case_id} was loaded without {format_modalities(absent)} "
            f"(loaded: {format_modalities(case.images)})",
            code="missing_modality",
        )
    params = params or NormalizationParams()
    mask = case.brain_mask(src_m)
    z = brain_slice_indices(mask, min_brain_fraction)
    ranges: dict[Modality, IntensityRange] = {}
    sources = _normalized_slices(case, src_m, mask, z, params, ranges, context)
    targets = _normalized_slices(case, dst_m, mask, z, params, ranges, as_targets=True)
    masks = np.ascontiguousarray(np.moveaxis(mask[:, :, z], -1, 0))
    logger.debug("case %s: kept %d of %d axial slices", case.case_id, len(z), mask.shape[-1])
    return SliceStack(
        case_id=case.case_id,
        src=src_m,
        dst=dst_m,
        sources=sources,
        targets=targets,
        masks=masks,
        slice_indices=z,
        ranges=ranges,
        tumour=_tumour_slices(case, masks, z),
    )


def extract_available_slices(
    case: LoadedCase,
    params: NormalizationParams | None = None,
    min_brain_fraction: float = DEFAULT_MIN_BRAIN_FRACTION,
) -> SliceStack:
    """All four modalities in canonical order, NaN where the case lacks one: the any-to-any model's data.

    ``src`` and ``dst`` are both all four modalities and ``targets`` is ``sources`` itself (one
    array): which are inputs and which outputs is drawn per training step
    (:mod:`training.fitting.subsets`). The brain mask is the union over the modalities the case
    has; ``ranges`` holds only those.

    Raises:
        DataError: the case has no image loaded (code ``missing_modality``).
    """
    have = tuple(m for m in Modality if m in case.images)
    if not have:
        raise DataError(f"case {case.case_id} was loaded without any image", code="missing_modality")
    params = params or NormalizationParams()
    mask = case.brain_mask(have)
    z = brain_slice_indices(mask, min_brain_fraction)
    ranges: dict[Modality, IntensityRange] = {}
    present = _normalized_slices(case, have, mask, z, params, ranges)
    images = np.full((len(z), len(Modality), *mask.shape[:2]), np.nan, dtype=np.float32)
    for channel, modality in enumerate(Modality):
        if modality in have:
            images[:, channel] = present[:, have.index(modality)]
    masks = np.ascontiguousarray(np.moveaxis(mask[:, :, z], -1, 0))
    every = tuple(Modality)
    return SliceStack(case.case_id, every, every, images, images, masks, z, ranges, _tumour_slices(case, masks, z))


def _tumour_slices(case: LoadedCase, masks: np.ndarray, z: np.ndarray) -> np.ndarray | None:
    """(N, X, Y) bool tumour (seg > 0) inside the brain on the kept slices, or None without a segmentation."""
    if case.seg is None:
        return None
    tumour = np.moveaxis(np.asarray(case.seg)[:, :, z] > 0, -1, 0)
    return np.ascontiguousarray(tumour & masks)


def _normalized_slices(
    case: LoadedCase,
    modalities: Iterable[Modality],
    mask: np.ndarray,
    z: np.ndarray,
    params: NormalizationParams,
    ranges: dict[Modality, IntensityRange],
    context: int = 0,
    as_targets: bool = False,
) -> np.ndarray:
    """(N, C·(2·context+1), X, Y) float32: each volume normalized whole (as a source, or as a target),
    then only the kept slices stored, each with its ``context`` axial neighbours on either side."""
    x, y = mask.shape[:2]
    modalities = list(modalities)
    per_source = slices_per_source(context)
    out = np.empty((len(z), len(modalities) * per_source, x, y), dtype=np.float32)
    for channel, modality in enumerate(modalities):
        scale = normalize_target if as_targets else normalize
        volume, ranges[modality] = scale(case.images[modality], mask, params)
        out[:, channel * per_source : (channel + 1) * per_source] = neighbour_stack(volume[None], z, context)
    return out


class HasTargetRanges(Protocol):
    """A case as loaded for training, in memory (:class:`SliceStack`) or streamed from the cache."""

    @property
    def target_ranges(self) -> dict[Modality, IntensityRange]: ...


def reference_ranges(stacks: Iterable[HasTargetRanges]) -> dict[Modality, IntensityRange]:
    """Median raw (lo, hi) of each target over cases: the manifest's ``output_reference``.

    The service has no raw range for a modality it synthesizes, so it maps model space back with
    the typical range of the training cases; the median resists the odd site scaled to 0-32767.
    """
    collected: dict[Modality, list[IntensityRange]] = {}
    for stack in stacks:
        for modality, value_range in stack.target_ranges.items():
            collected.setdefault(modality, []).append(value_range)
    return {
        modality: IntensityRange(
            lo=float(np.median([r.lo for r in values])), hi=float(np.median([r.hi for r in values]))
        )
        for modality, values in collected.items()
    }
