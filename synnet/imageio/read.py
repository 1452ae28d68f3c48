"""Decoding uploaded or on-disk images into ``(float32 array, ImageMeta)``."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image, UnidentifiedImageError

from synnet.errors import InvalidImageError
from synnet.imageio.limits import ImageLimits
from synnet.imageio.meta import ImageFormat, ImageMeta

_GZIP_MAGIC = b"\x1f\x8b"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_NIFTI1_HEADER = 348
_NIFTI2_HEADER = 540


def detect_format(data: bytes, filename: str | None = None) -> ImageFormat:
    """Tell NIfTI from PNG by the file's first bytes, falling back on its extension."""
    if data.startswith(_PNG_MAGIC):
        return "png"
    if data.startswith(_GZIP_MAGIC) or _looks_like_nifti_header(data):
        return "nifti"
    name = (filename or "").lower()
    if name.endswith((".nii", ".nii.gz")):
        return "nifti"
    if name.endswith(".png"):
        return "png"
    raise InvalidImageError(
        f"unsupported format for {filename or 'upload'}: expected NIfTI (.nii, .nii.gz) or PNG",
        code="unsupported_format",
    )


def read_image(
    source: bytes | str | Path,
    filename: str | None = None,
    *,
    limits: ImageLimits | None = None,
) -> tuple[np.ndarray, ImageMeta]:
    """Read a NIfTI or PNG image.

    Args:
        source: the file's bytes, or a path to it.
        filename: the name to report in errors and to guess the format from (defaults to the path).
        limits: size bounds checked from the header before decoding pixels.

    Returns:
        ``(array, meta)``: a float32 array of shape (H, W) or (X, Y, Z) with a singleton 4th
        NIfTI axis removed, and its :class:`ImageMeta`.

    Raises:
        InvalidImageError: empty, corrupt or truncated files, unsupported formats, the wrong
            number of dimensions, NaN/Inf values or absurd sizes, each with its own ``code``.
    """
    if isinstance(source, (str, Path)):
        filename = filename or Path(source).name
        source = Path(source).read_bytes()
    limits = limits or ImageLimits()
    label = filename or "upload"
    if len(source) == 0:
        raise InvalidImageError(f"{label} is empty", code="empty_file")
    fmt = detect_format(source, filename)
    if fmt == "png":
        array, meta = _read_png(source, label, limits)
    else:
        array, meta = _read_nifti(source, label, limits)
    meta.filename = filename
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise InvalidImageError(f"{label} contains {bad} NaN or Inf values", code="non_finite")
    return array, meta


def _looks_like_nifti_header(data: bytes) -> bool:
    if len(data) < 4:
        return False
    size_le = int.from_bytes(data[:4], "little")
    size_be = int.from_bytes(data[:4], "big")
    return size_le in (_NIFTI1_HEADER, _NIFTI2_HEADER) or size_be in (_NIFTI1_HEADER, _NIFTI2_HEADER)


def _check_shape(shape: tuple[int, ...], label: str, limits: ImageLimits, allowed_ndim: tuple[int, ...]) -> None:
    if len(shape) not in allowed_ndim:
        raise InvalidImageError(
            f"{label} has {len(shape)} dimensions {tuple(shape)}; expected a 2D image or a 3D volume",
            code="bad_dimensions",
        )
    if any(side < 1 for side in shape):
        raise InvalidImageError(f"{label} has an empty axis: shape {tuple(shape)}", code="bad_dimensions")
    in_plane = shape[:2]
    if any(side > limits.max_side for side in shape) or int(np.prod(shape, dtype=np.int64)) > limits.max_voxels:
        raise InvalidImageError(
            f"{label} is too large: shape {tuple(shape)} exceeds {limits.max_side} per side "
            f"or {limits.max_voxels} voxels",
            code="too_large",
        )
    if any(side < limits.min_side for side in in_plane):
        raise InvalidImageError(
            f"{label} is too small: in-plane shape {tuple(in_plane)} is under {limits.min_side} pixels",
            code="bad_dimensions",
        )


def _gunzip_bounded(data: bytes, max_bytes: int, label: str) -> bytes:
    """Decompress at most ``max_bytes`` + 1 bytes, so a gzip bomb cannot exhaust memory."""
    try:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        out = inflater.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise InvalidImageError(f"{label} is not a valid gzip file: {exc}", code="corrupt_file") from None
    if len(out) > max_bytes:
        raise InvalidImageError(f"{label} decompresses to more than {max_bytes} bytes", code="too_large")
    if not inflater.eof and len(out) < max_bytes:
        raise InvalidImageError(f"{label} is truncated: the gzip stream ends early", code="truncated_file")
    return out


def _nifti_class(raw: bytes) -> type[nib.Nifti1Image] | type[nib.Nifti2Image] | None:
    for byteorder in ("little", "big"):
        size = int.from_bytes(raw[:4], byteorder)
        if size == _NIFTI1_HEADER:
            return nib.Nifti1Image
        if size == _NIFTI2_HEADER:
            return nib.Nifti2Image
    return None


def _read_nifti(data: bytes, label: str, limits: ImageLimits) -> tuple[np.ndarray, ImageMeta]:
    compressed = data.startswith(_GZIP_MAGIC)
    # Worst case float64: bound what we are willing to inflate by the voxel limit.
    raw = _gunzip_bounded(data, limits.max_voxels * 8 + 1024, label) if compressed else data
    image_class = _nifti_class(raw) if len(raw) >= 4 else None
    if image_class is None or len(raw) < _NIFTI1_HEADER:
        raise InvalidImageError(f"{label} is not a NIfTI file: bad header", code="corrupt_file")
    try:
        header = image_class.header_class.from_fileobj(io.BytesIO(raw), check=True)
        shape = tuple(int(s) for s in header.get_data_shape())
        dtype = header.get_data_dtype()
    except Exception as exc:  # nibabel raises several types for a bad header
        raise InvalidImageError(f"{label} has a corrupt NIfTI header: {exc}", code="corrupt_file") from None
    data_shape = shape[:3] if len(shape) == 4 and shape[3] == 1 else shape
    _check_shape(data_shape, label, limits, allowed_ndim=(2, 3))
    expected = int(header.get_data_offset()) + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) < expected:
        raise InvalidImageError(
            f"{label} is truncated: {len(raw)} bytes, the header promises {expected}", code="truncated_file"
        )
    try:
        image = image_class.from_bytes(raw)
        array = np.asarray(image.get_fdata(dtype=np.float32)).reshape(data_shape)
    except Exception as exc:
        raise InvalidImageError(f"{label} could not be decoded: {exc}", code="corrupt_file") from None
    meta = ImageMeta(
        format="nifti",
        original_shape=shape,
        dtype=str(dtype),
        affine=np.asarray(image.affine, dtype=np.float64),
        header=image.header.copy(),
        compressed=compressed,
    )
    return array, meta


def _read_png(data: bytes, label: str, limits: ImageLimits) -> tuple[np.ndarray, ImageMeta]:
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
            _check_shape((height, width), label, limits, allowed_ndim=(2,))
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            mode = image.mode
            if mode == "P":
                image = image.convert("RGBA" if "transparency" in image.info else "RGB")
                mode = image.mode
            pixels = np.asarray(image)
    except InvalidImageError:
        raise
    except (UnidentifiedImageError, SyntaxError) as exc:
        raise InvalidImageError(f"{label} is not a readable PNG: {exc}", code="corrupt_file") from None
    except (OSError, ValueError, EOFError, zlib.error) as exc:
        truncated = "truncated" in str(exc).lower() or isinstance(exc, EOFError)
        code = "truncated_file" if truncated else "corrupt_file"
        raise InvalidImageError(f"{label} is a damaged PNG: {exc}", code=code) from None
    except Image.DecompressionBombError as exc:
        raise InvalidImageError(f"{label} is too large: {exc}", code="too_large") from None
    bit_depth = 16 if mode.startswith("I") else 8
    if pixels.ndim == 3:
        pixels = _gray_from_channels(pixels, mode, label)
    meta = ImageMeta(format="png", original_shape=tuple(pixels.shape), dtype=str(pixels.dtype), bit_depth=bit_depth)
    return pixels.astype(np.float32), meta


def _gray_from_channels(pixels: np.ndarray, mode: str, label: str) -> np.ndarray:
    """Accept RGB/RGBA/LA only when the colour channels are equal (a grey image saved as colour)."""
    colour = pixels[..., :1] if mode == "LA" else pixels[..., :3]
    if colour.shape[-1] == 3 and not (
        np.array_equal(colour[..., 0], colour[..., 1]) and np.array_equal(colour[..., 0], colour[..., 2])
    ):
        raise InvalidImageError(
            f"{label} is a colour image ({mode}); MR images must be grayscale", code="colour_image"
        )
    return colour[..., 0]

