"""Hypothesis strategies for ``POST /synthesize`` requests that get past query parsing.

A request names a configuration the store serves (each modality under any of its aliases, in
any case) and carries real small images: NIfTI-1 or -2 (``.nii`` or ``.nii.gz``, either byte
order, several data types) or PNG (8/16-bit grey, grey stored as colour, colour, palette). Most
files are then damaged: a header field set to any value of its type, bytes overwritten, the file
cut or extended, the gzip stream or a PNG chunk broken (with its CRC fixed, so Pillow decodes
it). Query parsing cannot stop such a request: the decoders, the cross-checks and the synthesis
see it.
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import nibabel as nib
import numpy as np
from hostile_corpus import brain
from hypothesis import strategies as st
from hypothesis.extra.numpy import from_dtype
from PIL import Image

from synnet.modalities import ALIAS_NAMES, Modality, parse_modality

SHAPES_3D = [(32, 32, 6), (24, 40, 3), (33, 31, 2), (32, 32, 1)]
SHAPES_2D = [(32, 32), (40, 24), (31, 33)]
NIFTI_DTYPES = ["int16", "uint8", "int8", "uint16", "int32", "float32", "float64"]
# Datatype codes of the NIfTI standard, so that a mutated `datatype` often names a real one.
NIFTI_CODES = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2304, 2305]
PNG_MODES = ["L", "I;16", "LA", "RGB grey", "RGB colour", "RGBA", "P", "1"]
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ALIASES = {name: parse_modality(name) for name in ALIAS_NAMES.split(", ")}


@dataclass(frozen=True)
class EncodedFile:
    """One file as sent, what it is, and what makes it unusable (damage, colour pixels): empty when it is valid."""

    filename: str
    data: bytes
    what: str
    damage: list[str]


@dataclass
class Upload:
    """One request: its query and its file parts; ``story`` says what each file is and how it was damaged."""

    query: dict[str, str]
    shape: tuple[int, ...]
    files: list[tuple[str, tuple[str, bytes]]] = field(default_factory=list, repr=False)
    story: list[str] = field(default_factory=list)
    damaged: bool = False

    def add(self, name: str, file: EncodedFile) -> None:
        self.files.append((name, (file.filename, file.data)))
        self.story += [f"{name}: {line}" for line in [file.what, *file.damage]]
        self.damaged = self.damaged or bool(file.damage)

    def __repr__(self) -> str:
        parts = ", ".join(f"{name}={filename!r} ({len(data)} B)" for name, (filename, data) in self.files)
        return f"Upload(query={self.query}, shape={self.shape}, parts=[{parts}], story={self.story})"


def spelling(modality: Modality) -> st.SearchStrategy[str]:
    """Any alias of ``modality`` in lower, upper or its canonical case."""
    names = sorted(name for name, m in _ALIASES.items() if m is modality)
    return st.sampled_from(names).flatmap(lambda name: st.sampled_from([name, name.upper(), modality.value]))


# ---------------------------------------------------------------------------------------------
# Damage


@st.composite
def _overwrite(draw: st.DrawFn, data: bytes, label: str, within: int | None = None) -> tuple[bytes, str]:
    """Up to 8 bytes overwritten, by default anywhere, or within the first ``within`` bytes."""
    out = bytearray(data)
    end = min(len(out), within or len(out))
    if end == 0:
        return data, f"{label}: nothing to overwrite"
    spots = draw(st.lists(st.tuples(st.integers(0, end - 1), st.integers(0, 255)), min_size=1, max_size=8))
    for offset, value in spots:
        out[offset] = value
    return bytes(out), f"{label}: bytes {spots}"


@st.composite
def _resize(draw: st.DrawFn, data: bytes, label: str) -> tuple[bytes, str]:
    if draw(st.booleans()):
        cut = draw(st.integers(0, max(len(data) - 1, 0)))
        return data[:cut], f"{label}: cut to {cut} bytes"
    extra = draw(st.binary(min_size=1, max_size=64))
    return data + extra, f"{label}: {len(extra)} bytes appended"


def _field_values(base: np.dtype) -> st.SearchStrategy[object]:
    """Any value of the field's type, and often a small one (a size, a code, an offset) that gets further."""
    if base.kind in "iu":
        info = np.iinfo(base)
        small = st.one_of(st.integers(-2, 70), st.sampled_from([*NIFTI_CODES, 348, 352, 540, 544]))
        return st.one_of(from_dtype(base), small.filter(lambda v: info.min <= v <= info.max))
    if base.kind == "f":
        return st.one_of(from_dtype(base), st.floats(-4, 400, width=8 * base.itemsize))
    return from_dtype(base)


@st.composite
def _set_header_field(draw: st.DrawFn, raw: bytes, header_dtype: np.dtype) -> tuple[bytes, str]:
    """One field of the NIfTI header (or one element of an array field) set to a drawn value, in place."""
    name = draw(st.sampled_from(header_dtype.names))
    field_dtype, offset = header_dtype.fields[name][:2]
    base, count = field_dtype.base, int(np.prod(field_dtype.shape, dtype=int))
    index = draw(st.integers(0, count - 1))
    value = draw(_field_values(base))
    start = offset + index * base.itemsize
    out = bytearray(raw)
    out[start : start + base.itemsize] = np.asarray(value, dtype=base).tobytes()
    where = f"{name}[{index}]" if count > 1 else name
    return bytes(out), f"header {where} = {value!r}"


# ---------------------------------------------------------------------------------------------
# NIfTI


@st.composite
def nifti_file(draw: st.DrawFn, array: np.ndarray, affine: np.ndarray) -> EncodedFile:
    """A real NIfTI file of ``array``, then 0 to 3 kinds of damage."""
    version = draw(st.sampled_from([1, 2]))
    dtype = draw(st.sampled_from(NIFTI_DTYPES))
    endian = draw(st.sampled_from("<>"))
    image_class = nib.Nifti1Image if version == 1 else nib.Nifti2Image
    header = image_class.header_class(endianness=endian)
    image = image_class(np.asarray(array).astype(dtype), affine, header=header)
    image.header.set_data_dtype(dtype)  # a header passed in keeps its own (float32) otherwise
    raw = image.to_bytes()
    what = f"NIfTI-{version} {dtype} {'big' if endian == '>' else 'little'}-endian {array.shape}"
    damage: list[str] = []
    header_dtype = image.header.structarr.dtype
    for kind in draw(st.lists(st.sampled_from(["field", "header bytes", "bytes", "size"]), max_size=3)):
        if kind == "field":
            raw, done = draw(_set_header_field(raw, header_dtype))
        elif kind == "header bytes":
            raw, done = draw(_overwrite(raw, "header", within=header_dtype.itemsize + 4))
        elif kind == "bytes":
            raw, done = draw(_overwrite(raw, "file"))
        else:
            raw, done = draw(_resize(raw, "file"))
        damage.append(done)
    if not draw(st.booleans()):
        return EncodedFile(draw(st.sampled_from(["t1.nii", "t1.nii.gz", "upload"])), raw, what, damage)
    split = draw(st.integers(0, len(raw)))
    if split in (0, len(raw)):
        data = gzip.compress(raw, compresslevel=1, mtime=0)
    else:  # a valid multi-member gzip, as pigz and concatenated files make
        data = gzip.compress(raw[:split], mtime=0) + gzip.compress(raw[split:], mtime=0)
        what += f", gzip members split at {split}"
    for kind in draw(st.lists(st.sampled_from(["gzip bytes", "gzip size"]), max_size=1)):
        data, done = draw(_overwrite(data, "gzip") if kind == "gzip bytes" else _resize(data, "gzip"))
        damage.append(done)
    return EncodedFile(draw(st.sampled_from(["t1.nii.gz", "t1.nii", "t1.png"])), data, what, damage)


# ---------------------------------------------------------------------------------------------
# PNG


def _png_image(array: np.ndarray, mode: str) -> Image.Image:
    grey = np.rint(np.clip(array / max(float(array.max()), 1e-9), 0, 1) * 255).astype(np.uint8)
    if mode == "I;16":
        return Image.fromarray(grey.astype(np.uint16) * 257)
    if mode == "RGB colour":
        return Image.fromarray(np.stack([grey, grey // 2, 255 - grey], axis=-1))
    if mode == "RGB grey":
        return Image.fromarray(np.stack([grey] * 3, axis=-1))
    if mode in ("LA", "RGBA", "P", "1"):
        return Image.fromarray(grey).convert(mode)
    return Image.fromarray(grey)


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, payload) of every chunk of a PNG file, CRCs unchecked."""
    chunks, at = [], len(_PNG_SIGNATURE)
    while at + 8 <= len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        chunks.append((data[at + 4 : at + 8], data[at + 8 : at + 8 + length]))
        at += 12 + length
    return chunks


def png_from_chunks(chunks: Sequence[tuple[bytes, bytes]]) -> bytes:
    """A PNG file of these (type, payload) chunks, each with its CRC computed anew."""
    body = b"".join(
        struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        for kind, payload in chunks
    )
    return _PNG_SIGNATURE + body


@st.composite
def _damage_chunk(draw: st.DrawFn, data: bytes) -> tuple[bytes, str]:
    """A chunk's bytes overwritten (IHDR's fields included), dropped or repeated, with valid CRCs."""
    chunks = png_chunks(data)
    index = draw(st.integers(0, len(chunks) - 1))
    kind, payload = chunks[index]
    action = draw(st.sampled_from(["overwrite", "drop", "repeat"]))
    if action == "drop":
        del chunks[index]
    elif action == "repeat":
        chunks.insert(index, chunks[index])
    else:
        payload, what = draw(_overwrite(payload, kind.decode("latin-1")))
        chunks[index] = (kind, payload)
        return png_from_chunks(chunks), f"{what} (CRC fixed)"
    return png_from_chunks(chunks), f"chunk {kind.decode('latin-1')} {action}"


@st.composite
def png_file(draw: st.DrawFn, array: np.ndarray) -> EncodedFile:
    """A real PNG of the 2D ``array``, then 0 to 2 kinds of damage; colour pixels count as damage."""
    mode = draw(st.sampled_from(PNG_MODES))
    buffer = io.BytesIO()
    _png_image(array, mode).save(buffer, format="PNG", optimize=False)
    data = buffer.getvalue()
    damage = ["colour pixels"] if mode == "RGB colour" else []
    for kind in draw(st.lists(st.sampled_from(["chunk", "bytes", "size"]), max_size=2)):
        if kind == "chunk" and data.startswith(_PNG_SIGNATURE) and png_chunks(data):
            data, done = draw(_damage_chunk(data))
        elif kind == "size":
            data, done = draw(_resize(data, "file"))
        else:
            data, done = draw(_overwrite(data, "file"))
        damage.append(done)
    filename = draw(st.sampled_from(["t1.png", "t1.PNG", "t1.nii.gz"]))
    return EncodedFile(filename, data, f"PNG {mode} {array.shape}", damage)


# ---------------------------------------------------------------------------------------------
# Requests


@st.composite
def uploads(draw: st.DrawFn, configurations: Sequence[tuple[tuple[Modality, ...], tuple[Modality, ...]]]) -> Upload:
    """A request for one of ``configurations`` (src, dst): every source, maybe a truth per target and a mask.

    All images of a request share a shape and an affine, as the service requires; each is encoded on
    its own (format, data type, damage), so mixed requests occur too.
    """
    src, dst = draw(st.sampled_from(list(configurations)))
    shape = draw(st.sampled_from(SHAPES_2D + SHAPES_3D))
    affine = np.diag([*draw(st.sampled_from([(1.0, 1.0, 1.0), (-1.0, -1.0, 1.0), (3.0, 3.0, 1.0)])), 1.0])
    query = {"dst": ",".join(draw(spelling(m)) for m in dst)}
    if draw(st.booleans()):
        query["src"] = ",".join(draw(spelling(m)) for m in src)
    if draw(st.booleans()):
        query["format"] = draw(st.sampled_from(["nifti", "npy"] if len(shape) == 3 else ["nifti", "png", "npy"]))
    roles = [(draw(spelling(m)), m) for m in src]
    roles += [(f"truth_{draw(spelling(m))}", m) for m in dst if draw(st.integers(0, 3)) == 0]
    if draw(st.integers(0, 3)) == 0:
        roles.append(("mask", None))
    upload = Upload(query, shape)
    for seed, (name, modality) in enumerate(roles):
        array = brain(shape, seed=seed) if modality is not None else (brain(shape) > 0).astype(np.float32)
        as_png = len(shape) == 2 and draw(st.booleans())
        upload.add(name, draw(png_file(array) if as_png else nifti_file(array, affine)))
    return upload
