"""From uploaded parts to checked arrays: decode every file and make sure they belong together.

All sources must share a shape, NIfTI sources also a voxel grid (affine); truths and the mask
must match them too. Problems are reported by part name with the shapes involved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from service.errors import MissingPartError, ShapeMismatchError
from service.uploads import FormParts, Part
from synnet.errors import SynnetError
from synnet.imageio import ImageLimits, ImageMeta, read_image
from synnet.modalities import Modality, format_modalities
from synnet.normalization import brain_mask


@dataclass
class InputImages:
    """Decoded inputs of one request.

    Attributes:
        sources: raw source images by modality, in ``src`` order; each (H, W) or (X, Y, Z).
        meta: metadata of the first source, used to write results back in its space and format.
        truths: raw ground truths by target modality.
        mask: bool brain mask: the uploaded one, or the union of the sources' nonzero voxels.
    """

    sources: dict[Modality, np.ndarray]
    meta: ImageMeta
    truths: dict[Modality, np.ndarray]
    mask: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return self.mask.shape


def check_parts(parts: FormParts, src: Sequence[Modality], dst: Sequence[Modality]) -> None:
    """Every source in ``src`` has a part; no part is for something that was not asked for."""
    for modality in src:
        if modality not in parts.sources:
            raise MissingPartError(
                f"missing file part for {modality.value} (src={format_modalities(src)}); "
                f"send the image as a form part named {modality.value!r}"
            )
    extra = [m.value for m in parts.sources if m not in src]
    if extra:
        raise SynnetError(
            f"file part(s) {', '.join(extra)} sent but not listed in src={format_modalities(src)}",
            code="unexpected_part",
        )
    stray = [m.value for m in parts.truths if m not in dst]
    if stray:
        raise SynnetError(
            f"ground truth for {', '.join(stray)} sent, but it is not a target (dst={format_modalities(dst)})",
            code="unexpected_part",
        )


def decode_inputs(parts: FormParts, src: Sequence[Modality], limits: ImageLimits | None = None) -> InputImages:
    """Decode and cross-check every uploaded image (CPU work: call it in a worker thread).

    Raises:
        InvalidImageError: a file that cannot be read (its own code: corrupt_file, non_finite...).
        ShapeMismatchError: images that do not share a shape or a voxel grid.
    """
    decoded = {m: _read(parts.sources[m], limits) for m in src}
    first = src[0]
    reference, meta = decoded[first]
    for modality, (array, other) in decoded.items():
        _check_same_grid(f"source {modality.value}", array, other, f"source {first.value}", reference, meta)
    truths: dict[Modality, np.ndarray] = {}
    for modality, part in parts.truths.items():
        array, other = _read(part, limits)
        _check_same_grid(f"truth_{modality.value}", array, other, f"source {first.value}", reference, meta)
        truths[modality] = array
    sources = {m: a for m, (a, _) in decoded.items()}
    if parts.mask is not None:
        array, other = _read(parts.mask, limits)
        _check_same_grid("mask", array, other, f"source {first.value}", reference, meta)
        mask = array != 0
        what = "the uploaded mask is all zero"
    else:
        mask = brain_mask(list(sources.values()))
        what = "every source image is zero everywhere"
    if not mask.any():
        raise SynnetError(f"no brain to synthesize: {what}", code="empty_image")
    return InputImages(sources, meta, truths, mask)


def _read(part: Part, limits: ImageLimits | None) -> tuple[np.ndarray, ImageMeta]:
    # The label names the form part in every error; it keeps the file's extension at its end,
    # which read_image uses to tell formats apart when the magic bytes do not.
    label = f"{part.field} part {part.filename}" if part.filename else f"{part.field} part"
    return read_image(part.data, label, limits=limits)


def _check_same_grid(
    name: str, array: np.ndarray, meta: ImageMeta, ref_name: str, reference: np.ndarray, ref_meta: ImageMeta
) -> None:
    if array.shape != reference.shape:
        raise ShapeMismatchError(
            f"{name} has shape {array.shape} but {ref_name} has shape {reference.shape}; "
            "all images of a request must have the same shape"
        )
    if meta.format == "nifti" and ref_meta.format == "nifti" and not meta.same_space(ref_meta):
        raise ShapeMismatchError(
            f"{name} and {ref_name} have the same shape but different affines (voxel grids); "
            "register the images to one space first",
            code="affine_mismatch",
        )
