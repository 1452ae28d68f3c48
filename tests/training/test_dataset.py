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
    stack = make_stack(n=1, size=40)
    dataset = SliceDataset([stack], window=16, seed=0)
    rows = np.flatnonzero(stack.masks[0].any(axis=1))
    for epoch in range(20):
        dataset.set_epoch(epoch)
        sources, _, mask = dataset[0]
        assert sources.shape == (1, 16, 16)
        # the window's centre pixel lies inside the brain's bounding box, so the window holds brain
        assert bool(mask.any())
    assert rows[0] > 0  # the box is a strict part of the slice: windows really move


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
