"""Decoding uploaded or on-disk images into ``(float32 array, ImageMeta)``.

Hostile files are refused from what they declare, before their pixels cost memory: a NIfTI's
header is inflated and checked first (sizes against :class:`ImageLimits`, every float field
finite, a data type that converts to float32), and then at most ``vox_offset + voxels x
itemsize`` bytes are inflated; a PNG must be a PNG by its bytes, not only by its name.
"""

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
_EXTENSION_FLAG = 4  # the 4 bytes between a single-file header and its extensions or data
# Inflated per zlib call once the output buffer is allocated: bounds the transient copy.
_INFLATE_CHUNK = 16 * 1024 * 1024
# Named in the 415 of a file that is not what its name says.
_OTHER_IMAGE_MAGIC = {
    b"\xff\xd8\xff": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"BM": "BMP",
    b"RIFF": "RIFF (WebP?)",
}
# On-disk NIfTI types converted to float32; every other (complex, RGB, binary, float128) is refused.
_CONVERTIBLE_KINDS = "iuf"
_MAX_ITEMSIZE = 8
# Float header fields that must be finite: a NaN or Inf in them would end up in the affine or
# the intensities, and in the header copied onto every result.
_FINITE_FIELDS = ("pixdim", "quatern_b", "quatern_c", "quatern_d", "qoffset_x", "qoffset_y", "qoffset_z",
                  "srow_x", "srow_y", "srow_z")  # fmt: skip


def detect_format(data: bytes, filename: str | None = None) -> ImageFormat:
    """Tell NIfTI from PNG by the file's first bytes, falling back on a NIfTI extension.

    A file named ``.png`` must hold PNG bytes: Pillow would otherwise decode JPEG, TIFF or GIF
    bytes under that name.

    Raises:
        InvalidImageError: ``unsupported_format`` for anything that is neither.
    """
    if data.startswith(_PNG_MAGIC):
        return "png"
    if data.startswith(_GZIP_MAGIC) or _looks_like_nifti_header(data):
        return "nifti"
    name = (filename or "").lower()
    if name.endswith((".nii", ".nii.gz")):
        return "nifti"
    found = next((kind for magic, kind in _OTHER_IMAGE_MAGIC.items() if data.startswith(magic)), None)
    what = f"its bytes are {found}" if found else "its bytes are neither"
    raise InvalidImageError(
        f"unsupported format for {filename or 'upload'}: expected NIfTI (.nii, .nii.gz) or PNG, {what}",
        code="unsupported_format",
    )


def read_image(
    source: bytes | str | Path,
    filename: str | None = None,
    *,
    limits: ImageLimits | None = None,
) -> tuple[np.ndarray, ImageMeta]:
    """Read a NIfTI or PNG image.

    NIfTI data of any integer or real type (int8 to uint64, float32, float64) is converted to
    float32 after ``scl_slope``/``scl_inter`` (a NaN or zero slope means no scaling, as in
    nibabel); complex, RGB and other types are refused.

    Args:
        source: the file's bytes, or a path to it.
        filename: the name to report in errors and to guess the format from (defaults to the path).
        limits: size bounds checked from the header before decoding pixels.

    Returns:
        ``(array, meta)``: a float32 array of shape (H, W) or (X, Y, Z) with a singleton 4th
        NIfTI axis removed, and its :class:`ImageMeta`.

    Raises:
        InvalidImageError: empty, corrupt or truncated files, unsupported formats or data types,
            non-finite header fields (``bad_header``, naming the field), the wrong number of
            dimensions, NaN/Inf values or absurd sizes, each with its own ``code``.
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


def declared_bytes(data: bytes, limits: ImageLimits | None = None) -> int | None:
    """The memory reading ``data`` takes by its header alone, before any pixel is inflated.

    NIfTI: ``vox_offset + voxels x itemsize`` (the bytes inflated) plus ``4 x voxels`` (the float32
    image); PNG: the decoded pixels plus ``4 x pixels``. None for a file whose header cannot be read
    or whose sizes exceed ``limits``: :func:`read_image` refuses it from that header, at no cost.
    """
    limits = limits or ImageLimits()
    if data.startswith(_PNG_MAGIC):
        if len(data) < 33 or data[12:16] != b"IHDR":
            return None
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        bits, colour = data[24], data[25]
        channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour, 4)
        pixels = width * height
        if pixels > limits.max_voxels or max(width, height) > limits.max_side:
            return None
        return pixels * (channels * max(bits, 8) // 8) + 4 * pixels
    try:
        if data.startswith(_GZIP_MAGIC):
            first = bytearray(_NIFTI2_HEADER)
            head = bytes(first[: _Inflater(data, "upload").read_into(first)])
        else:
            head = data[:_NIFTI2_HEADER]
        image_class = _nifti_class(head)
        if image_class is None or len(head) < image_class.header_class.template_dtype.itemsize:
            return None
        header = _header_from(head[: image_class.header_class.template_dtype.itemsize], image_class, "", check=False)
        offset = float(header["vox_offset"])
        shape = tuple(int(s) for s in header.get_data_shape())
        itemsize = header.get_data_dtype().itemsize
    # KeyError: a datatype code nibabel does not know, which the reader refuses (corrupt_file).
    except (InvalidImageError, ValueError, TypeError, OverflowError, KeyError):
        return None
    voxels = _count(shape)
    if not 0 <= offset <= limits.max_header_bytes or any(side < 1 for side in shape) or voxels > limits.max_voxels:
        return None
    if voxels * itemsize > limits.max_data_bytes:
        return None
    return int(offset) + voxels * itemsize + 4 * voxels


def _looks_like_nifti_header(data: bytes) -> bool:
    return _nifti_class(data) is not None


def _check_shape(shape: tuple[int, ...], label: str, limits: ImageLimits, allowed_ndim: tuple[int, ...]) -> None:
    if len(shape) not in allowed_ndim:
        raise InvalidImageError(
            f"{label} has {len(shape)} dimensions {tuple(shape)}; expected a 2D image or a 3D volume",
            code="bad_dimensions",
        )
    if any(side < 1 for side in shape):
        raise InvalidImageError(f"{label} has an empty axis: shape {tuple(shape)}", code="bad_dimensions")
    in_plane = shape[:2]
    if any(side > limits.max_side for side in shape) or _count(shape) > limits.max_voxels:
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


def _count(shape: tuple[int, ...]) -> int:
    count = 1
    for side in shape:  # Python ints: a hostile shape cannot overflow
        count *= side
    return count


class _Inflater:
    """A gzip stream inflated on demand, so that only what the header declares is ever inflated."""

    def __init__(self, data: bytes, label: str) -> None:
        self._label = label
        self._zlib = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        self._pending = data

    def read_into(self, out: bytearray | memoryview) -> int:
        """Fill ``out`` from the stream; returns how many bytes it held (fewer when the stream ends)."""
        view, filled = memoryview(out), 0
        while filled < len(view):
            if self._zlib.eof:
                rest = self._zlib.unused_data
                if not rest.startswith(_GZIP_MAGIC):
                    break  # the end, or trailing bytes that are no further gzip member
                self._zlib, self._pending = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS), rest
            if not self._pending:
                break  # the input ends inside a member: truncated
            try:
                chunk = self._zlib.decompress(self._pending, min(len(view) - filled, _INFLATE_CHUNK))
            except zlib.error as exc:
                raise InvalidImageError(f"{self._label} is not a valid gzip file: {exc}", code="corrupt_file") from None
            self._pending = self._zlib.unconsumed_tail
            view[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
        return filled


def _nifti_class(raw: bytes) -> type[nib.Nifti1Image] | type[nib.Nifti2Image] | None:
    if len(raw) < 4:
        return None
    for byteorder in ("little", "big"):
        size = int.from_bytes(raw[:4], byteorder)
        if size == _NIFTI1_HEADER:
            return nib.Nifti1Image
        if size == _NIFTI2_HEADER:
            return nib.Nifti2Image
    return None


def _header_from(block: bytes, image_class: type[nib.Nifti1Image], label: str, *, check: bool) -> nib.Nifti1Header:
    try:
        return image_class.header_class.from_fileobj(io.BytesIO(block), check=check)
    except Exception as exc:  # nibabel raises several types for a bad header
        raise InvalidImageError(f"{label} has a corrupt NIfTI header: {exc}", code="corrupt_file") from None


def _bad_field(label: str, field: str, value: object, why: str) -> InvalidImageError:
    return InvalidImageError(f"{label} has an invalid NIfTI header: {field} is {value}; {why}", code="bad_header")


def _check_fields(header: nib.Nifti1Header, label: str, limits: ImageLimits) -> None:
    """Every float field finite, scaling usable, vox_offset within the header limit."""
    offset, first = float(header["vox_offset"]), header.template_dtype.itemsize + _EXTENSION_FLAG
    # 0 is a common writers' slip that nibabel reads as "right after the header".
    if not (offset == 0 or first <= offset <= limits.max_header_bytes):  # NaN fails every comparison
        raise _bad_field(label, "vox_offset", offset, f"expected {first} to {limits.max_header_bytes} bytes")
    for field in _FINITE_FIELDS:
        values = np.atleast_1d(np.asarray(header[field], dtype=np.float64))
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            name = f"{field}[{bad[0]}]" if values.size > 1 else field
            raise _bad_field(label, name, values[bad[0]], "header fields must be finite")
    slope, inter = float(header["scl_slope"]), float(header["scl_inter"])
    # NaN or 0 slope means "no scaling" (nibabel writes NaN); an infinity never means anything.
    if np.isinf(slope):
        raise _bad_field(label, "scl_slope", slope, "expected a finite slope, or 0/NaN for no scaling")
    scaled = np.isfinite(slope) and slope != 0
    if np.isinf(inter) or (scaled and not np.isfinite(inter)):
        raise _bad_field(label, "scl_inter", inter, "expected a finite intercept")


def _check_dtype(dtype: np.dtype, label: str) -> None:
    if dtype.kind not in _CONVERTIBLE_KINDS or dtype.itemsize > _MAX_ITEMSIZE:
        what = "complex" if dtype.kind == "c" else str(dtype)
        raise InvalidImageError(
            f"{label} holds {what} data; expected integers or real floats (up to 64 bits), converted to float32",
            code="unsupported_dtype",
        )


def _read_nifti(data: bytes, label: str, limits: ImageLimits) -> tuple[np.ndarray, ImageMeta]:
    compressed = data.startswith(_GZIP_MAGIC)
    inflater = _Inflater(data, label) if compressed else None
    if inflater is not None:
        first = bytearray(_NIFTI2_HEADER + _EXTENSION_FLAG)
        head = bytes(first[: inflater.read_into(first)])
    else:
        head = data[: _NIFTI2_HEADER + _EXTENSION_FLAG]
    image_class = _nifti_class(head)
    if image_class is None or len(head) < _NIFTI1_HEADER:
        raise InvalidImageError(f"{label} is not a NIfTI file: bad header", code="corrupt_file")
    size = image_class.header_class.template_dtype.itemsize
    _check_fields(_header_from(head[:size], image_class, label, check=False), label, limits)
    header = _header_from(head[:size], image_class, label, check=True)  # nibabel's own checks and fixes
    shape = tuple(int(s) for s in header.get_data_shape())
    data_shape = shape[:3] if len(shape) == 4 and shape[3] == 1 else shape
    _check_shape(data_shape, label, limits, allowed_ndim=(2, 3))
    dtype = header.get_data_dtype()
    _check_dtype(dtype, label)
    offset = int(header.get_data_offset())
    if offset < size + _EXTENSION_FLAG:
        raise _bad_field(label, "vox_offset", offset, f"the data cannot start inside the {size}-byte header")
    voxels = _count(data_shape)
    data_bytes = voxels * dtype.itemsize
    if data_bytes > limits.max_data_bytes:
        raise InvalidImageError(
            f"{label} is too large: shape {data_shape} of {dtype} declares {data_bytes} bytes of voxel data, "
            f"over the limit of {limits.max_data_bytes}",
            code="too_large",
        )
    expected = offset + data_bytes
    if inflater is not None:
        raw: bytes | bytearray = bytearray(expected)  # the one buffer the image is inflated into
        known = min(len(head), expected)
        raw[:known] = head[:known]
        got = known + inflater.read_into(memoryview(raw)[known:])
    else:
        raw, got = data, len(data)
    if got < expected:
        raise InvalidImageError(
            f"{label} is truncated: {got} bytes, the header promises {expected}", code="truncated_file"
        )
    header = _header_from(bytes(memoryview(raw)[:offset]), image_class, label, check=True)  # with extensions
    affine = np.asarray(header.get_best_affine(), dtype=np.float64)
    if not np.isfinite(affine).all():
        raise _bad_field(label, "affine", affine.tolist(), "the voxel-to-world matrix must be finite")
    array = _decode(raw, offset, dtype, data_shape, header)
    del raw
    header.set_slope_inter(None, None)  # the array is scaled already; results are written unscaled
    meta = ImageMeta(
        format="nifti", original_shape=shape, dtype=str(dtype), affine=affine, header=header, compressed=compressed
    )
    return array, meta


def _decode(
    raw: bytes | bytearray, offset: int, dtype: np.dtype, shape: tuple[int, ...], header: nib.Nifti1Header
) -> np.ndarray:
    """The voxels as float32 (X, Y[, Z]), scaled by scl_slope/scl_inter: one float32 copy, no other."""
    stored = np.frombuffer(raw, dtype=dtype, count=_count(shape), offset=offset).reshape(shape, order="F")
    array = stored.astype(np.float32)
    slope, inter = header.get_slope_inter()
    if slope is not None and (slope, inter) != (1.0, 0.0):
        with np.errstate(over="ignore", invalid="ignore"):  # overflow to Inf is reported as non_finite
            array *= np.float32(slope)
            array += np.float32(inter)
    return array


def _read_png(data: bytes, label: str, limits: ImageLimits) -> tuple[np.ndarray, ImageMeta]:
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as probe:
            width, height = probe.size
            _check_shape((height, width), label, limits, allowed_ndim=(2,))
            probe.verify()
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            image.load()
            mode = image.mode
            if mode == "P":
                image = image.convert("RGBA" if "transparency" in image.info else "RGB")
                mode = image.mode
            pixels = np.asarray(image)
    except InvalidImageError:
        raise
    # IndexError: Pillow's verify() of a PNG without an IDAT chunk (no image data at all).
    except (UnidentifiedImageError, SyntaxError, IndexError) as exc:
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
        raise InvalidImageError(f"{label} is a colour image ({mode}); MR images must be grayscale", code="colour_image")
    return colour[..., 0]
