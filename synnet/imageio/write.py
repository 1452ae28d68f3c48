"""Encoding results back into the user's format: NIfTI in the source's space, or PNG."""

from __future__ import annotations

import gzip
import io
from typing import Literal

import nibabel as nib
import numpy as np

from synnet.imageio.meta import ImageMeta

OutputFormat = Literal["nifti", "png", "npy"]
_DESCRIP_BYTES = 80  # NIfTI-1 'descrip' is a fixed 80-byte field


def write_nifti(array: np.ndarray, meta: ImageMeta | None, *, description: str, compress: bool = True) -> bytes:
    """Encode ``array`` as NIfTI bytes in the space of the source image.

    The source's affine and header are kept (so the result overlays the input in any viewer);
    the data type becomes float32, the intensity scaling is reset and ``descrip`` is set to
    ``description``, which should say that the image is synthetic and name the model.
    """
    data = np.asarray(array, dtype=np.float32)
    if meta is not None and meta.header is not None:
        header = meta.header.copy()
        image_class = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
        image = image_class(data, meta.affine, header=header)
    else:
        image = nib.Nifti1Image(data, np.eye(4))
    image.header.set_data_dtype(np.float32)
    image.header.set_slope_inter(1.0, 0.0)
    image.header["descrip"] = description.encode("ascii", "replace")[: _DESCRIP_BYTES - 1]
    raw = image.to_bytes()
    return gzip.compress(raw, compresslevel=6, mtime=0) if compress else raw


def write_png(array: np.ndarray, bit_depth: int = 8, value_range: tuple[float, float] | None = None) -> bytes:
    """Encode a 2D array as a grayscale PNG of 8 or 16 bits.

    ``value_range`` (low, high) maps linearly onto the full integer range, clipping outside it;
    by default the array's own minimum and maximum are used.
    """
    from PIL import Image

    if bit_depth not in (8, 16):
        raise ValueError(f"PNG bit depth must be 8 or 16, got {bit_depth}")
    data = np.asarray(array, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"PNG needs a 2D array, got shape {data.shape}")
    low, high = value_range if value_range is not None else (float(data.min()), float(data.max()))
    top = (1 << bit_depth) - 1
    scaled = np.clip((data - low) / max(high - low, 1e-12), 0.0, 1.0) * top
    pixels = np.rint(scaled).astype(np.uint8 if bit_depth == 8 else np.uint16)
    buffer = io.BytesIO()
    # Pillow writes uint16 arrays as 16-bit grayscale ("I;16").
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def encode_image(
    array: np.ndarray,
    fmt: OutputFormat,
    meta: ImageMeta | None,
    *,
    description: str,
    value_range: tuple[float, float] | None = None,
) -> tuple[bytes, str, str]:
    """Encode ``array`` as ``fmt``; returns ``(bytes, media type, file extension)``."""
    if fmt == "nifti":
        compress = meta.compressed if meta is not None and meta.format == "nifti" else True
        payload = write_nifti(array, meta if meta is not None and meta.format == "nifti" else None,
                              description=description, compress=compress)
        return payload, "application/gzip" if compress else "application/octet-stream", (
            ".nii.gz" if compress else ".nii"
        )
    if fmt == "png":
        bits = meta.bit_depth if meta is not None and meta.bit_depth else 8
        return write_png(array, bits, value_range), "image/png", ".png"
    if fmt == "npy":
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(array, dtype=np.float32))
        return buffer.getvalue(), "application/octet-stream", ".npy"
    raise ValueError(f"unknown output format {fmt!r}; expected nifti, png or npy")
