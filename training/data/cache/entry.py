"""One subject in the training cache: its arrays on disk, their record, and how they are written.

An entry is a folder ``<cache>/<case_id>/`` holding

* ``images.npy`` (Zc, M, Xc, Yc): the raw intensities of the M modalities the case has, canonical order,
  cropped to the box of its brain and stored axial slice first, so that one slice (or a window of it)
  is one contiguous read of a memory-mapped file. ``int16`` when that holds every value exactly
  (BraTS 2018-2021), else ``float32``: the cache never rounds.
* ``masks.npy`` (Zc, Xc, Yc) uint8: bit ``i`` set where modality ``i`` (canonical order) is nonzero,
  :data:`BRAIN_FILE_BIT` where the case's brain-mask file says brain. The brain a model sees depends on
  its sources (the union of their nonzero voxels, :mod:`training.data.slices`), so it is rebuilt per
  source set from these bits rather than fixed at preparation.
* ``labels.npy`` (Zc, Xc, Yc) uint8: the tumour labels, when the case has them.
* ``slice_stats.npy`` (n_masks, Z, 5) int32: per distinct brain mask and axial slice of the whole volume,
  the brain's voxel count and its bounding box (first/last row, first/last column): what slice selection
  and window placement read, without touching the images.
* ``record.json`` (:class:`CaseRecord`): the normalization record of every modality inside every distinct
  brain mask (percentiles and median, as :mod:`synnet.normalization` measures them on the whole volume),
  the crop box, the affine, and the fingerprint that says which inputs and settings made the entry.

Storing raw values with their record instead of model-space values keeps one entry good for every source
set and target anchor, and makes a streamed slice equal to the in-memory one to the last bit: the same
float32 formula runs on the same values with the same (lo, hi).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from synnet.dataset_layout import CaseFiles
from synnet.modalities import Modality
from synnet.normalization import IntensityRange, NormalizationParams, intensity_range
from training.data.brats import load_case
from training.data.errors import DataError

FORMAT_VERSION = 1
IMAGES, MASKS, LABELS, STATS, RECORD = "images.npy", "masks.npy", "labels.npy", "slice_stats.npy", "record.json"
BRAIN_FILE_BIT = 1 << len(Modality)
INT16 = np.iinfo(np.int16)


def modality_bit(modality: Modality) -> int:
    return 1 << list(Modality).index(modality)


def source_key(modalities: tuple[Modality, ...] | list[Modality]) -> int:
    """The bits of a source set: the key of its brain mask in :attr:`CaseRecord.mask_of`."""
    return sum(modality_bit(m) for m in set(modalities))


@dataclass(frozen=True)
class CacheSettings:
    """What preparation computes with; part of every entry's fingerprint, so changing one redoes the entries."""

    lower_percentile: float = NormalizationParams().lower_percentile
    upper_percentile: float = NormalizationParams().upper_percentile

    def as_record(self) -> dict[str, float | int]:
        return {"format": FORMAT_VERSION, "lower_percentile": self.lower_percentile,
                "upper_percentile": self.upper_percentile}  # fmt: skip

    @property
    def params(self) -> NormalizationParams:
        return NormalizationParams(lower_percentile=self.lower_percentile, upper_percentile=self.upper_percentile)


class ValueStats(BaseModel):
    """One modality inside one brain mask: its percentile range and its median (the median target anchor's)."""

    model_config = ConfigDict(frozen=True)

    lo: float
    hi: float
    median: float

    @property
    def percentile_range(self) -> IntensityRange:
        return IntensityRange(lo=self.lo, hi=self.hi)


class CaseRecord(BaseModel):
    """``record.json``: everything about an entry but its arrays."""

    format: int
    case_id: str
    fingerprint: str
    modalities: list[Modality]
    shape: tuple[int, int, int]
    box: tuple[int, int, int, int, int, int]  # x0, x1, y0, y1, z0, z1 (half open) in the volume
    affine: list[list[float]]
    image_dtype: str
    has_labels: bool
    brain_from_file: bool
    masks: list[dict[Modality, ValueStats]]
    mask_of: dict[int, int]  # source_key -> index into masks and slice_stats

    def channel(self, modality: Modality) -> int:
        return self.modalities.index(modality)


def write_entry(case: CaseFiles, folder: Path, settings: CacheSettings, fingerprint: str) -> CaseRecord:
    """Decode ``case`` and write its entry to ``folder``, atomically: a reader sees the old entry or the new one.

    Raises:
        DataError / InvalidImageError: the case cannot be read, its images disagree in grid, or it has no brain.
    """
    loaded = load_case(case, [m for m in Modality if m in case.files], load_seg=True)
    present = [m for m in Modality if m in loaded.images]
    bits = np.zeros(loaded.shape, dtype=np.uint8)
    for modality in present:
        bits |= (loaded.images[modality] != 0).astype(np.uint8) * np.uint8(modality_bit(modality))
    if loaded.brain is not None:
        bits |= loaded.brain.astype(np.uint8) * np.uint8(BRAIN_FILE_BIT)
    box = _bounding_box(loaded.brain if loaded.brain is not None else bits != 0, case.case_id)
    crop = (slice(box[0], box[1]), slice(box[2], box[3]), slice(box[4], box[5]))

    masks, mask_of, stats = [], {}, []
    seen: dict[bytes, int] = {}
    for size in range(1, len(present) + 1):
        for sources in combinations(present, size):
            mask = loaded.brain_mask(sources)
            signature = np.packbits(mask).tobytes()
            if signature not in seen:
                seen[signature] = len(masks)
                masks.append({m: _value_stats(loaded.images[m], mask, settings.params) for m in present})
                stats.append(_slice_stats(mask))
            mask_of[source_key(sources)] = seen[signature]

    volumes = [loaded.images[m][crop] for m in present]
    dtype = np.int16 if all(_fits_int16(v) for v in volumes) else np.float32
    images = np.stack([np.moveaxis(v, -1, 0) for v in volumes], axis=1).astype(dtype)
    record = CaseRecord(
        format=FORMAT_VERSION,
        case_id=case.case_id,
        fingerprint=fingerprint,
        modalities=present,
        shape=loaded.shape,
        box=box,
        affine=loaded.affine.tolist(),
        image_dtype=np.dtype(dtype).name,
        has_labels=loaded.seg is not None,
        brain_from_file=loaded.brain is not None,
        masks=masks,
        mask_of=mask_of,
    )
    arrays = {IMAGES: images, MASKS: np.moveaxis(bits[crop], -1, 0), STATS: np.stack(stats)}
    if loaded.seg is not None:
        arrays[LABELS] = np.moveaxis(loaded.seg[crop], -1, 0)
    _write_atomically(folder, arrays, record)
    return record


def read_record(folder: Path) -> CaseRecord | None:
    """The entry's record, or None when there is no complete entry (never written, interrupted, older format)."""
    try:
        record = CaseRecord.model_validate_json((folder / RECORD).read_bytes())
    except (OSError, ValueError):
        return None
    return record if record.format == FORMAT_VERSION else None


def _bounding_box(brain: np.ndarray, case_id: str) -> tuple[int, int, int, int, int, int]:
    if not brain.any():
        raise DataError(f"case {case_id} has no brain: every image is 0 everywhere", code="bad_slices")
    box = []
    for axis in range(3):
        present = np.flatnonzero(brain.any(axis=tuple(a for a in range(3) if a != axis)))
        box += [int(present[0]), int(present[-1]) + 1]
    return tuple(box)  # type: ignore[return-value]


def _value_stats(volume: np.ndarray, mask: np.ndarray, params: NormalizationParams) -> ValueStats:
    """Measured exactly as :func:`synnet.normalization.intensity_range` and ``median_anchored_range`` do."""
    value_range = intensity_range(volume, mask, params)
    values = volume[mask]
    median = float(np.median(values)) if values.size else value_range.lo
    return ValueStats(lo=value_range.lo, hi=value_range.hi, median=median)


def _slice_stats(mask: np.ndarray) -> np.ndarray:
    """(Z, 5) int32: brain voxels, first/last row, first/last column of each axial slice (0s when empty)."""
    rows, cols = mask.any(axis=1), mask.any(axis=0)  # (X, Z), (Y, Z)
    stats = np.zeros((mask.shape[2], 5), dtype=np.int32)
    stats[:, 0] = mask.sum(axis=(0, 1))
    nonempty = stats[:, 0] > 0
    for column, flags in ((1, rows), (3, cols)):
        first = flags.argmax(axis=0)
        last = flags.shape[0] - 1 - flags[::-1].argmax(axis=0)
        stats[:, column] = np.where(nonempty, first, 0)
        stats[:, column + 1] = np.where(nonempty, last, 0)
    return stats


def _fits_int16(volume: np.ndarray) -> bool:
    return bool(volume.min() >= INT16.min and volume.max() <= INT16.max and np.array_equal(volume, np.rint(volume)))


def _write_atomically(folder: Path, arrays: dict[str, np.ndarray], record: CaseRecord) -> None:
    """Write into a staging folder beside ``folder``, then swap it in (the old entry, if any, goes last)."""
    staging = folder.with_name(f".staging-{folder.name}-{uuid.uuid4().hex[:8]}")
    staging.mkdir(parents=True)
    try:
        for name, array in arrays.items():
            np.save(staging / name, np.ascontiguousarray(array))
        (staging / RECORD).write_text(json.dumps(record.model_dump(mode="json")) + "\n")
        if folder.exists():
            retired = folder.with_name(f".retired-{folder.name}-{uuid.uuid4().hex[:8]}")
            os.replace(folder, retired)
            shutil.rmtree(retired, ignore_errors=True)
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
