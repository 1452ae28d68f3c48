"""BraSyn challenge scoring: whole-volume percentile scaling, tumour / rest SSIM, whole-volume PSNR."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from synnet.metrics import brasyn_scaled, brasyn_scores

SHAPE = (24, 26, 22)


def _head(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth positive 'brain' inside zero background, and a box-shaped 'tumour' label map."""
    rng = np.random.default_rng(seed)
    volume = gaussian_filter(rng.random(SHAPE), 0.7) * 1000 + 200
    grid = np.indices(SHAPE)
    centre = (np.array(SHAPE) - 1)[:, None, None, None] / 2
    brain = (((grid - centre) / (np.array(SHAPE)[:, None, None, None] * 0.4)) ** 2).sum(0) < 1
    seg = np.zeros(SHAPE, dtype=np.uint8)
    seg[10:15, 9:14, 8:13] = 2
    seg[11:13, 10:12, 9:11] = 4
    return np.where(brain, volume, 0.0), seg


def _reference_map(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Full-size SSIM map from scipy: mode 'mirror' is torch's 'reflect'; truncate 3.5 gives 11 taps at sigma 1.5."""
    data_range = max(np.ptp(pred), np.ptp(truth))
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        return gaussian_filter(x, 1.5, mode="mirror", truncate=3.5)

    mu_p, mu_t = blur(pred), blur(truth)
    var_p, var_t = blur(pred * pred) - mu_p**2, blur(truth * truth) - mu_t**2
    cov = blur(pred * truth) - mu_p * mu_t
    return (2 * mu_p * mu_t + c1) * (2 * cov + c2) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))


def test_scaling_uses_whole_volume_percentiles_and_a_lower_bound_of_zero() -> None:
    volume = np.linspace(-1.0, 9.0, 2001).reshape(3, 23, 29)  # equally spaced: percentiles are exact
    scaled = brasyn_scaled(volume)
    hi = -1.0 + 0.995 * 10.0  # 99.5th percentile; the 0.5th (-0.95) is raised to 0
    np.testing.assert_allclose(scaled, np.clip(volume, 0.0, hi) / hi, rtol=1e-12, atol=1e-15)
    assert scaled.min() == 0.0 and scaled.max() == 1.0
    assert np.count_nonzero(scaled == 0.0) == np.count_nonzero(volume <= 0.0)  # all negatives clip to 0


def test_scaling_keeps_a_positive_lower_bound() -> None:
    volume = np.linspace(10.0, 20.0, 2001)
    lo, hi = 10.0 + 0.005 * 10.0, 10.0 + 0.995 * 10.0
    np.testing.assert_allclose(brasyn_scaled(volume), (np.clip(volume, lo, hi) - lo) / (hi - lo), rtol=1e-12)


def test_scaling_counts_background_unlike_in_brain_scaling() -> None:
    """With 90 % zero background the 99.5th percentile is the brain's 95th: 5 % of the brain saturates."""
    volume = np.zeros(20000)
    volume[:2000] = np.linspace(1.0, 2.0, 2000)
    saturated = np.count_nonzero(brasyn_scaled(volume)[:2000] == 1.0) / 2000
    assert saturated == pytest.approx(0.05, abs=1e-3)


def test_flat_volume_scales_to_zeros() -> None:
    assert not brasyn_scaled(np.full(SHAPE, 7.0)).any()


def test_identical_volumes_score_perfectly() -> None:
    truth, seg = _head()
    scores = brasyn_scores(truth, truth.copy(), seg)
    assert scores["psnr_brasyn"] == math.inf
    assert scores["ssim_brasyn_tumour"] == pytest.approx(1.0, rel=1e-12)
    assert scores["ssim_brasyn_rest"] == pytest.approx(1.0, rel=1e-12)


def test_positive_affine_change_of_units_is_invisible() -> None:
    truth, seg = _head()
    scores = brasyn_scores(3.0 * truth + 7.0, truth, seg)  # background 7 becomes the lower bound
    assert scores["psnr_brasyn"] > 120
    assert scores["ssim_brasyn_tumour"] == pytest.approx(1.0, rel=1e-9)
    assert scores["ssim_brasyn_rest"] == pytest.approx(1.0, rel=1e-9)


def test_known_offset_gives_known_psnr() -> None:
    """Truth half 0 / half 1 (scaling leaves it as is); pred adds 0.5 on a tenth of the volume: MSE 0.025."""
    truth = np.zeros((20, 20, 20))
    truth[10:] = 1.0
    pred = truth.copy()
    pred[:2] += 0.5  # 800 of 8000 voxels, all in the zero half, so pred's percentiles stay 0 and 1
    expected = 10 * math.log10(1 / (0.1 * 0.5**2))
    assert brasyn_scores(pred, truth, None)["psnr_brasyn"] == pytest.approx(expected, rel=1e-9)


def _shuffled_in(volume: np.ndarray, region: np.ndarray, seed: int) -> np.ndarray:
    """``volume`` with its voxels in ``region`` permuted: same histogram, so the same percentiles and scaling."""
    out = volume.copy()
    out[region] = np.random.default_rng(seed).permutation(volume[region])
    return out


def test_tumour_and_rest_are_masked_before_ssim() -> None:
    """Both images are zeroed outside the region scored, so an error in one region cannot reach the other."""
    truth, seg = _head()
    tumour, rest_of_brain = seg > 0, (truth > 0) & (seg == 0)
    inside = brasyn_scores(_shuffled_in(truth, tumour, 5), truth, seg)
    assert inside["ssim_brasyn_rest"] == pytest.approx(1.0, rel=1e-12)
    assert inside["ssim_brasyn_tumour"] < 0.99  # lenient: the shared tumour edge dominates the masked SSIM
    outside = brasyn_scores(_shuffled_in(truth, rest_of_brain, 6), truth, seg)
    assert outside["ssim_brasyn_tumour"] == pytest.approx(1.0, rel=1e-12)
    assert outside["ssim_brasyn_rest"] < 0.99


def test_ssim_matches_an_independent_full_map() -> None:
    """Mean of a reflect-padded full-size SSIM map (scipy) over the tumour and over the rest, background included."""
    truth, seg = _head(1)
    noise = np.random.default_rng(4).normal(0.0, 100.0, SHAPE)
    pred = gaussian_filter(truth, 1.0) * 0.8 + (30.0 + noise) * (truth > 0)
    pred_s, truth_s = brasyn_scaled(pred), brasyn_scaled(truth)
    tumour = seg > 0
    want_tumour = _reference_map(pred_s * tumour, truth_s * tumour)[tumour].mean()
    want_rest = _reference_map(pred_s * ~tumour, truth_s * ~tumour)[~tumour].mean()
    scores = brasyn_scores(pred, truth, seg)
    assert scores["ssim_brasyn_tumour"] == pytest.approx(want_tumour, rel=1e-6)
    assert scores["ssim_brasyn_rest"] == pytest.approx(want_rest, rel=1e-6)
    assert want_tumour < 0.99 and want_rest < 0.99  # the comparison is not between two ones
    mse = np.mean((pred_s - truth_s) ** 2)
    assert scores["psnr_brasyn"] == pytest.approx(10 * math.log10(1 / mse), rel=1e-9)


def test_without_seg_tumour_is_nan_and_rest_is_the_whole_volume() -> None:
    truth, seg = _head(2)
    pred = gaussian_filter(truth, 1.0)
    no_seg = brasyn_scores(pred, truth, None)
    assert math.isnan(no_seg["ssim_brasyn_tumour"])
    whole = _reference_map(brasyn_scaled(pred), brasyn_scaled(truth)).mean()
    assert no_seg["ssim_brasyn_rest"] == pytest.approx(whole, rel=1e-6)
    empty = brasyn_scores(pred, truth, np.zeros(SHAPE, dtype=np.uint8))
    assert math.isnan(empty["ssim_brasyn_tumour"])
    assert empty["ssim_brasyn_rest"] == pytest.approx(no_seg["ssim_brasyn_rest"], rel=1e-12)
    with_seg = brasyn_scores(pred, truth, seg)
    assert with_seg["ssim_brasyn_rest"] != pytest.approx(no_seg["ssim_brasyn_rest"], rel=1e-6)


def test_rejects_mismatched_shapes_and_thin_volumes() -> None:
    truth, seg = _head()
    with pytest.raises(ValueError, match="shapes differ"):
        brasyn_scores(truth[:-1], truth, seg)
    with pytest.raises(ValueError, match="shapes differ"):
        brasyn_scores(truth, truth, seg[:-1])
    with pytest.raises(ValueError, match="every side >= 11"):
        brasyn_scores(truth[..., :5], truth[..., :5], None)
