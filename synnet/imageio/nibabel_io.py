"""nibabel images in and out, for callers that hold images rather than files (the Python API).

An image in becomes what :func:`synnet.imageio.read_image` returns for its file; a NIfTI file's
bytes out become the image a reader of that file would get, so the API's results are the
service's files, opened.
"""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np

from synnet.imageio.meta import ImageMeta

GZIP_MAGIC = b"\x1f\x8b"
NIFTI2_HEADER_BYTES = 540


def from_nibabel(image: nib.Nifti1Image | nib.Nifti2Image) -> tuple[np.ndarray, ImageMeta]:
    """``(float32 voxels, meta)`` of ``image``, a singleton 4th axis dropped as the reader drops it."""
    shape = tuple(int(s) for s in image.shape)
    data_shape = shape[:3] if len(shape) == 4 and shape[3] == 1 else shape
    array = np.asarray(image.get_fdata(dtype=np.float32)).reshape(data_shape)
    meta = ImageMeta(
        format="nifti",
        original_shape=shape,
        dtype=str(image.get_data_dtype()),
        affine=np.asarray(image.affine, dtype=np.float64),
        header=image.header.copy(),
        compressed=True,
    )
    return array, meta


def to_nibabel(payload: bytes) -> nib.Nifti1Image | nib.Nifti2Image:
    """The image in a NIfTI-1 or NIfTI-2 file's bytes (``.nii`` or ``.nii.gz``)."""
    raw = gzip.decompress(payload) if payload[:2] == GZIP_MAGIC else payload
    # sizeof_hdr is 540 for NIfTI-2 (348 for NIfTI-1), in the header's own byte order.
    nifti2 = NIFTI2_HEADER_BYTES in (int.from_bytes(raw[:4], "little"), int.from_bytes(raw[:4], "big"))
    return (nib.Nifti2Image if nifti2 else nib.Nifti1Image).from_bytes(raw)
