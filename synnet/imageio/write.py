"""Encoding images into the user's format: one encoder per output format, used by every writer.

NIfTI keeps the source's affine and header (so a result overlays its input in any viewer), PNG is
8- or 16-bit grey, npy is float32. Every ``.nii.gz`` the project writes is deflated by
:func:`gzip_bytes` (zlib-ng on two threads: a 36 MB float32 BraTS volume is the largest step of a
request after the network).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np
from zlib_ng import gzip_ng_threaded

from synnet.imageio.meta import ImageMeta

OutputFormat = Literal["nifti", "png", "npy"]
_DESCRIP_BYTES = 80  # NIfTI-1 'descrip' is a fixed 80-byte field
# zlib level of written .nii.gz: level 1 made a synthesized volume 4 % larger than level 6 and 1.3× faster.
DEFAULT_GZIP_LEVEL = 1
GZIP_THREADS = 2
# PNG depth of a result whose input was not a PNG: 16 bits keep the model's precision.
PNG_BITS_FOR_NON_PNG_INPUT = 16


def gzip_bytes(raw: bytes, level: int = DEFAULT_GZIP_LEVEL, threads: int = GZIP_THREADS) -> bytes:
    """``raw`` as a gzip file, deflated by zlib-ng on up to ``threads`` threads."""
    if not 0 <= level <= 9:
        raise ValueError(f"gzip level must be 0 to 9, got {level}")
    buffer = io.BytesIO()
    with gzip_ng_threaded.open(buffer, "wb", compresslevel=level, threads=threads) as handle:
        handle.write(raw)
    return buffer.getvalue()


def write_nifti(
    array: np.ndarray,
    meta: ImageMeta | None,
    *,
    description: str,
    compress: bool = True,
    gzip_level: int = DEFAULT_GZIP_LEVEL,
) -> bytes:
    """Encode ``array`` as NIfTI bytes in the space of the source image.

    The source's affine and header are kept (when ``meta`` is a NIfTI's); the data type becomes
    float32, the intensity scaling is reset and ``descrip`` is set to ``description``, which
    should say that the image is synthetic and name the model.
    """
    data = np.asarray(array, dtype=np.float32)
    if meta is not None and meta.header is not None:
        header = meta.header.copy()
        image_class = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
        image = image_class(data, meta.affine, header=header)
    else:
        image = nib.Nifti1Image(data, np.eye(4) if meta is None or meta.affine is None else meta.affine)
    image.header.set_data_dtype(np.float32)
    image.header.set_slope_inter(1.0, 0.0)
    image.header["descrip"] = description.encode("ascii", "replace")[: _DESCRIP_BYTES - 1]
    raw = image.to_bytes()
    return gzip_bytes(raw, gzip_level) if compress else raw


def save_nifti(image: nib.Nifti1Image, path: str | Path, gzip_level: int = DEFAULT_GZIP_LEVEL) -> Path:
    """Write a nibabel image to ``path`` (``.nii.gz`` through :func:`gzip_bytes`, ``.nii`` as is)."""
    path = Path(path)
    raw = image.to_bytes()
    path.write_bytes(gzip_bytes(raw, gzip_level) if path.name.endswith(".gz") else raw)
    return path


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


def write_npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array, dtype=np.float32))
    return buffer.getvalue()


@dataclass(frozen=True)
class EncodedImage:
    payload: bytes
    media_type: str
    extension: str


def encode_image(
    array: np.ndarray,
    fmt: OutputFormat,
    meta: ImageMeta | None,
    *,
    description: str,
    value_range: tuple[float, float] | None = None,
    gzip_level: int = DEFAULT_GZIP_LEVEL,
    compress: bool | None = None,
) -> EncodedImage:
    """Encode ``array`` as ``fmt``, following the source image ``meta`` where it has a say.

    NIfTI takes the source NIfTI's header, affine and compression (gzip for any other source)
    unless ``compress`` says otherwise; PNG takes the source PNG's bit depth (16 bits otherwise)
    and maps ``value_range`` onto it.
    """
    if fmt == "nifti":
        nifti_meta = meta if meta is not None and meta.format == "nifti" else None
        if compress is None:
            compress = nifti_meta.compressed if nifti_meta is not None else True
        payload = write_nifti(array, nifti_meta, description=description, compress=compress, gzip_level=gzip_level)
        if compress:
            return EncodedImage(payload, "application/gzip", ".nii.gz")
        return EncodedImage(payload, "application/octet-stream", ".nii")
    if fmt == "png":
        from_png = meta is not None and meta.format == "png" and meta.bit_depth
        bits = meta.bit_depth if from_png else PNG_BITS_FOR_NON_PNG_INPUT  # type: ignore[union-attr]
        return EncodedImage(write_png(array, bits, value_range), "image/png", ".png")
    if fmt == "npy":
        return EncodedImage(write_npy(array), "application/octet-stream", ".npy")
    raise ValueError(f"unknown output format {fmt!r}; expected nifti, png or npy")
