"""Reading and writing the image formats users send: NIfTI (.nii, .nii.gz) and PNG.

Readers return ``(array, meta)``: a float32 array and the :class:`ImageMeta` needed to write a
result back in the same space (affine, header) and format (bit depth).
"""

from __future__ import annotations

from synnet.imageio.limits import ImageLimits
from synnet.imageio.meta import ImageMeta
from synnet.imageio.read import detect_format, read_image
from synnet.imageio.write import (
    EncodedImage,
    OutputFormat,
    encode_image,
    gzip_bytes,
    save_nifti,
    write_nifti,
    write_npy,
    write_png,
)

__all__ = [
    "EncodedImage",
    "ImageLimits",
    "ImageMeta",
    "OutputFormat",
    "detect_format",
    "encode_image",
    "gzip_bytes",
    "read_image",
    "save_nifti",
    "write_nifti",
    "write_npy",
    "write_png",
]
