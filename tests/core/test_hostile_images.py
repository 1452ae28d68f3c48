"""``read_image`` against hostile files: every one refused with its own code, from the header, cheaply."""

from __future__ import annotations

import gzip
import io
import resource
import time
from collections.abc import Callable

import nibabel as nib
import numpy as np
import pytest
from hostile_corpus import Hostile, bomb, brain, corpus, declared_too_large, gzip_of_zeros, nifti
from PIL import Image
from upload_fuzzing import png_chunks, png_from_chunks

from synnet.errors import InvalidImageError
from synnet.imageio import ImageLimits, encode_image, read_image

CORPUS = corpus()


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_hostile_file_is_refused_with_its_code(case: Hostile) -> None:
    with pytest.raises(InvalidImageError) as info:
        read_image(case.data, case.filename)
    assert info.value.code == case.code, str(info.value)
    assert case.words in str(info.value)


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) + 2 >= 60  # the target, with the two bombs below


# Time limits here are relative to inflating a part of what the file holds, timed in the same test: that
# scales with the machine's speed and load as the reading does (1 ms to read a header against 0.2 s to
# inflate 64 MiB on a 2-core machine under load), and a reader that inflated even that part would fail.
PART = 64 * 1024**2  # 1/32 of the bomb, 1/16 of the padded file's tail


def seconds_to_inflate(n_bytes: int) -> float:
    """The median time of three inflations of ``n_bytes`` of gzipped zeros, in this process, now."""
    data = gzip_of_zeros(b"", n_bytes)
    times = []
    for _ in range(3):
        began = time.perf_counter()
        gzip.decompress(data)
        times.append(time.perf_counter() - began)
    return float(np.median(times))


def fastest_of_three(read: Callable[[], object]) -> float:
    """The shortest of three runs: one preemption of this process does not fail a test, a slow reader does."""
    times = []
    for _ in range(3):
        began = time.perf_counter()
        read()
        times.append(time.perf_counter() - began)
    return min(times)


@pytest.mark.parametrize("build", [bomb, declared_too_large], ids=["2 GiB bomb", "declares 2048x2048x64 float64"])
def test_bombs_are_refused_from_the_header_at_once(build) -> None:
    data = build()
    assert len(data) < 3_000_000
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def refuse() -> InvalidImageError:
        with pytest.raises(InvalidImageError, match="too large") as info:
            read_image(data, "bomb.nii.gz")
        return info.value

    assert refuse().code == "too_large"
    refusing = fastest_of_three(refuse)
    # ru_maxrss is the process's peak (KiB): refusing must not raise it by the declared size.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 64 * 1024
    assert refusing < seconds_to_inflate(PART)


def test_only_the_declared_bytes_are_inflated() -> None:
    """A valid small image followed by 1 GiB of gzipped zeros reads in a blink: the tail is never inflated."""
    image = gzip.decompress(nifti())
    data = gzip_of_zeros(image, 1024**3)
    assert fastest_of_three(lambda: read_image(data, "padded.nii.gz")) < seconds_to_inflate(PART)
    np.testing.assert_array_equal(read_image(data, "padded.nii.gz")[0], read_image(image, "plain.nii")[0])


@pytest.mark.parametrize("code", [-1, 3, 44])
def test_a_datatype_code_nibabel_does_not_know_is_corrupt(code: int) -> None:
    with pytest.raises(InvalidImageError, match="not recognized") as info:
        read_image(nifti(fields={"datatype": code}), "t1.nii.gz")
    assert info.value.code == "corrupt_file"


def test_a_png_without_image_data_is_corrupt() -> None:
    """Found by test_fuzz_decoding: Pillow's verify() raised IndexError on a PNG without IDAT, a 500."""
    buffer = io.BytesIO()
    Image.fromarray(brain((32, 32)).astype(np.uint8)).save(buffer, format="PNG")
    data = png_from_chunks([(kind, payload) for kind, payload in png_chunks(buffer.getvalue()) if kind != b"IDAT"])
    with pytest.raises(InvalidImageError, match="not a readable PNG") as info:
        read_image(data, "t1.png")
    assert info.value.code == "corrupt_file"


def test_multi_member_gzip_is_read_whole() -> None:
    """bgzip and parallel compressors write several gzip members: all of them hold the image."""
    raw = gzip.decompress(nifti())
    data = gzip.compress(raw[:1000], mtime=0) + gzip.compress(raw[1000:], mtime=0)
    np.testing.assert_array_equal(read_image(data, "bgzip.nii.gz")[0], read_image(raw, "plain.nii")[0])


@pytest.mark.parametrize(
    "dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64, np.float32, np.float64]
)
def test_every_real_dtype_converts_to_float32_like_nibabel(dtype: type) -> None:
    data = nifti(brain(), dtype=dtype)
    array, meta = read_image(data, "t1.nii.gz")
    expected = nib.Nifti1Image.from_bytes(gzip.decompress(data)).get_fdata(dtype=np.float32)
    assert array.dtype == np.float32 and meta.dtype == np.dtype(dtype).name
    np.testing.assert_array_equal(array, expected)


def test_scaling_and_big_endian_match_nibabel() -> None:
    image = nib.Nifti1Image(np.rint(brain()).astype(">i2"), np.diag([2.0, 2.0, 3.0, 1.0]))
    image.header.set_slope_inter(0.5, -3.0)
    raw = image.to_bytes()
    array, meta = read_image(raw, "scaled.nii")
    expected = nib.Nifti1Image.from_bytes(raw).get_fdata(dtype=np.float32)
    np.testing.assert_allclose(array, expected, rtol=1e-6)
    np.testing.assert_array_equal(meta.affine, nib.Nifti1Image.from_bytes(raw).affine)
    assert meta.header.get_slope_inter() == (None, None)  # the array carries the scaling


def test_a_bad_affine_never_reaches_an_output() -> None:
    """The header copied onto results is checked field by field: no NaN in the written file."""
    with pytest.raises(InvalidImageError, match="srow_x") as info:
        read_image(nifti(fields={"srow_x": [np.nan, 0, 0, 0]}), "t1.nii.gz")
    assert info.value.code == "bad_header"
    array, meta = read_image(nifti(), "t1.nii.gz")
    written = nib.Nifti1Image.from_bytes(gzip.decompress(encode_image(array, "nifti", meta, description="s").payload))
    assert np.isfinite(written.affine).all() and np.isfinite(written.header["pixdim"]).all()


def test_extensions_travel_with_the_header() -> None:
    image = nib.Nifti1Image(np.rint(brain()).astype(np.int16), np.eye(4))
    image.header.extensions.append(nib.nifti1.Nifti1Extension(6, b"acquired on a phantom"))
    _, meta = read_image(image.to_bytes(), "ext.nii")
    assert [ext.get_content() for ext in meta.header.extensions] == [b"acquired on a phantom"]


def test_limits_on_declared_bytes_and_header_size() -> None:
    data = nifti(brain(), dtype=np.float64)
    with pytest.raises(InvalidImageError, match="bytes of voxel data") as info:
        read_image(data, "t1.nii.gz", limits=ImageLimits(max_data_bytes=1000))
    assert info.value.code == "too_large"
    with pytest.raises(InvalidImageError, match="vox_offset") as info:
        read_image(data, "t1.nii.gz", limits=ImageLimits(max_header_bytes=300))
    assert info.value.code == "bad_header"
