"""SliceDataset: brain-centred windows, reproducible per (seed, epoch, index), whole slices for validation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from training.data.dataset import SliceDataset
from training.data.errors import DataError


def test_whole_slices_in_case_order(make_stack) -> None:
    stacks = [make_stack("a", n=3), make_stack("b", n=2)]
    dataset = SliceDataset(stacks)
    assert len(dataset) == 5 and dataset.case_ids == ["a", "b"]
    assert dataset.locate(3) == (1, 0)
    sources, targets, mask = dataset[4]
    assert sources.shape == (1, 40, 40) and targets.shape == (1, 40, 40) and mask.dtype == torch.bool
    assert torch.equal(sources, torch.from_numpy(stacks[1].sources[1]))
    with pytest.raises(IndexError):
        dataset[5]


def test_windows_are_centred_inside_the_brain_box(make_stack) -> None:
    size, window = 40, 16
    rows, cols = np.mgrid[:size, :size]
    # A brain off the centre and away from the corners, so a window anchored anywhere else is seen.
    brain = (rows - 28) ** 2 + (cols - 25) ** 2 < 7**2
    where = (1 + rows * size + cols).astype(np.float32)  # each source pixel says where it is
    stack = dataclasses.replace(make_stack(n=1, size=size), sources=where[None, None], masks=brain[None])
    box_rows, box_cols = np.flatnonzero(brain.any(axis=1)), np.flatnonzero(brain.any(axis=0))
    dataset = SliceDataset([stack], window=window, seed=0)
    centres = []
    for epoch in range(40):
        dataset.set_epoch(epoch)
        sources, _, _ = dataset[0]
        assert sources.shape == (1, window, window)
        code = int(sources[0, window // 2, window // 2]) - 1  # the window's centre pixel
        centre = divmod(code, size)
        assert box_rows[0] <= centre[0] <= box_rows[-1] and box_cols[0] <= centre[1] <= box_cols[-1], (epoch, centre)
        centres.append(centre)
    # spread over the box, not one fixed spot
    assert len(set(centres)) > 20
    assert min(r for r, _ in centres) < 28 < max(r for r, _ in centres)
    assert min(c for _, c in centres) < 25 < max(c for _, c in centres)


def test_window_positions_depend_only_on_seed_epoch_and_index(make_stack) -> None:
    stacks = [make_stack(n=4)]
    first, second = SliceDataset(stacks, window=16, seed=3), SliceDataset(stacks, window=16, seed=3)
    second[0], second[2]  # reading other items first changes nothing
    assert all(torch.equal(a, b) for a, b in zip(first[1], second[1], strict=True))
    first.set_epoch(1)
    assert not torch.equal(first[1][0], second[1][0])
    assert not torch.equal(SliceDataset(stacks, window=16, seed=4)[1][0], second[1][0])


def test_windows_larger_than_the_slice_are_zero_padded(make_stack) -> None:
    dataset = SliceDataset([make_stack(n=1, size=40)], window=64)
    sources = dataset[0][0]
    assert sources.shape == (1, 64, 64)
    assert float(sources.sum()) == pytest.approx(float(make_stack(n=1).sources.sum()), rel=1e-6)


def test_rejects_cases_of_different_slice_shape(make_stack) -> None:
    with pytest.raises(DataError, match="differ in slice shape"):
        SliceDataset([make_stack("a", size=40), make_stack("b", size=48)])
    full = make_stack("a")
    empty = dataclasses.replace(full, sources=full.sources[:0], targets=full.targets[:0], masks=full.masks[:0])
    with pytest.raises(DataError, match="no training slices"):
        SliceDataset([empty])
