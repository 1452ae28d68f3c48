"""Reading and writing the image formats users send: NIfTI (.nii, .nii.gz) and PNG.

Readers return ``(array, meta)``: a float32 array and the :class:`ImageMeta` needed to write a
result back in the same space (affine, header) and format (bit depth).
"""

from __future__ import annotations

from synnet.imageio.limits import ImageLimits
from synnet.imageio.meta import ImageMeta
from synnet.imageio.read import detect_format, read_image
from synnet.imageio.write import encode_image, write_nifti, write_png

__all__ = [
    "ImageLimits",
    "ImageMeta",
    "detect_format",
    "encode_image",
    "read_image",
    "write_nifti",
    "write_png",
]
