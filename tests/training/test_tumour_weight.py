"""--tumour-weight: the tumour travels with its window and counts W times in the brain-only loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synnet.modalities import Modality
from training.data.augment import Augmenter, AugmentParams
from training.data.brats import LoadedCase
from training.data.dataset import BRAIN, TUMOUR, SliceDataset
from training.data.slices import extract_slices
from training.fitting.cli import make_config
from training.fitting.config import ConfigError
from training.fitting.regions import loss_weights, split_regions, warp_with_tumour
from training.losses import build_loss


def test_the_tumour_counts_w_times_and_no_map_leaves_the_brain_mask_as_it_was() -> None:
    brain = torch.zeros(1, 4, 4, dtype=torch.bool)
    brain[:, 1:, 1:] = True
    tumour = torch.zeros_like(brain)
    tumour[:, 0, 0] = tumour[:, 2, 2] = True  # (0, 0) lies outside the brain: it stays 0
    weights = loss_weights(brain, tumour, 5.0)
    assert weights.shape == (1, 1, 4, 4)
    assert weights[0, 0, 2, 2] == 5.0 and weights[0, 0, 0, 0] == 0.0 and weights[0, 0, 1, 1] == 1.0
    assert loss_weights(brain, None, 5.0) is not None and loss_weights(brain, None, 5.0).dtype == torch.bool
    regions = brain.to(torch.uint8) * BRAIN
    regions[tumour & brain] = TUMOUR
    got_brain, got_tumour = split_regions(regions)
    assert torch.equal(got_brain, brain) and torch.equal(got_tumour, tumour & brain)
    assert split_regions(brain)[1] is None


def test_a_weighted_loss_moves_towards_the_tumour_error() -> None:
    """An error inside the tumour costs more with W > 1; an error elsewhere costs less (a weighted mean)."""
    criterion = build_loss("joint_l1")
    brain = torch.ones(1, 32, 32, dtype=torch.bool)
    tumour = torch.zeros_like(brain)
    tumour[:, 10:20, 10:20] = True
    truth = torch.full((1, 1, 32, 32), 0.5)
    in_tumour, elsewhere = truth.clone(), truth.clone()
    in_tumour[:, :, 12:18, 12:18] += 0.3
    elsewhere[:, :, 24:30, 24:30] += 0.3
    plain, weighted = loss_weights(brain, tumour, 1.0), loss_weights(brain, tumour, 10.0)
    assert criterion(in_tumour, truth, weighted) > criterion(in_tumour, truth, plain)
    assert criterion(elsewhere, truth, weighted) < criterion(elsewhere, truth, plain)


def test_slices_carry_the_tumour_inside_the_brain_only_when_the_segmentation_is_loaded() -> None:
    shape = (24, 24, 6)
    images = {m: np.zeros(shape, np.float32) for m in (Modality.T1, Modality.T2)}
    for image in images.values():
        image[4:20, 4:20, :] = 100 + np.arange(16)[:, None, None]
    seg = np.zeros(shape, np.uint8)
    seg[0:10, 0:10, :] = 2  # partly outside the brain
    with_seg = extract_slices(LoadedCase("c", images, np.eye(4), seg), ["T1"], ["T2"], min_brain_fraction=0.1)
    assert with_seg.tumour is not None and with_seg.tumour.shape == with_seg.masks.shape
    assert with_seg.tumour.any() and not (with_seg.tumour & ~with_seg.masks).any()
    assert extract_slices(LoadedCase("c", images, np.eye(4)), ["T1"], ["T2"], min_brain_fraction=0.1).tumour is None


def test_the_dataset_gives_a_region_map_once_a_case_carries_its_tumour(make_stack) -> None:
    plain = make_stack("a", n=2, size=32)
    assert SliceDataset([plain])[0][2].dtype == torch.bool
    marked = make_stack("b", n=2, size=32)
    marked.tumour = marked.masks & (np.arange(32)[None, :, None] < 16)
    dataset = SliceDataset([plain, marked])
    first, last = dataset[0][2], dataset[3][2]
    assert first.dtype == last.dtype == torch.uint8
    assert set(first.unique().tolist()) == {0, BRAIN}  # a case without a segmentation: brain only
    assert set(last.unique().tolist()) == {0, BRAIN, TUMOUR}
    assert torch.equal(last > 0, torch.from_numpy(marked.masks[1]))


def test_the_tumour_rides_the_same_warp_as_the_images() -> None:
    """A target equal to the tumour indicator, warped with it, lands where the warped tumour is."""
    augmenter = Augmenter(AugmentParams(flips=True, max_rotation=30.0, max_scale=0.2), 32)
    size = augmenter.window
    brain = torch.ones(4, size, size, dtype=torch.bool)
    tumour = torch.zeros_like(brain)
    tumour[:, size // 3 : size // 2, size // 4 : size // 2 + 3] = True
    targets = tumour[:, None].float()
    sources = torch.rand(4, 1, size, size)
    _, warped_targets, _, warped_tumour = warp_with_tumour(
        augmenter, sources, targets, brain, tumour, torch.Generator().manual_seed(1)
    )
    assert warped_targets.shape == (4, 1, 32, 32) and warped_tumour.shape == (4, 32, 32)
    assert torch.equal(warped_targets[:, 0] > 0.5, warped_tumour)
    assert warped_tumour.any()


def test_the_option_needs_the_brain_only_loss_and_a_positive_weight() -> None:
    assert make_config({"src": "T1", "dst": "T2", "mask_loss": True, "tumour_weight": 4.0}).model.tumour_weight == 4.0
    with pytest.raises(ConfigError, match="--tumour-weight needs --mask-loss"):
        make_config({"src": "T1", "dst": "T2", "tumour_weight": 4.0})
    with pytest.raises(ConfigError, match="--tumour-weight must be positive"):
        make_config({"src": "T1", "dst": "T2", "mask_loss": True, "tumour_weight": 0.0})
