"""Intensity normalization between raw scanner units and model space.

MR intensities carry no absolute unit: the same tissue reads 800 at one site and 20 000 at
another (two BraTS TCIA10 cases span 0-32767). Models therefore see every image after a robust,
per-image rescaling computed inside the brain:

    lo, hi = percentile(image[brain], lower), percentile(image[brain], upper)
    x = clip((image - lo) / (hi - lo), 0, 1)  inside the brain,   x = 0 outside

with ``lower = 0.5`` and ``upper = 99.5`` by default. The in-brain metrics of
:mod:`synnet.metrics` use the same scaling; that is this project's own convention, not the BraSyn
challenge's, which takes the percentiles over the whole volume, background included, and raises a
negative lower bound to 0 (:func:`synnet.metrics.brasyn_scaled`). The inverse,
:func:`denormalize`, maps model space back to raw units given a
``(lo, hi)`` range; for a synthesized modality (whose real range is unknown) the service uses the
reference range recorded in the model manifest, the median over the training cases.

The brain mask is the union of the nonzero voxels of the inputs: BraTS-style data are
skull-stripped, so background is exactly zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class NormalizationParams(BaseModel):
    """Parameters of :func:`normalize`, stored in every model manifest."""

    model_config = ConfigDict(frozen=True)

    method: str = Field(default="percentile", description="percentile min-max inside the brain mask")
    lower_percentile: float = Field(default=0.5, ge=0.0, lt=50.0)
    upper_percentile: float = Field(default=99.5, gt=50.0, le=100.0)
    target_anchor: Literal["percentile", "median"] = Field(
        default="percentile",
        description="how the model's targets were scaled in training, so truths are compared in the same space: "
        "like the sources, or with the brain median at MEDIAN_LEVEL (normalize_target)",
    )


class IntensityRange(BaseModel):
    """Raw intensities that map to 0 and 1 in model space."""

    model_config = ConfigDict(frozen=True)

    lo: float
    hi: float


def brain_mask(images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Union of the nonzero voxels of one or several co-registered images, as a bool array."""
    if isinstance(images, np.ndarray):
        images = [images]
    mask = np.zeros(np.shape(images[0]), dtype=bool)
    for image in images:
        mask |= np.asarray(image) != 0
    return mask


def intensity_range(image: np.ndarray, mask: np.ndarray, params: NormalizationParams | None = None) -> IntensityRange:
    """The (lo, hi) percentiles of ``image`` inside ``mask``; (0, 1) when the mask is empty."""
    params = params or NormalizationParams()
    values = np.asarray(image)[mask]
    if values.size == 0:
        return IntensityRange(lo=0.0, hi=1.0)
    lo, hi = np.percentile(values, [params.lower_percentile, params.upper_percentile])
    if hi <= lo:  # a flat image: keep the scale finite
        hi = lo + 1.0
    return IntensityRange(lo=float(lo), hi=float(hi))


MEDIAN_LEVEL = 0.3  # the brain median of a T2 sits at 0.31 ± 0.08 under the percentile scaling (16 BraTS 2018 cases)


def median_anchored_range(
    image: np.ndarray, mask: np.ndarray, params: NormalizationParams | None = None, level: float = MEDIAN_LEVEL
) -> IntensityRange:
    """A (lo, hi) that puts the lower percentile at 0 and the brain's median at ``level``.

    The 99.5th percentile that sets ``hi`` in :func:`intensity_range` is decided by the brightest
    tissue (CSF, oedema, vessels), which the other contrasts of a case do not predict: it moves
    healthy tissue anywhere in 0.20–0.45 for T2 (docs/results/diagnosis.md, finding 3). Anchoring
    on the median makes the bulk's level the same for every case; what is brighter than
    ``lo + (median - lo) / level`` is clipped at 1.
    """
    percentile_range = intensity_range(image, mask, params)
    values = np.asarray(image)[mask]
    median = float(np.median(values)) if values.size else percentile_range.lo
    return anchor_on_median(percentile_range, median, level)


def anchor_on_median(percentile_range: IntensityRange, median: float, level: float = MEDIAN_LEVEL) -> IntensityRange:
    """:func:`median_anchored_range` from an image's percentile range and brain median, measured once
    (a training cache records both instead of the volume)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"the median's level must be in (0, 1), got {level}")
    if median <= percentile_range.lo:  # half the brain at the floor: no level to anchor on
        return percentile_range
    return IntensityRange(lo=percentile_range.lo, hi=percentile_range.lo + (median - percentile_range.lo) / level)


def normalize_target(
    image: np.ndarray, mask: np.ndarray, params: NormalizationParams
) -> tuple[np.ndarray, IntensityRange]:
    """A target (or a truth to score against one) in the model's output space: :func:`normalize`
    over the range ``params.target_anchor`` chooses."""
    value_range = median_anchored_range(image, mask, params) if params.target_anchor == "median" else None
    return normalize(image, mask, params, value_range)


def normalize(
    image: np.ndarray,
    mask: np.ndarray,
    params: NormalizationParams | None = None,
    value_range: IntensityRange | None = None,
) -> tuple[np.ndarray, IntensityRange]:
    """Map raw intensities to model space [0, 1], zero outside the brain.

    Args:
        image: raw intensities, any shape.
        mask: bool array of the same shape, True inside the brain.
        params: percentiles to use; defaults to 0.5 / 99.5.
        value_range: use this (lo, hi) instead of measuring it (e.g. to apply one image's range
            to another).

    Returns:
        ``(normalized float32 array, the IntensityRange used)``.
    """
    value_range = value_range or intensity_range(image, mask, params)
    scaled = (np.asarray(image, dtype=np.float32) - value_range.lo) / (value_range.hi - value_range.lo)
    normalized = np.where(mask, np.clip(scaled, 0.0, 1.0), 0.0).astype(np.float32)
    return normalized, value_range


def denormalize(normalized: np.ndarray, mask: np.ndarray, value_range: IntensityRange) -> np.ndarray:
    """Inverse of :func:`normalize` (up to clipping): model space back to raw units, zero outside."""
    raw = np.asarray(normalized, dtype=np.float32) * (value_range.hi - value_range.lo) + value_range.lo
    return np.where(mask, raw, 0.0).astype(np.float32)
