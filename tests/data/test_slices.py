"""Axial slice extraction: which slices are kept, and normalization per volume over the source mask."""

from __future__ import annotations

import numpy as np
import pytest

from synnet.modalities import Modality
from synnet.normalization import IntensityRange, NormalizationParams, brain_mask, normalize
from training.data.brats import LoadedCase
from training.data.errors import DataError
from training.data.slices import brain_slice_indices, extract_slices, reference_ranges


def _mask_with_fractions(fractions: list[float], side: int = 10) -> np.ndarray:
    """(side, side, Z) mask whose slice z has round(fractions[z] * side**2) brain pixels."""
    mask = np.zeros((side, side, len(fractions)), bool)
    for z, fraction in enumerate(fractions):
        mask.reshape(-1, len(fractions))[: round(fraction * side * side), z] = True
    return mask


def test_brain_slice_indices_threshold() -> None:
    mask = _mask_with_fractions([0.0, 0.01, 0.05, 0.3, 0.04, 0.5, 0.0])
    np.testing.assert_array_equal(brain_slice_indices(mask, 0.05), [2, 3, 5])
    np.testing.assert_array_equal(brain_slice_indices(mask, 0.0), [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(brain_slice_indices(mask, 0.6), [])


@pytest.mark.parametrize(("mask", "fraction", "match"), [(np.ones((4, 4), bool), 0.1, "3D"), (None, 1.5, "1.5")])
def test_brain_slice_indices_rejects_bad_input(mask, fraction: float, match: str) -> None:
    mask = np.ones((4, 4, 3), bool) if mask is None else mask
    with pytest.raises(DataError, match=match):
        brain_slice_indices(mask, fraction)


def _synthetic_case() -> LoadedCase:
    """Sources T1, T2 share a box brain; FLAIR (a target) also has signal outside it."""
    rng = np.random.default_rng(0)
    shape = (16, 12, 8)
    brain = np.zeros(shape, bool)
    brain[3:13, 2:10, 1:6] = True  # slices 1-5: 80 of 192 pixels
    brain[3:5, 2:4, 6] = True  # slice 6: a sliver of 4 pixels
    t1 = np.where(brain, rng.uniform(100, 200, shape), 0).astype(np.float32)
    t2 = np.where(brain, rng.uniform(1000, 3000, shape), 0).astype(np.float32)
    flair = rng.uniform(50, 80, shape).astype(np.float32)  # nonzero everywhere
    return LoadedCase(
        case_id="synthetic",
        images={Modality.T1: t1, Modality.T2: t2, Modality.FLAIR: flair},
        affine=np.eye(4),
    )


def test_extract_slices_normalizes_per_volume_over_the_source_mask() -> None:
    case = _synthetic_case()
    params = NormalizationParams(lower_percentile=1.0, upper_percentile=99.0)
    stack = extract_slices(case, [Modality.T2, Modality.T1], [Modality.FLAIR], params, min_brain_fraction=0.1)

    mask = brain_mask([case.images[Modality.T1], case.images[Modality.T2]])
    np.testing.assert_array_equal(stack.slice_indices, [1, 2, 3, 4, 5])  # slice 6 is a 4-pixel sliver
    assert stack.sources.shape == (5, 2, 16, 12) and stack.sources.dtype == np.float32
    assert stack.targets.shape == (5, 1, 16, 12) and stack.targets.dtype == np.float32
    assert stack.masks.shape == (5, 16, 12) and stack.masks.dtype == bool
    assert len(stack) == 5 and stack.src == (Modality.T2, Modality.T1) and stack.dst == (Modality.FLAIR,)
    np.testing.assert_array_equal(stack.masks, np.moveaxis(mask[:, :, 1:6], -1, 0))

    # Per volume: identical to normalizing the whole volume, then slicing (not per slice).
    for channel, modality in enumerate(stack.src):
        whole, value_range = normalize(case.images[modality], mask, params)
        np.testing.assert_array_equal(stack.sources[:, channel], np.moveaxis(whole[:, :, 1:6], -1, 0))
        assert stack.ranges[modality] == value_range
    # The target is normalized inside the SOURCE mask: its signal outside the brain is dropped.
    assert np.all(stack.targets[:, 0][~stack.masks] == 0)
    assert stack.targets.min() >= 0 and stack.targets.max() <= 1 and stack.targets.max() > 0.99
    flair_in_brain = case.images[Modality.FLAIR][mask]
    assert stack.target_ranges[Modality.FLAIR].lo == pytest.approx(np.percentile(flair_in_brain, 1.0))
    assert set(stack.target_ranges) == {Modality.FLAIR}


def test_extract_slices_from_a_generated_case(loaded_phantom) -> None:
    stack = extract_slices(loaded_phantom, ["t1", "t1ce", "t2"], ["flair"], NormalizationParams())
    mask = brain_mask([loaded_phantom.images[m] for m in (Modality.T1, Modality.T1c, Modality.T2)])
    fractions = mask.mean(axis=(0, 1))
    kept = set(stack.slice_indices.tolist())
    assert 80 <= len(kept) < 155
    assert all(fractions[z] >= 0.05 for z in kept)
    assert all(fractions[z] < 0.05 for z in range(155) if z not in kept)
    assert stack.sources.shape[1:] == (3, 240, 240)
    raw = loaded_phantom.images[Modality.FLAIR]
    assert stack.target_ranges[Modality.FLAIR].hi == pytest.approx(np.percentile(raw[mask], 99.5))


def test_extract_slices_needs_every_modality_loaded() -> None:
    case = _synthetic_case()
    with pytest.raises(DataError, match=r"synthetic was loaded without T1c \(loaded: T1,T2,FLAIR\)"):
        extract_slices(case, [Modality.T1], [Modality.T1c])


def test_reference_ranges_are_the_median_over_cases() -> None:
    stacks = []
    for i, (lo, hi) in enumerate([(0.0, 100.0), (10.0, 300.0), (5.0, 30000.0)]):
        case = _synthetic_case()
        stack = extract_slices(case, [Modality.T1], [Modality.T2])
        stack.case_id = f"c{i}"
        stack.ranges[Modality.T2] = IntensityRange(lo=lo, hi=hi)
        stacks.append(stack)
    assert reference_ranges(stacks) == {Modality.T2: IntensityRange(lo=5.0, hi=300.0)}
