"""Training and validation slices streamed from the training cache, in bounded memory.

A run holds, per case, the list of its usable slices and their brain boxes (a few kB); every item is read
from the cache's memory-mapped arrays when the sampler asks for it, normalized, and cut to its window. So
the memory of a run does not grow with the number of subjects, and each ``torchrun`` rank or DataLoader
worker reads only the items it is handed.

The items are those of the in-memory path (:func:`training.data.slices.extract_slices` and
:class:`training.data.dataset.SliceDataset`) to the last bit: the same slices are kept, the brain is the
same source set's, each value goes through :func:`synnet.normalization.normalize` with the same (lo, hi),
and the windows are placed by the same seeded rule.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from synnet.modalities import Modality
from synnet.normalization import IntensityRange, NormalizationParams, anchor_on_median, normalize
from training.data.cache.entry import BRAIN_FILE_BIT, source_key
from training.data.cache.read import CachedCase, CachedSlice, SliceMemory
from training.data.dataset import BRAIN, TUMOUR, Item, WindowedSlices
from training.data.errors import DataError
from training.data.slices import DEFAULT_MIN_BRAIN_FRACTION, SliceStack


@dataclass(frozen=True)
class SliceView:
    """What a run reads of every case: which contrasts go in and come out, and how they are scaled.

    Attributes:
        src: input modalities in channel order; for an any-to-any model all four.
        dst: target modalities in channel order; for an any-to-any model all four.
        any_to_any: every modality the case has is both input and target (NaN where it lacks one).
        params: the manifest's normalization (the targets' anchor among it).
        min_brain_fraction: slices with less brain than this are not used.
        context: axial neighbours stacked with each source slice (2.5D).
        tumour: read the tumour labels, for a loss weighed in the tumour.
    """

    src: tuple[Modality, ...]
    dst: tuple[Modality, ...]
    any_to_any: bool = False
    params: NormalizationParams = field(default_factory=NormalizationParams)
    min_brain_fraction: float = DEFAULT_MIN_BRAIN_FRACTION
    context: int = 0
    tumour: bool = False


class ViewedCase:
    """One cached case as a run sees it: its usable slices, their brain boxes, and the range of each channel."""

    def __init__(self, case: CachedCase, view: SliceView) -> None:
        record = case.record
        self.case, self.view = case, view
        inputs = tuple(record.modalities) if view.any_to_any else view.src
        missing = [m.value for m in (*view.src, *view.dst) if m not in record.modalities and not view.any_to_any]
        if missing:
            raise DataError(f"cached case {record.case_id} lacks {', '.join(missing)}", code="missing_modality")
        mask_index = record.mask_of[source_key(inputs)]
        self.mask_bits = BRAIN_FILE_BIT if record.brain_from_file else source_key(inputs)
        stats = case.slice_stats()[mask_index]
        rows, cols, _ = record.shape
        fraction = stats[:, 0].astype(np.float64) / (rows * cols)  # as brain_slice_indices measures it
        self.z = np.flatnonzero((fraction >= view.min_brain_fraction) & (fraction > 0)).astype(np.int64)
        self.boxes = stats[self.z, 1:5].astype(np.int64)
        values = record.masks[mask_index]
        self.ranges = {m: values[m].percentile_range for m in inputs}
        if not view.any_to_any:
            for target in view.dst:
                stats_t = values[target]
                anchored = view.params.target_anchor == "median"
                self.ranges[target] = (
                    anchor_on_median(stats_t.percentile_range, stats_t.median) if anchored else stats_t.percentile_range
                )
        self.labels = view.tumour and record.has_labels

    @property
    def case_id(self) -> str:
        return self.case.case_id

    def __len__(self) -> int:
        return int(self.z.size)

    @property
    def target_ranges(self) -> dict[Modality, IntensityRange]:
        """Raw (lo, hi) of each target the case has: what model space 0 and 1 meant for it."""
        return {m: self.ranges[m] for m in self.view.dst if m in self.ranges}

    def read(self, memory: SliceMemory, z: int, top: int, left: int, height: int, width: int) -> Item:
        """``(sources, targets, mask)`` of slice ``z`` inside the window at (top, left), zero beyond the image.

        Sources are (len(src)·(2·context+1), height, width) float32, each source with its neighbours; targets
        (len(dst), height, width); an any-to-any view gives all four channels in both, NaN over the image for
        a modality the case lacks. The mask is bool, or the uint8 region map when the view reads tumour labels.
        """
        record, view = self.case.record, self.view
        place = _Placement.of(record.box, record.shape, top, left, height, width)
        read: dict[int, CachedSlice | None] = {}

        def slice_at(at: int) -> CachedSlice | None:
            if at not in read:
                read[at] = None if place.empty else memory.read(self.case, at)
            return read[at]

        def fill(out: np.ndarray, channel: int, modality: Modality, at: int) -> None:
            found = slice_at(at)
            if found is not None:
                brain = (found.bits[place.cached] & self.mask_bits) != 0
                image = found.images[record.channel(modality)][place.cached]
                out[channel][place.window] = normalize(image, brain, value_range=self.ranges[modality])[0]

        per_source = 2 * view.context + 1
        sources = np.zeros((len(view.src) * per_source, height, width), dtype=np.float32)
        for number, modality in enumerate(view.src):
            if modality not in record.modalities:  # any-to-any: absent, and said so by NaN, never by a value
                sources[number * per_source : (number + 1) * per_source][(slice(None), *place.image)] = np.nan
                continue
            for position, offset in enumerate(range(-view.context, view.context + 1)):
                neighbour = int(np.clip(z + offset, 0, record.shape[2] - 1))  # synnet.neighbours' edge rule
                fill(sources, number * per_source + position, modality, neighbour)
        targets = sources.copy() if view.any_to_any else np.zeros((len(view.dst), height, width), dtype=np.float32)
        if not view.any_to_any:
            for number, modality in enumerate(view.dst):
                fill(targets, number, modality, z)
        mask = np.zeros((height, width), dtype=np.uint8 if view.tumour else bool)
        found = slice_at(z)
        if found is not None:
            brain = (found.bits[place.cached] & self.mask_bits) != 0
            if view.tumour:
                region = brain.astype(np.uint8) * BRAIN
                if self.labels:
                    region[(found.labels[place.cached] > 0) & brain] = TUMOUR
                mask[place.window] = region
            else:
                mask[place.window] = brain
        return torch.from_numpy(sources), torch.from_numpy(targets), torch.from_numpy(mask)


@dataclass(frozen=True)
class _Placement:
    """Where a window meets a case: the part of its cached slices, that part's place in the window, and the
    part of the window over the image (where an absent modality is NaN)."""

    cached: tuple[slice, slice]
    window: tuple[slice, slice]
    image: tuple[slice, slice]
    empty: bool

    @classmethod
    def of(cls, box: Sequence[int], shape: Sequence[int], top: int, left: int, height: int, width: int) -> _Placement:
        corner, size = (top, left), (height, width)
        cached, window, image = [], [], []
        for axis in range(2):
            start, stop = box[2 * axis], box[2 * axis + 1]
            first, last = max(corner[axis], start), min(corner[axis] + size[axis], stop)
            last = max(first, last)
            cached.append(slice(first - start, last - start))
            window.append(slice(first - corner[axis], last - corner[axis]))
            image.append(
                slice(max(corner[axis], 0) - corner[axis], min(corner[axis] + size[axis], shape[axis]) - corner[axis])
            )
        empty = any(part.start >= part.stop for part in cached)
        return cls(tuple(cached), tuple(window), tuple(image), empty)  # type: ignore[arg-type]


class StreamedSliceDataset(WindowedSlices):
    """The training run's dataset: :class:`~training.data.dataset.SliceDataset`'s items, read on demand.

    Args:
        cases: the cached cases as the run sees them, in dataset order.
        window: side S of the random square window around the brain; ``None`` for whole slices.
        seed: base seed of the window positions.
        memory_bytes: bound of each process's copy of recently read slices (0: read the cache every time).

    Raises:
        DataError: no slices at all.
    """

    def __init__(
        self, cases: Sequence[ViewedCase], window: int | None = None, seed: int = 0, memory_bytes: int = 0
    ) -> None:
        super().__init__(cases, window, seed)
        self.cases: list[ViewedCase]
        self.regions = self.cases[0].view.tumour and any(case.labels for case in self.cases)
        self.memory_bytes = memory_bytes
        self._memory: SliceMemory | None = None

    def __getitem__(self, index: int) -> Item:
        number, local = self.locate(index)
        case = self.cases[number]
        rows, cols, _ = case.case.record.shape
        top, left, height, width = 0, 0, rows, cols
        if self.window is not None:
            top, left = self.window_origin(index, case.boxes[local])
            height = width = self.window
        sources, targets, mask = case.read(self._slice_memory(), int(case.z[local]), top, left, height, width)
        if not self.regions and mask.dtype == torch.uint8:
            mask = mask.bool()
        return sources, targets, mask

    def _slice_memory(self) -> SliceMemory:
        if self._memory is None:  # made in the process that reads (a DataLoader worker), not pickled into it
            self._memory = SliceMemory(self.memory_bytes)
        return self._memory

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_memory": None}


def validation_stacks(cases: Sequence[ViewedCase], max_slices: int, seed: int) -> Iterator[SliceStack]:
    """Whole validation slices, one case at a time: a seeded choice of at most ``max_slices`` over all cases.

    The same slices every epoch (so epochs compare), and at most one case's chosen slices in memory, so a
    hundred validation subjects cost no more memory than one.
    """
    pairs = [(number, local) for number, case in enumerate(cases) for local in range(len(case))]
    if len(pairs) > max_slices:
        chosen = np.random.default_rng(seed).choice(len(pairs), size=max_slices, replace=False)
        pairs = [pairs[i] for i in sorted(chosen)]
    memory = SliceMemory(0)
    for number, case in enumerate(cases):
        locals_ = [local for n, local in pairs if n == number]
        if not locals_:
            continue
        rows, cols, _ = case.case.record.shape
        items = [case.read(memory, int(case.z[local]), 0, 0, rows, cols) for local in locals_]
        sources, targets, masks = (np.stack([item[k].numpy() for item in items]) for k in range(3))
        yield SliceStack(
            case_id=case.case_id,
            src=case.view.src,
            dst=case.view.dst,
            sources=sources,
            targets=targets,
            masks=masks.astype(bool),
            slice_indices=case.z[locals_],
            ranges=dict(case.ranges),
        )
