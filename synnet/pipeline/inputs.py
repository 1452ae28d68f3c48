"""Stage 1, decoded inputs: every image of a request read, checked to lie on one grid, and the brain mask.

Uploads and files go through :func:`synnet.imageio.read_image` (its limits and checks), nibabel
images and arrays through the same shape and finiteness checks, so every way in refuses the same
images with the same codes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from synnet.errors import SynnetError
from synnet.grid import check_same_grid
from synnet.imageio import ImageLimits, ImageMeta, read_image
from synnet.imageio.nibabel_io import from_nibabel
from synnet.modalities import Modality
from synnet.normalization import brain_mask
from synnet.pipeline.request import ImageInput, SynthesisRequest


@dataclass
class Inputs:
    """The decoded images of one request.

    Attributes:
        sources: raw source images by modality, in ``src`` order; each (H, W) or (X, Y, Z).
        meta: the first source's metadata (None for an array): results are written in its space
            and format.
        truths: raw ground truths by target.
        mask: bool brain mask of the sources' shape: the one given, or the union of the sources'
            nonzero voxels.
    """

    sources: dict[Modality, np.ndarray]
    meta: ImageMeta | None
    truths: dict[Modality, np.ndarray]
    mask: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return self.mask.shape


def decode_inputs(request: SynthesisRequest, limits: ImageLimits | None = None) -> Inputs:
    """Read every image of ``request`` and check that they belong together (CPU work).

    Raises:
        InvalidImageError: an image that cannot be read (its own code: corrupt_file, non_finite...).
        GridMismatchError: images that do not share a shape or a voxel grid.
        SynnetError: ``empty_image`` when the mask holds no brain.
    """
    read = {f"source {m.value}": read_input(request.sources[m], limits) for m in request.src}
    read |= {f"truth_{m.value}": read_input(image, limits) for m, image in request.truths.items()}
    if request.mask is not None:
        read["mask"] = read_input(request.mask, limits)
    check_same_grid(
        {name: array.shape for name, (array, _) in read.items()},
        {name: meta.affine if meta is not None else None for name, (_, meta) in read.items()},
    )
    sources = {m: read[f"source {m.value}"][0] for m in request.src}
    truths = {m: read[f"truth_{m.value}"][0] for m in request.truths}
    if request.mask is not None:
        mask = read["mask"][0] != 0
        what = "the uploaded mask is all zero"
    else:
        mask = brain_mask(list(sources.values()))
        what = "every source image is zero everywhere"
    if not mask.any():
        raise SynnetError(f"no brain to synthesize: {what}", code="empty_image")
    return Inputs(sources, read[f"source {request.src[0].value}"][1], truths, mask)


def read_input(image: ImageInput, limits: ImageLimits | None = None) -> tuple[np.ndarray, ImageMeta | None]:
    """One image as ``(float32 array, meta)``; meta is None for an array, which carries no space."""
    data, label = image.data, image.label
    if isinstance(data, bytes):
        return read_image(data, label, limits=limits)
    if isinstance(data, (str, os.PathLike)):
        return read_image(Path(data), limits=limits)
    if isinstance(data, (nib.Nifti1Image, nib.Nifti2Image)):
        return _checked(*from_nibabel(data), label or "image")
    if isinstance(data, np.ndarray):
        return _checked(np.asarray(data, dtype=np.float32), None, label or "image")
    raise SynnetError(
        f"{label or 'image'}: expected a path, a nibabel image or a numpy array, got {type(data).__name__}",
        code="bad_input",
    )


def _checked(array: np.ndarray, meta: ImageMeta | None, label: str) -> tuple[np.ndarray, ImageMeta | None]:
    if array.ndim not in (2, 3):
        raise SynnetError(f"{label} has shape {array.shape}; expected a 2D image or a 3D volume", code="bad_dimensions")
    if not np.isfinite(array).all():
        raise SynnetError(f"{label} contains {int((~np.isfinite(array)).sum())} NaN or Inf values", code="non_finite")
    return array, meta
