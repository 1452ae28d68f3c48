"""Intensity augmentation: other renderings of the same anatomy, inside the brain only, reproducible."""

from __future__ import annotations

import torch

from training.data.intensity import IntensityParams, augment_intensity


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    sources = torch.rand(6, 2, 40, 40, generator=generator)
    mask = torch.zeros(6, 40, 40, dtype=torch.bool)
    mask[:, 5:35, 8:32] = True
    return sources * mask[:, None], mask


def test_background_stays_zero_values_stay_in_range_and_the_same_seed_gives_the_same_batch() -> None:
    sources, mask = _batch()
    first = augment_intensity(sources, mask, torch.Generator().manual_seed(3))
    again = augment_intensity(sources, mask, torch.Generator().manual_seed(3))
    other = augment_intensity(sources, mask, torch.Generator().manual_seed(4))
    assert first.shape == sources.shape and torch.equal(first, again) and not torch.equal(first, other)
    assert float(first[:, :, ~mask[0]].abs().max()) == 0.0
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0
    assert torch.equal(sources, _batch()[0])  # the input is left as it was


def test_zero_ranges_change_nothing_and_each_image_gets_its_own_draw() -> None:
    sources, mask = _batch()
    none = IntensityParams(max_shift=0.0, log_gamma=0.0, bias=0.0, max_noise=0.0, max_blur=0.0)
    kept = augment_intensity(sources, mask, torch.Generator().manual_seed(0), none)
    assert torch.allclose(kept, sources.clamp_min(1e-6) * mask[:, None], atol=1e-6)
    changed = augment_intensity(sources, mask, torch.Generator().manual_seed(0)) - sources
    per_image = changed[:, :, mask[0]].mean(dim=-1)  # (B, k) mean change inside the brain
    assert per_image.std() > 0.01  # different gamma, shift, bias for each image and channel


def test_gamma_alone_keeps_the_order_of_intensities() -> None:
    sources, mask = _batch()
    gamma_only = IntensityParams(max_shift=0.0, log_gamma=0.5, bias=0.0, max_noise=0.0, max_blur=0.0)
    out = augment_intensity(sources, mask, torch.Generator().manual_seed(1), gamma_only)
    inside_in, inside_out = sources[0, 0][mask[0]], out[0, 0][mask[0]]
    assert torch.equal(torch.argsort(inside_in), torch.argsort(inside_out))
