"""What a reader remembers about a file so that a result can be written back like it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import nibabel as nib
import numpy as np

ImageFormat = Literal["nifti", "png"]


@dataclass
class ImageMeta:
    """Metadata that travels with the pixels.

    Attributes:
        format: ``"nifti"`` or ``"png"``.
        original_shape: the shape stored in the file, before a singleton 4th axis was dropped.
        dtype: the on-disk data type, e.g. ``"int16"`` or ``"uint8"``.
        affine: (4, 4) voxel-to-world matrix for NIfTI; None for PNG.
        header: the NIfTI header (kept whole, so it can be written back); None for PNG.
        bit_depth: 8 or 16 for PNG; None for NIfTI.
        compressed: whether a NIfTI file was gzipped.
        filename: the name the file came with, if any.
    """

    format: ImageFormat
    original_shape: tuple[int, ...]
    dtype: str
    affine: np.ndarray | None = None
    header: nib.Nifti1Header | nib.Nifti2Header | None = None
    bit_depth: int | None = None
    compressed: bool = False
    filename: str | None = None

    def same_space(self, other: ImageMeta, atol: float = 1e-3) -> bool:
        """True when both images have the same voxel grid (affines agree, or neither has one)."""
        if self.affine is None or other.affine is None:
            return self.affine is None and other.affine is None
        return bool(np.allclose(self.affine, other.affine, atol=atol))
