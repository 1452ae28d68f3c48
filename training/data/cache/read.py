"""Reading cache entries: one axial slice at a time from memory-mapped arrays, never a whole volume.

The pages a read touches belong to the kernel's page cache, not to the process: they are shared by every
DataLoader worker and every rank on the node, and dropped under memory pressure. What a process holds of
its own is the index of slices and, when asked for, a bounded copy of recently read slices
(:class:`SliceMemory`, for caches on slow or network storage).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from training.data.cache.entry import IMAGES, LABELS, MASKS, STATS, CaseRecord

# Entries kept open per process (three files each): enough for a shuffled sampler to hit open ones, far
# below the usual limit of 1024 open files.
OPEN_ENTRIES = 128


@lru_cache(maxsize=3 * OPEN_ENTRIES)
def _mapped(path: str) -> np.ndarray:
    return np.load(path, mmap_mode="r")


@dataclass(frozen=True)
class CachedSlice:
    """One axial slice of an entry, inside the crop box: raw images (M, Xc, Yc), mask bits and labels (Xc, Yc)."""

    images: np.ndarray
    bits: np.ndarray
    labels: np.ndarray | None

    @property
    def nbytes(self) -> int:
        return self.images.nbytes + self.bits.nbytes + (0 if self.labels is None else self.labels.nbytes)


class CachedCase:
    """A prepared case, opened lazily: cheap to create, to pickle into workers, and to hold by the thousand."""

    def __init__(self, folder: str | Path, record: CaseRecord) -> None:
        self.folder = Path(folder)
        self.record = record

    @property
    def case_id(self) -> str:
        return self.record.case_id

    def slice_stats(self) -> np.ndarray:
        """(n_masks, Z, 5) int32: brain count and box of every slice under every distinct mask (small, read whole)."""
        return np.load(self.folder / STATS)

    def read_slice(self, z: int) -> CachedSlice | None:
        """Slice ``z`` of the volume (memory-mapped views), or None when it lies outside the crop box (no brain)."""
        z0, z1 = self.record.box[4:]
        if not z0 <= z < z1:
            return None
        images, bits = (_mapped(str(self.folder / name))[z - z0] for name in (IMAGES, MASKS))
        labels = _mapped(str(self.folder / LABELS))[z - z0] if self.record.has_labels else None
        return CachedSlice(images, bits, labels)


class SliceMemory:
    """A per-process copy of the most recently read slices, bounded in bytes (0: keep nothing)."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget = budget_bytes
        self.used = 0
        self._slices: OrderedDict[tuple[str, int], CachedSlice | None] = OrderedDict()

    def read(self, case: CachedCase, z: int) -> CachedSlice | None:
        if self.budget <= 0:
            return case.read_slice(z)
        key = (case.case_id, z)
        if key in self._slices:
            self._slices.move_to_end(key)
            return self._slices[key]
        found = case.read_slice(z)
        if found is not None:
            labels = None if found.labels is None else np.array(found.labels)
            found = CachedSlice(np.array(found.images), np.array(found.bits), labels)
            self.used += found.nbytes
        self._slices[key] = found
        while self.used > self.budget and self._slices:
            _, dropped = self._slices.popitem(last=False)
            self.used -= 0 if dropped is None else dropped.nbytes
        return found
