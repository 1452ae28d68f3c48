"""Augmentation: one transform for every channel and the mask, reproducible from its generator."""

from __future__ import annotations

import math

import pytest
import torch

from float_tolerance import FLOAT32_RTOL, assert_close_to_scale
from training.data.augment import NO_AUGMENTATION, Augmenter, AugmentParams


def _batch(batch: int = 3, size: int = 40) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    image = torch.rand(batch, 1, size, size)
    sources = torch.cat([image, 2 * image], dim=1)
    targets = image.clone()
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    mask = ((rows - size / 2) ** 2 + (cols - size / 2) ** 2 < (size / 3) ** 2).expand(batch, size, size)
    return sources, targets, mask


def test_window_leaves_room_for_the_largest_rotation_at_the_smallest_scale() -> None:
    params = AugmentParams(max_rotation=10.0, max_scale=0.1)
    expected = 32 * (math.cos(math.radians(10)) + math.sin(math.radians(10))) / 0.9
    assert Augmenter.window_for(params, 32) == math.ceil(expected) + 2
    assert Augmenter.window_for(NO_AUGMENTATION, 32) == 32


def test_without_augmentation_it_is_an_exact_centre_crop() -> None:
    sources, targets, mask = _batch()
    out = Augmenter(NO_AUGMENTATION, 24)(sources, targets, mask, torch.Generator().manual_seed(0))
    assert torch.equal(out[0], sources[..., 8:32, 8:32])
    assert torch.equal(out[1], targets[..., 8:32, 8:32])
    assert torch.equal(out[2], mask[..., 8:32, 8:32])


def test_every_channel_gets_the_same_transform() -> None:
    sources, targets, mask = _batch()
    augmenter = Augmenter(AugmentParams(max_rotation=15, max_scale=0.2), 28)
    out_src, out_dst, out_mask = augmenter(sources, targets, mask, torch.Generator().manual_seed(1))
    assert out_src.shape == (3, 2, 28, 28) and out_dst.shape == (3, 1, 28, 28) and out_mask.shape == (3, 28, 28)
    assert out_mask.dtype == torch.bool
    assert_close_to_scale(out_src[:, 1], 2 * out_src[:, 0])
    assert_close_to_scale(out_dst[:, 0], out_src[:, 0])
    # the items of the batch draw different transforms
    assert not torch.allclose(out_src[0], out_src[1])


def test_flips_alone_are_exact_and_the_mask_follows_the_image() -> None:
    sources, targets, mask = _batch(batch=16)
    mask = mask.clone()
    mask[:, :20, :] = False  # break the symmetry so flips are visible in the mask
    augmenter = Augmenter(AugmentParams(flips=True, max_rotation=0, max_scale=0), 40)
    out_src, _, out_mask = augmenter(sources, targets, mask, torch.Generator().manual_seed(2))
    for i in range(16):
        candidates = [sources[i], sources[i].flip(-1), sources[i].flip(-2), sources[i].flip(-1, -2)]
        tolerance = FLOAT32_RTOL * float(sources[i].abs().max())
        matches = [j for j, c in enumerate(candidates) if torch.allclose(out_src[i], c, rtol=0, atol=tolerance)]
        assert len(matches) == 1
        flipped_mask = [mask[i], mask[i].flip(-1), mask[i].flip(-2), mask[i].flip(-1, -2)][matches[0]]
        assert torch.equal(out_mask[i], flipped_mask)


def test_same_generator_seed_same_output() -> None:
    sources, targets, mask = _batch()
    augmenter = Augmenter(AugmentParams(), 24)
    first = augmenter(sources, targets, mask, torch.Generator().manual_seed(5))
    second = augmenter(sources, targets, mask, torch.Generator().manual_seed(5))
    third = augmenter(sources, targets, mask, torch.Generator().manual_seed(6))
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not torch.equal(first[0], third[0])


def test_rejects_ranges_outside_small_transforms() -> None:
    with pytest.raises(ValueError, match="max_rotation"):
        AugmentParams(max_rotation=90)
    with pytest.raises(ValueError, match="max_scale"):
        AugmentParams(max_scale=0.7)
