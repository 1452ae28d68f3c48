from __future__ import annotations

import numpy as np

from synnet.normalization import IntensityRange, NormalizationParams, brain_mask, denormalize, normalize


def _head(rng: np.random.Generator, scale: float) -> np.ndarray:
    image = np.zeros((40, 44, 12), dtype=np.float32)
    image[5:35, 6:38, 2:10] = scale * (100 + 50 * rng.random((30, 32, 8)))
    return image


def test_mask_is_union_of_nonzero_inputs() -> None:
    a = np.zeros((4, 4))
    b = np.zeros((4, 4))
    a[0, 0] = 1
    b[3, 3] = -2
    mask = brain_mask([a, b])
    assert mask.sum() == 2 and mask[0, 0] and mask[3, 3]


def test_normalization_is_invariant_to_site_scaling() -> None:
    rng = np.random.default_rng(0)
    image = _head(rng, 1.0)
    mask = brain_mask(image)
    x1, r1 = normalize(image, mask)
    x2, r2 = normalize(image * 37.0, mask)
    np.testing.assert_allclose(x1, x2, atol=1e-5)
    assert r2.hi == np.float32(r1.hi * 37.0) or abs(r2.hi / r1.hi - 37.0) < 1e-4


def test_range_zero_background_and_percentiles() -> None:
    rng = np.random.default_rng(1)
    image = _head(rng, 5.0)
    mask = brain_mask(image)
    x, value_range = normalize(image, mask, NormalizationParams(lower_percentile=1, upper_percentile=99))
    assert x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert np.all(x[~mask] == 0)
    inside = image[mask]
    assert value_range.lo == np.percentile(inside, 1)
    assert value_range.hi == np.percentile(inside, 99)
    # about 1 % of brain voxels saturate at each end
    assert 0.005 < np.mean(x[mask] == 1.0) < 0.02


def test_denormalize_inverts_inside_the_unclipped_range() -> None:
    rng = np.random.default_rng(2)
    image = _head(rng, 3.0)
    mask = brain_mask(image)
    x, value_range = normalize(image, mask)
    back = denormalize(x, mask, value_range)
    unclipped = mask & (x > 0) & (x < 1)
    np.testing.assert_allclose(back[unclipped], image[unclipped], rtol=1e-5)
    assert np.all(back[~mask] == 0)


def test_flat_and_empty_images_stay_finite() -> None:
    flat = np.full((8, 8), 7.0)
    x, value_range = normalize(flat, brain_mask(flat))
    assert np.isfinite(x).all() and value_range.hi > value_range.lo
    empty = np.zeros((8, 8))
    x, value_range = normalize(empty, brain_mask(empty))
    assert value_range == IntensityRange(lo=0.0, hi=1.0) and not x.any()
