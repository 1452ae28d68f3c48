"""PSNR/SSIM checked against scikit-image and against hand-made cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from synnet.metrics import brain_scaled, evaluate, psnr, ssim, ssim_map
from synnet.normalization import brain_mask
from synnet.scores import MetricReport


def _reference_ssim(pred: np.ndarray, truth: np.ndarray, data_range: float) -> float:
    return structural_similarity(
        truth, pred, data_range=data_range, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )


@pytest.mark.parametrize("shape", [(64, 70), (31, 40, 22)])
def test_ssim_and_psnr_match_scikit_image_on_random_arrays(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    truth = rng.random(shape) * 1000
    pred = truth + rng.normal(0, 80, shape)
    data_range = float(truth.max() - truth.min())
    assert abs(ssim(pred, truth) - _reference_ssim(pred, truth, data_range)) < 1e-3
    assert abs(psnr(pred, truth) - peak_signal_noise_ratio(truth, pred, data_range=data_range)) < 1e-3


def test_metrics_match_scikit_image_on_phantom_anatomy(phantom_root) -> None:
    """Real anatomy (a generated case from the MNI template): T1 against a degraded copy."""
    from synnet.modalities import Modality
    from training.data.brats import find_cases, load_case

    case = find_cases(phantom_root)[0]
    volume = load_case(case, [Modality.T1]).images[Modality.T1]
    truth = volume[40:200, 40:200, 60:90].astype(np.float64)
    rng = np.random.default_rng(3)
    pred = truth * 0.9 + rng.normal(0, truth.std() * 0.1, truth.shape)
    data_range = float(truth.max() - truth.min())
    assert abs(ssim(pred, truth) - _reference_ssim(pred, truth, data_range)) < 1e-3
    assert abs(psnr(pred, truth) - peak_signal_noise_ratio(truth, pred, data_range=data_range)) < 1e-3
    slice_ = (slice(None), slice(None), 15)
    ours = ssim(pred[slice_], truth[slice_], data_range)
    assert abs(ours - _reference_ssim(pred[slice_], truth[slice_], data_range)) < 1e-3


def test_identical_images() -> None:
    rng = np.random.default_rng(1)
    image = rng.random((32, 32))
    assert ssim(image, image) == pytest.approx(1.0, abs=1e-12)
    assert psnr(image, image) == math.inf
    report = evaluate(image, image, image > 0.2)
    payload = report.model_dump(mode="json")
    assert payload["psnr"] is None and payload["psnr_brain"] is None and payload["identical"] is True
    assert payload["ssim"] == pytest.approx(1.0)
    json.dumps(payload, allow_nan=False)  # no inf/nan can reach JSON


def test_hand_computed_psnr() -> None:
    truth = np.zeros((16, 16))
    truth[0, 0] = 1.0  # data range 1
    pred = truth.copy()
    pred += 0.1  # mse 0.01 -> 20 dB
    assert psnr(pred, truth) == pytest.approx(20.0)
    assert psnr(pred, truth, data_range=10.0) == pytest.approx(40.0)


def test_masked_metrics_use_only_brain_voxels() -> None:
    rng = np.random.default_rng(2)
    truth = np.zeros((48, 48))
    truth[8:40, 8:40] = rng.random((32, 32)) + 0.5
    pred = truth.copy()
    pred[8:40, 8:40] += rng.normal(0, 0.05, (32, 32))
    mask = brain_mask(truth)
    scaled_p, scaled_t = brain_scaled(pred, mask), brain_scaled(truth, mask)
    expected_mse = np.mean((scaled_p[mask] - scaled_t[mask]) ** 2)
    report = evaluate(pred, truth, mask)
    assert report.psnr_brain == pytest.approx(10 * math.log10(1 / expected_mse))
    # Whatever happens outside the brain does not change in-brain scores; the whole-image ones see it.
    noisy_background = pred.copy()
    noisy_background[~mask] = rng.random(int((~mask).sum())) * 0.5
    noisy = evaluate(noisy_background, truth, mask)
    assert (noisy.psnr_brain, noisy.ssim_brain) == (report.psnr_brain, report.ssim_brain)
    assert noisy.psnr < report.psnr - 1 and noisy.ssim < report.ssim - 0.01


def test_brain_scores_ignore_site_scaling() -> None:
    rng = np.random.default_rng(4)
    truth = np.zeros((40, 40, 14))
    truth[5:35, 5:35, 1:13] = rng.random((30, 30, 12)) * 100 + 10
    pred = truth + np.where(truth > 0, rng.normal(0, 5, truth.shape), 0)
    mask = brain_mask(truth)
    a = evaluate(pred, truth, mask)
    b = evaluate(pred * 250.0, truth, mask)
    assert a.ssim_brain == pytest.approx(b.ssim_brain, abs=1e-6)
    assert a.psnr_brain == pytest.approx(b.psnr_brain, abs=1e-4)


def test_ssim_map_is_differentiable_and_rejects_bad_shapes() -> None:
    pred = torch.rand(2, 1, 24, 24, dtype=torch.float64, requires_grad=True)
    truth = torch.rand(2, 1, 24, 24, dtype=torch.float64)
    local = ssim_map(pred, truth)
    assert local.shape == (2, 1, 14, 14)
    local.mean().backward()
    assert torch.isfinite(pred.grad).all()
    with pytest.raises(ValueError, match="differ"):
        ssim_map(pred, truth[:, :, :20])
    with pytest.raises(ValueError, match=">= 11"):
        ssim_map(torch.rand(1, 1, 8, 30), torch.rand(1, 1, 8, 30))


def test_thin_volume_falls_back_to_slice_mean() -> None:
    rng = np.random.default_rng(5)
    truth = rng.random((30, 30, 4))
    pred = truth + rng.normal(0, 0.05, truth.shape)
    expected = np.mean([_reference_ssim(pred[..., k], truth[..., k], 1.0) for k in range(4)])
    assert ssim(pred, truth, data_range=1.0) == pytest.approx(expected, abs=1e-9)


def test_report_json_rounds_finite_values() -> None:
    payload = MetricReport(psnr=25.123456789, ssim=0.9, psnr_brain=30.0, ssim_brain=0.8).model_dump(mode="json")
    assert payload == {"psnr": 25.123457, "ssim": 0.9, "psnr_brain": 30.0, "ssim_brain": 0.8, "identical": False}


def test_a_flat_truth_is_a_clear_error_not_a_math_crash() -> None:
    from synnet.errors import SynnetError
    from synnet.metrics import evaluate

    truth = np.zeros((24, 24))
    pred = np.random.default_rng(0).random((24, 24))
    for score in (lambda: psnr(pred, truth), lambda: ssim(pred, truth), lambda: evaluate(pred, truth, truth == 0)):
        with pytest.raises(SynnetError, match="constant") as info:
            score()
        assert info.value.code == "flat_truth"
