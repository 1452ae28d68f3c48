"""Hostile image files, generated: absurd or non-finite NIfTI headers, gzip bombs, other formats named .png.

``corpus()`` lists every case with the error code the reader must answer; the tests feed them to
``read_image`` and to the service. Run as a script to measure what refusing the two bombs costs
(time and peak RSS of a fresh process), e.g. against an older ``synnet`` on ``PYTHONPATH``::

    python tests/hostile_corpus.py
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image

GIB = 1024**3


@dataclass(frozen=True)
class Hostile:
    """One hostile file, the name it is sent under, and the error ``code`` it must get."""

    id: str
    filename: str
    data: bytes
    code: str
    words: str = ""  # what the error detail must contain, e.g. the field's name


def brain(shape: tuple[int, ...] = (32, 32, 6), seed: int = 0) -> np.ndarray:
    """A bright disc in a zero background on every slice: a valid image the service accepts."""
    axes = np.meshgrid(*[np.linspace(-1, 1, side) for side in shape], indexing="ij")
    inside = axes[0] ** 2 + axes[1] ** 2 < 0.5
    rng = np.random.default_rng(seed)
    return np.where(inside, 100 + 20 * rng.random(shape), 0).astype(np.float32)


def nifti(
    array: np.ndarray | None = None,
    *,
    dtype: type | str = np.int16,
    fields: dict[str, object] | None = None,
    compress: bool = True,
) -> bytes:
    """A real NIfTI-1 file of ``array`` (default :func:`brain`), with header ``fields`` overwritten after encoding."""
    array = brain() if array is None else array
    image = nib.Nifti1Image(np.asarray(array).astype(dtype), np.eye(4), dtype=dtype)
    image.header.set_sform(np.eye(4), code=1)
    raw = bytearray(image.to_bytes())
    if fields:
        header = nib.Nifti1Header.from_fileobj(io.BytesIO(bytes(raw[:348])), check=False)
        for name, value in fields.items():
            header[name] = value
        raw[:348] = header.binaryblock
    return gzip.compress(bytes(raw), mtime=0) if compress else bytes(raw)


def nifti2(fields: dict[str, object]) -> bytes:
    """A real NIfTI-2 .nii.gz of :func:`brain` (int16), with header ``fields`` overwritten after encoding."""
    raw = bytearray(nib.Nifti2Image(np.rint(brain()).astype(np.int16), np.eye(4)).to_bytes())
    header = nib.Nifti2Header.from_fileobj(io.BytesIO(bytes(raw[:540])), check=False)
    for name, value in fields.items():
        header[name] = value
    raw[:540] = header.binaryblock
    return gzip.compress(bytes(raw), mtime=0)


def declared_header(shape: tuple[int, ...], dtype: type, vox_offset: int = 352) -> bytes:
    """The 352 bytes of a single-file NIfTI-1 header (and extension flag) that claims ``shape`` of ``dtype``."""
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header["vox_offset"] = vox_offset
    header["magic"] = b"n+1"
    return header.binaryblock + b"\x00" * 4


def gzip_of_zeros(prefix: bytes, zeros: int, chunk: int = 1 << 24) -> bytes:
    """A valid gzip file of ``prefix`` then ``zeros`` zero bytes, built in seconds whatever its size.

    Each full flush resets the compressor's window, so the deflate blocks of one zero chunk can be
    repeated as they are; only the CRC has to run over the whole inflated size.
    """
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = [deflate.compress(prefix), deflate.flush(zlib.Z_FULL_FLUSH)]
    block = bytes(chunk)
    repeated = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    count, rest = divmod(zeros, chunk)
    crc = zlib.crc32(prefix)
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    body += [repeated] * count
    body += [deflate.compress(bytes(rest)), deflate.flush(zlib.Z_FINISH)]
    crc = zlib.crc32(bytes(rest), crc)
    size = (len(prefix) + zeros) % 2**32
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + b"".join(body) + struct.pack("<II", crc, size)


def declared_too_large() -> bytes:
    """2 MB of gzip whose header claims 2048x2048x64 float64 (2 GiB of voxel data)."""
    return gzip_of_zeros(declared_header((2048, 2048, 64), np.float64), 2 * 1024**2 * 500)


def bomb() -> bytes:
    """A .nii.gz of about 2 MB that inflates to 2 GiB: a 1024x1024x2048 uint8 volume of zeros."""
    return gzip_of_zeros(declared_header((1024, 1024, 2048), np.uint8), 2 * GIB - 352)


def largest_admitted() -> bytes:
    """The largest volume the default limits admit, 512x512x256 float32 (256 MiB of zeros), in 0.3 MB of gzip."""
    return gzip_of_zeros(declared_header((512, 512, 256), np.float32), 256 * 1024**2)


def _picture(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((brain((32, 32)) * 2).astype(np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


def _rgb24() -> bytes:
    header = nib.Nifti1Header()
    header.set_data_shape((16, 16, 2))
    header.set_data_dtype("RGB")
    header["vox_offset"] = 352
    return gzip.compress(header.binaryblock + bytes(4) + bytes(16 * 16 * 2 * 3), mtime=0)


def _pixdim(index: int, value: float) -> list[float]:
    pixdim = [1.0] * 8
    pixdim[index] = value
    return pixdim


def _row(value: float) -> list[float]:
    return [value, 0.0, 0.0, 0.0]


def corpus() -> list[Hostile]:
    """Every hostile case but the two bombs (which take a second or two each to build)."""
    nan, inf = float("nan"), float("inf")
    cases: list[Hostile] = []

    def add(id: str, data: bytes, code: str, words: str, filename: str = "t1.nii.gz") -> None:
        cases.append(Hostile(id, filename, data, code, words))

    for value in (nan, inf, -inf, -1.0, 200.0, 1e12):
        add(f"vox_offset={value}", nifti(fields={"vox_offset": value}), "bad_header", "vox_offset")
    for field in ("scl_slope", "scl_inter"):
        for value in (inf, -inf):
            add(f"{field}={value}", nifti(fields={field: value}), "bad_header", field)
    add("scl_inter=nan with a slope", nifti(fields={"scl_slope": 2.0, "scl_inter": nan}), "bad_header", "scl_inter")
    add("slope overflows float32", nifti(fields={"scl_slope": 1e38, "scl_inter": 0.0}), "non_finite", "NaN or Inf")
    for index in (0, 1, 2, 3):
        for value in (nan, inf):
            add(f"pixdim[{index}]={value}", nifti(fields={"pixdim": _pixdim(index, value)}), "bad_header",
                f"pixdim[{index}]")  # fmt: skip
    for field in ("srow_x", "srow_y", "srow_z"):
        for value in (nan, -inf):
            add(f"{field}={value}", nifti(fields={field: _row(value)}), "bad_header", f"{field}[0]")
    for field in ("quatern_b", "quatern_c", "quatern_d", "qoffset_x", "qoffset_y", "qoffset_z"):
        add(f"{field}=nan", nifti(fields={field: nan, "qform_code": 1}), "bad_header", field)
    for dtype in (np.complex64, np.complex128):
        add(f"{np.dtype(dtype).name} data", nifti(brain() * (1 + 1j), dtype=dtype), "unsupported_dtype", "complex")
    add("RGB24 data", _rgb24(), "unsupported_dtype", "float32")
    for code in (0, 1, 1536, 2048):  # none, binary, float128, complex256: nibabel reads none of them here
        add(f"datatype code {code}", nifti(fields={"datatype": code}), "corrupt_file", "not supported")
    add("vox_offset=nan, uncompressed", nifti(fields={"vox_offset": nan}, compress=False), "bad_header", "vox_offset",
        "t1.nii")  # fmt: skip
    add("srow_z=inf, uncompressed", nifti(fields={"srow_z": _row(inf)}, compress=False), "bad_header", "srow_z",
        "t1.nii")  # fmt: skip
    add("complex64, uncompressed", nifti(brain() * 1j, dtype=np.complex64, compress=False), "unsupported_dtype",
        "complex", "t1.nii")  # fmt: skip
    for value in (-1, 2**40):
        add(f"NIfTI-2 vox_offset={value}", nifti2({"vox_offset": value}), "bad_header", "vox_offset")
    add("NIfTI-2 pixdim[2]=nan", nifti2({"pixdim": _pixdim(2, nan)}), "bad_header", "pixdim[2]")
    add("NIfTI-2 scl_slope=inf", nifti2({"scl_slope": inf}), "bad_header", "scl_slope")
    huge = {"dim": [3, 2048, 2048, 64, 1, 1, 1, 1], "datatype": 64, "bitpix": 64}
    add("NIfTI-2 declares 2048x2048x64 float64", nifti2(huge), "too_large", "too large")
    for shape, dtype in [((2048, 2048, 64), np.float64), ((4096, 16, 16), np.int16),
                         ((1024, 1024, 512), np.uint8), ((512, 512, 256), np.float64)]:  # fmt: skip
        declared = gzip.compress(declared_header(shape, dtype) + bytes(4096), mtime=0)
        add(f"declares {shape} {np.dtype(dtype).name}", declared, "too_large", "too large")
    short = gzip.compress(declared_header((256, 256, 128), np.float32) + bytes(4096), mtime=0)
    add("declares more than it holds", short, "truncated_file", "truncated")
    add("negative dim", nifti(fields={"dim": [3, -32, 32, 6, 1, 1, 1, 1]}), "bad_dimensions", "empty axis")
    add("dim[0]=0", nifti(fields={"dim": [0, 32, 32, 6, 1, 1, 1, 1]}), "bad_dimensions", "dimensions (0,)")
    add("4D", nifti(np.stack([brain()] * 2, axis=-1)), "bad_dimensions", "4 dimensions")
    add("NaN voxels", nifti(np.where(brain() > 0, np.nan, 0), dtype=np.float32), "non_finite", "NaN")
    add("gzip of garbage", b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4, "corrupt_file", "gzip")
    add("gzip cut short", nifti()[:400], "truncated_file", "truncated")
    for fmt in ("JPEG", "TIFF", "GIF", "BMP", "WEBP"):
        add(f"{fmt} named .png", _picture(fmt), "unsupported_format", "PNG", "t1.png")
    add("text named .png", b"not an image at all" * 10, "unsupported_format", "PNG", "t1.png")
    return cases


# ---------------------------------------------------------------------------------------------
# Measuring what a refusal costs, each case in a fresh process.

_MEASURE = """
import json, resource, sys, time
# PYTHONPATH, not the editable install, decides which synnet is measured.
sys.meta_path = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
from hostile_corpus import {builder} as build
data = build()
from synnet.imageio import read_image
from synnet.errors import InvalidImageError
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
began = time.perf_counter()
try:
    read_image(data, "bomb.nii.gz")
    code = "accepted"
except InvalidImageError as error:
    code = error.code
seconds = time.perf_counter() - began
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"code": code, "seconds": seconds, "rss_before_mb": before / 1024, "rss_peak_mb": peak / 1024,
                  "file_mb": len(data) / 1e6}}))
"""


def measure(builder: Callable[[], bytes]) -> dict[str, object]:
    """Time to refuse (or read) and peak RSS of ``read_image`` on ``builder()``'s file, in a fresh process."""
    script = _MEASURE.format(builder=builder.__name__)
    # Whatever synnet is first on PYTHONPATH is measured (an older checkout, to compare); this folder after it.
    here = Path(__file__).parent
    paths = [p for p in (os.environ.get("PYTHONPATH", ""), str(here.parent), str(here)) if p]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(paths)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env, cwd=here)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    for builder in (bomb, declared_too_large, largest_admitted):
        print(builder.__name__, measure(builder))


if __name__ == "__main__":
    main()
