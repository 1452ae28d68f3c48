"""A torch Dataset over the axial slices of several cases: random windows around the brain, or whole slices.

Training on whole 240×240 slices spends most of the compute on background; training on random
128-160 px windows whose centre lies inside the brain's bounding box keeps every window informative
and costs (160/240)² ≈ 44 % of a whole slice. The windows may reach past the image border, where
they are zero-padded like the background of a skull-stripped scan.

The window position of item ``i`` in epoch ``e`` is drawn from a generator seeded by
``(seed, e, i)``: it does not depend on which DataLoader worker or DDP rank reads the item, nor on
anything the run did before, which is what makes resumed and multi-process runs reproducible.

Two datasets give these items: :class:`SliceDataset` over slices already in memory, and the training
run's :class:`training.data.streaming.StreamedSliceDataset`, which reads each item from the training
cache when it is asked for; both share the index and the window placement (:class:`WindowedSlices`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from training.data.errors import DataError
from training.data.slices import SliceStack

Item = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
BRAIN, TUMOUR = 1, 2  # the values of a region map


class WindowedSlices(Dataset[Item]):
    """The index shared by the in-memory and the streamed datasets: case after case, slice after slice.

    Item ``i`` is slice ``locate(i)`` and, with a ``window``, its window is placed by :func:`window_origin`
    from a generator seeded by ``(seed, epoch, i)``: two datasets over the same cases give the same items.

    Args:
        cases: the cases in dataset order, each with a ``case_id`` and a length (its slices); empty ones are
            left out.
        window: side S of the random square window around the brain; ``None`` for whole slices.
        seed: base seed of the window positions.

    Raises:
        DataError: no slices at all.
    """

    def __init__(self, cases: Sequence[Any], window: int | None, seed: int) -> None:
        self.cases = [case for case in cases if len(case)]
        if not self.cases:
            raise DataError("no training slices: every case is empty after brain-slice selection", code="bad_slices")
        self.window = window
        self.seed = seed
        self.epoch = 0
        self._ends = list(accumulate(len(case) for case in self.cases))

    @property
    def case_ids(self) -> list[str]:
        return [case.case_id for case in self.cases]

    def set_epoch(self, epoch: int) -> None:
        """Draw other windows in the next epoch (call it like ``DistributedSampler.set_epoch``)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self._ends[-1]

    def locate(self, index: int) -> tuple[int, int]:
        """(case number, slice number within that case) of a dataset index."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} slices")
        case = bisect_right(self._ends, index)
        start = self._ends[case - 1] if case else 0
        return case, index - start

    def window_origin(self, index: int, box: np.ndarray) -> tuple[int, int]:
        """Top-left corner of item ``index``'s window, its centre uniform over the slice's brain box."""
        assert self.window is not None
        rng = np.random.default_rng([self.seed, self.epoch, index])
        centre_row = int(rng.integers(box[0], box[1] + 1))
        centre_col = int(rng.integers(box[2], box[3] + 1))
        return centre_row - self.window // 2, centre_col - self.window // 2


class SliceDataset(WindowedSlices):
    """Slices of several cases held in memory as ``(sources (k, S, S), targets (m, S, S), mask (S, S))`` items.

    The training run streams the same items from the training cache
    (:class:`training.data.streaming.StreamedSliceDataset`); this form serves small, already loaded sets.
    ``mask`` is the bool brain mask; when some case carries its tumour (``SliceStack.tumour``,
    loaded for ``--tumour-weight`` only) it is a uint8 region map instead: 0 outside the brain,
    :data:`BRAIN` in it, :data:`TUMOUR` in the tumour (cases without a segmentation: 0 and 1).

    Args:
        stacks: one :class:`SliceStack` per case, all with the same src, dst and slice shape.
        window: side S of the random square window around the brain; ``None`` for whole slices.
        seed: base seed of the window positions.

    Raises:
        DataError: no slices at all, or cases that disagree in modalities or slice shape.
    """

    def __init__(self, stacks: Sequence[SliceStack], window: int | None = None, seed: int = 0) -> None:
        super().__init__(stacks, window, seed)
        self.stacks: list[SliceStack] = self.cases
        first = self.stacks[0]
        for stack in self.stacks[1:]:
            if (stack.src, stack.dst) != (first.src, first.dst):
                raise DataError(f"case {stack.case_id} has other modalities than {first.case_id}", code="bad_slices")
            if stack.masks.shape[1:] != first.masks.shape[1:]:
                raise DataError(
                    f"cases differ in slice shape: {first.case_id} {first.masks.shape[1:]}, "
                    f"{stack.case_id} {stack.masks.shape[1:]}",
                    code="mismatched_case",
                )
        self._boxes = [_brain_boxes(stack.masks) for stack in self.stacks]
        self.regions = any(stack.tumour is not None for stack in self.stacks)

    def __getitem__(self, index: int) -> Item:
        case, local = self.locate(index)
        stack = self.stacks[case]
        sources, targets, mask = stack.sources[local], stack.targets[local], stack.masks[local]
        if self.regions:
            mask = mask.astype(np.uint8) * BRAIN
            if stack.tumour is not None:
                mask[stack.tumour[local]] = TUMOUR
        if self.window is not None:
            top, left = self.window_origin(index, self._boxes[case][local])
            sources = _crop(sources, top, left, self.window)
            targets = _crop(targets, top, left, self.window)
            mask = _crop(mask, top, left, self.window)
        return (
            torch.from_numpy(np.array(sources)),
            torch.from_numpy(np.array(targets)),
            torch.from_numpy(np.array(mask)),
        )


def _brain_boxes(masks: np.ndarray) -> np.ndarray:
    """(N, 4) int: first/last row and first/last column of each slice's brain; whole slice if empty."""
    n, height, width = masks.shape
    boxes = np.empty((n, 4), dtype=np.int64)
    for i, mask in enumerate(masks):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            boxes[i] = (0, height - 1, 0, width - 1)
        else:
            boxes[i] = (rows[0], rows[-1], cols[0], cols[-1])
    return boxes


def _crop(array: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    """``array[..., top:top+size, left:left+size]`` with zeros where the window leaves the image."""
    height, width = array.shape[-2:]
    out = np.zeros((*array.shape[:-2], size, size), dtype=array.dtype)
    r0, r1 = max(top, 0), min(top + size, height)
    c0, c1 = max(left, 0), min(left + size, width)
    if r0 < r1 and c0 < c1:
        out[..., r0 - top : r1 - top, c0 - left : c1 - left] = array[..., r0:r1, c0:c1]
    return out
