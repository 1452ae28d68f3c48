"""Reading and writing NIfTI and PNG, and every kind of bad file."""

from __future__ import annotations

import gzip
import io

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from synnet.errors import InvalidImageError
from synnet.imageio import ImageLimits, detect_format, encode_image, read_image, write_nifti, write_png

AFFINE = np.array([[-1.0, 0, 0, 120], [0, -1.0, 0, 119], [0, 0, 1.2, -70], [0, 0, 0, 1]])


def _nifti_bytes(data: np.ndarray, affine: np.ndarray = AFFINE, gz: bool = True) -> bytes:
    raw = nib.Nifti1Image(data, affine).to_bytes()
    return gzip.compress(raw) if gz else raw


def _png_bytes(pixels: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    (Image.fromarray(pixels, mode) if mode else Image.fromarray(pixels)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def volume() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.random((20, 24, 9)) * 1000).astype(np.int16)


@pytest.mark.parametrize("gz", [True, False])
def test_nifti_3d_round_trip_keeps_affine_header_and_dtype(volume: np.ndarray, gz: bool, tmp_path) -> None:
    name = "case_t1.nii.gz" if gz else "case_t1.nii"
    path = tmp_path / name
    path.write_bytes(_nifti_bytes(volume, gz=gz))
    array, meta = read_image(path)
    assert array.dtype == np.float32 and array.shape == (20, 24, 9)
    np.testing.assert_array_equal(array, volume)
    assert meta.format == "nifti" and meta.dtype == "int16" and meta.compressed is gz
    assert meta.original_shape == (20, 24, 9) and meta.filename == name
    np.testing.assert_allclose(meta.affine, AFFINE)

    encoded = write_nifti(array * 0.5, meta, description="synthetic T2 by synnet model t1_to_t2")
    back, back_meta = read_image(encoded, "out.nii.gz")
    np.testing.assert_allclose(back, array * 0.5)
    np.testing.assert_allclose(back_meta.affine, AFFINE)
    assert back_meta.dtype == "float32"
    assert back_meta.header["descrip"].tobytes().startswith(b"synthetic T2 by synnet model t1_to_t2")
    assert back_meta.header.get_zooms() == meta.header.get_zooms()


def test_nifti_2d_and_singleton_4d(volume: np.ndarray) -> None:
    slice_, meta = read_image(_nifti_bytes(volume[:, :, 3]), "slice.nii.gz")
    assert slice_.shape == (20, 24) and meta.original_shape == (20, 24)
    four, meta = read_image(_nifti_bytes(volume[..., None]), "vol4d.nii.gz")
    assert four.shape == (20, 24, 9) and meta.original_shape == (20, 24, 9, 1)


def test_nifti_scaling_is_applied(volume: np.ndarray) -> None:
    image = nib.Nifti1Image(volume, AFFINE)
    image.header.set_slope_inter(2.0, 10.0)
    array, _ = read_image(image.to_bytes(), "scaled.nii")
    np.testing.assert_allclose(array, volume * 2.0 + 10.0)


@pytest.mark.parametrize("bits", [8, 16])
def test_png_grayscale_round_trip(bits: int) -> None:
    rng = np.random.default_rng(1)
    dtype = np.uint8 if bits == 8 else np.uint16
    pixels = rng.integers(0, np.iinfo(dtype).max, (30, 40), dtype=dtype)
    array, meta = read_image(_png_bytes(pixels), "slice.png")
    np.testing.assert_array_equal(array, pixels)
    assert meta.format == "png" and meta.bit_depth == bits and meta.affine is None
    encoded = write_png(array, bits, value_range=(0, np.iinfo(dtype).max))
    again, again_meta = read_image(encoded, "out.png")
    np.testing.assert_array_equal(again, pixels)
    assert again_meta.bit_depth == bits


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_png_grey_saved_as_colour_is_accepted(mode: str) -> None:
    grey = np.arange(30 * 40, dtype=np.uint8).reshape(30, 40)
    channels = [grey, grey, grey] + ([np.full_like(grey, 255)] if mode == "RGBA" else [])
    array, _ = read_image(_png_bytes(np.stack(channels, axis=-1), mode), "grey.png")
    np.testing.assert_array_equal(array, grey)


def test_png_real_colour_is_rejected() -> None:
    rgb = np.zeros((30, 40, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    with pytest.raises(InvalidImageError, match="colour") as info:
        read_image(_png_bytes(rgb), "photo.png")
    assert info.value.code == "colour_image"


def test_format_detection_uses_magic_bytes_first(volume: np.ndarray) -> None:
    assert detect_format(_nifti_bytes(volume), "misnamed.png") == "nifti"
    assert detect_format(_png_bytes(np.zeros((16, 16), np.uint8)), "misnamed.nii") == "png"
    with pytest.raises(InvalidImageError, match="unsupported format") as info:
        detect_format(b"GIF89a" + bytes(100), "scan.gif")
    assert info.value.code == "unsupported_format"


def _bad_header_volume() -> bytes:
    header = nib.Nifti1Header()
    header.set_data_shape((30000, 30000, 30000))
    header.set_data_dtype(np.int16)
    return header.binaryblock + b"\x00" * 4 + b"\x00" * 1000


@pytest.mark.parametrize(
    ("payload", "name", "code"),
    [
        (b"", "empty.nii.gz", "empty_file"),
        (b"\x1f\x8b" + b"garbage" * 30, "corrupt.nii.gz", "corrupt_file"),
        (b"this is not an image at all" * 20, "notes.nii", "corrupt_file"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "broken.png", "corrupt_file"),
        (_bad_header_volume(), "huge.nii", "too_large"),
    ],
)
def test_bad_files_raise_typed_errors(payload: bytes, name: str, code: str) -> None:
    with pytest.raises(InvalidImageError) as info:
        read_image(payload, name)
    assert info.value.code == code
    assert name in str(info.value) or code == "empty_file"


def test_truncated_files(volume: np.ndarray) -> None:
    raw = _nifti_bytes(volume, gz=False)
    with pytest.raises(InvalidImageError, match="truncated") as info:
        read_image(raw[:-100], "cut.nii")
    assert info.value.code == "truncated_file"
    gz = _nifti_bytes(volume, gz=True)
    with pytest.raises(InvalidImageError) as info:
        read_image(gz[: len(gz) // 2], "cut.nii.gz")
    assert info.value.code == "truncated_file"
    png = _png_bytes(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    with pytest.raises(InvalidImageError) as info:
        read_image(png[: len(png) // 2], "cut.png")
    assert info.value.code in ("truncated_file", "corrupt_file")


def test_wrong_dimensions(volume: np.ndarray) -> None:
    with pytest.raises(InvalidImageError, match="4 dimensions") as info:
        read_image(_nifti_bytes(np.stack([volume, volume], axis=-1)), "dwi.nii.gz")
    assert info.value.code == "bad_dimensions"
    with pytest.raises(InvalidImageError, match="too small"):
        read_image(_nifti_bytes(np.ones((4, 4, 4), np.int16)), "tiny.nii.gz")


def test_sizes_over_the_limits_are_refused_before_decoding(volume: np.ndarray) -> None:
    with pytest.raises(InvalidImageError, match="too large") as info:
        read_image(_nifti_bytes(volume), "vol.nii.gz", limits=ImageLimits(max_side=16))
    assert info.value.code == "too_large"
    with pytest.raises(InvalidImageError, match="too large"):
        read_image(_png_bytes(np.zeros((40, 40), np.uint8)), "big.png", limits=ImageLimits(max_voxels=100))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused(volume: np.ndarray, bad: float) -> None:
    data = volume.astype(np.float32)
    data[3, 4, 5] = bad
    with pytest.raises(InvalidImageError, match="NaN or Inf") as info:
        read_image(_nifti_bytes(data), "nan.nii.gz")
    assert info.value.code == "non_finite"


def test_encode_image_formats(volume: np.ndarray) -> None:
    array, meta = read_image(_nifti_bytes(volume, gz=False), "v.nii")
    encoded = encode_image(array, "nifti", meta, description="synthetic")
    assert encoded.extension == ".nii" and read_image(encoded.payload, "x.nii")[0].shape == array.shape
    encoded = encode_image(array, "npy", meta, description="synthetic")
    np.testing.assert_array_equal(np.load(io.BytesIO(encoded.payload)), array)
    encoded = encode_image(array[:, :, 0], "png", None, description="synthetic")
    assert encoded.media_type == "image/png" and read_image(encoded.payload, "x.png")[1].bit_depth == 16
    png_meta = read_image(write_png(array[:, :, 0], 8), "in.png")[1]
    assert read_image(encode_image(array[:, :, 0], "png", png_meta, description="s").payload, "x.png")[1].bit_depth == 8
