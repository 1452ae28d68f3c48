"""Pack BraTS cases into a small file for a remote training machine, and unpack them there.

A GPU machine reached through a narrow link (here: 64 MiB per call) cannot receive a BraTS folder
(about 7.5 MB per case). The model only ever sees intensities in model space, which
:func:`synnet.normalization.normalize` clips to [0, 1] between the 0.5 and 99.5 percentiles inside
the brain, so a case can travel as 8 bits per voxel of model space plus each modality's (lo, hi):
the quantization step is 1/127 of the brain's range (noise std 0.0023 in model space), well below
the scans' own noise. Unpacking writes a BraTS-2018-layout folder in raw units
``lo + q / 127 * (hi - lo)`` inside the brain and 0 outside, so normalization there measures the
same (lo, hi) to within one step and the manifests' ``output_reference`` stays in scanner units.

Only the bounding box of the brain (and of the tumour) is stored, compressed with xz (about
3.5 MB per case). A case travels with the modalities it has (the T1+FLAIR-only subjects too) and
with its tumour labels, since the bundled recipe weighs the loss inside the tumour: a label map
comes back as ``<case>_seg``, a whole-tumour mask as ``<case>_wholetumour``. Evaluation always
reads the original files: this format is for training only.

Usage::

    python -m synnet_tools.gpu_pack pack --data ../shared/data/brats18 --cases ID,ID --out cases.pack
    python -m synnet_tools.gpu_pack pack --data ../shared/data/brats18_t1_flair --out extra.pack   # every case
    python -m synnet_tools.gpu_pack unpack cases.pack --out data/brats18
"""

from __future__ import annotations

import argparse
import io
import lzma
import sys
import tarfile
from pathlib import Path

import nibabel as nib
import numpy as np

from synnet.dataset_layout import SEG_TOKEN, WHOLE_TUMOUR_TOKEN, CaseFiles
from synnet.modalities import Modality
from synnet.normalization import brain_mask, intensity_range
from training.data.brats import find_cases, load_case
from training.data.errors import DataError

LEVELS = 127
# BraTS 2018 file tokens, the layout the unpacked folders use
FILE_TOKENS = {Modality.T1: "t1", Modality.T1c: "t1ce", Modality.T2: "t2", Modality.FLAIR: "flair"}


def pack_case(folder_case: CaseFiles) -> bytes:
    """One case as xz-compressed npz bytes: affine, shape, box, (lo, hi), uint8 volumes and the tumour labels."""
    modalities = tuple(m for m in FILE_TOKENS if m in folder_case.files)
    if not modalities:
        raise DataError(f"case {folder_case.case_id} has no image to pack", code="empty_case")
    loaded = load_case(folder_case, modalities)
    mask = brain_mask([loaded.images[m] for m in modalities])
    if not mask.any():
        raise DataError(f"case {folder_case.case_id} has no brain voxels", code="empty_case")
    kept = mask if loaded.seg is None else mask | (loaded.seg > 0)
    corners = np.argwhere(kept)
    lo_corner, hi_corner = corners.min(axis=0), corners.max(axis=0) + 1
    box = tuple(slice(a, b) for a, b in zip(lo_corner, hi_corner, strict=True))
    arrays: dict[str, np.ndarray] = {
        "affine": loaded.affine.astype(np.float64),
        "shape": np.asarray(mask.shape, dtype=np.int64),
        "box": np.stack([lo_corner, hi_corner]).astype(np.int64),
        "mask": np.packbits(mask[box]),
    }
    if loaded.seg is not None:
        token = WHOLE_TUMOUR_TOKEN if folder_case.whole_tumour_only else SEG_TOKEN
        arrays[f"labels_{token}"] = loaded.seg[box].astype(np.uint8)
    for modality in modalities:
        image = loaded.images[modality]
        value_range = intensity_range(image, mask)
        scaled = (image[box].astype(np.float32) - value_range.lo) / (value_range.hi - value_range.lo)
        arrays[f"{modality.value}_q"] = np.round(np.clip(scaled, 0.0, 1.0) * LEVELS).astype(np.uint8)
        arrays[f"{modality.value}_range"] = np.asarray([value_range.lo, value_range.hi], dtype=np.float64)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return lzma.compress(buffer.getvalue(), preset=6)


def unpack_case(payload: bytes, case_id: str, out_root: Path) -> Path:
    """Write one packed case as ``<out_root>/<case_id>/<case_id>_<t1|t1ce|t2|flair|seg|wholetumour>.nii.gz``."""
    arrays = np.load(io.BytesIO(lzma.decompress(payload)))
    shape = tuple(int(n) for n in arrays["shape"])
    lo_corner, hi_corner = arrays["box"]
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo_corner, hi_corner, strict=True))
    box_shape = tuple(int(b - a) for a, b in zip(lo_corner, hi_corner, strict=True))
    mask = np.unpackbits(arrays["mask"], count=int(np.prod(box_shape))).reshape(box_shape).astype(bool)
    folder = out_root / case_id
    folder.mkdir(parents=True, exist_ok=True)
    for modality, token in FILE_TOKENS.items():
        if f"{modality.value}_q" not in arrays:
            continue
        lo, hi = arrays[f"{modality.value}_range"]
        volume = np.zeros(shape, dtype=np.float32)
        values = lo + arrays[f"{modality.value}_q"].astype(np.float32) / LEVELS * (hi - lo)
        volume[box] = np.where(mask, values, 0.0)
        nib.save(nib.Nifti1Image(volume, arrays["affine"]), folder / f"{case_id}_{token}.nii.gz")
    for token in (SEG_TOKEN, WHOLE_TUMOUR_TOKEN):
        if f"labels_{token}" in arrays:
            labels = np.zeros(shape, dtype=np.uint8)
            labels[box] = arrays[f"labels_{token}"]
            nib.save(nib.Nifti1Image(labels, arrays["affine"]), folder / f"{case_id}_{token}.nii.gz")
    return folder


def pack(data: Path, case_ids: list[str], out: Path) -> None:
    """Pack the named cases of a BraTS folder into one tar of per-case members."""
    cases = {case.case_id: case for case in find_cases(data)}
    unknown = [case_id for case_id in case_ids if case_id not in cases]
    if unknown:
        raise DataError(f"cases not found in {data}: {', '.join(unknown)}", code="bad_split")
    with tarfile.open(out, "w") as archive:
        for case_id in case_ids:
            payload = pack_case(cases[case_id])
            member = tarfile.TarInfo(f"{case_id}.npz.xz")
            member.size = len(payload)
            archive.addfile(member, io.BytesIO(payload))
            print(f"{case_id}: {len(payload) / 1e6:.1f} MB", file=sys.stderr)


def unpack(packed: Path, out_root: Path) -> list[Path]:
    """Write every case of a pack as a BraTS folder under ``out_root``."""
    folders = []
    with tarfile.open(packed) as archive:
        for member in archive.getmembers():
            payload = archive.extractfile(member).read()
            folders.append(unpack_case(payload, member.name.removesuffix(".npz.xz"), out_root))
    return folders


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synnet_tools.gpu_pack", description=__doc__.split("\n\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    packer = verbs.add_parser("pack", help="pack cases of a BraTS folder")
    packer.add_argument("--data", type=Path, required=True)
    packer.add_argument("--cases", help="comma-separated case ids (default: every case of --data)")
    packer.add_argument("--out", type=Path, required=True)
    unpacker = verbs.add_parser("unpack", help="write a pack as a BraTS folder")
    unpacker.add_argument("pack", type=Path)
    unpacker.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.verb == "pack":
            if args.cases is None:
                case_ids = [case.case_id for case in find_cases(args.data)]
            else:
                case_ids = [c.strip() for c in args.cases.split(",") if c.strip()]
            pack(args.data, case_ids, args.out)
        else:
            for folder in unpack(args.pack, args.out):
                print(folder)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
