"""The intensity-distribution term (--histogram-weight): it scores histograms, not positions."""

from __future__ import annotations

import pytest
import torch

from training.fitting.cli import make_config
from training.fitting.config import ConfigError
from training.fitting.run import loss_kwargs
from training.losses import MIN_DISTRIBUTION_PIXELS, build_loss, distribution_distance, weighted_l1


def _brain(size: int = 32) -> torch.Tensor:
    mask = torch.zeros(2, 1, size, size, dtype=torch.bool)
    mask[:, :, 4:28, 6:26] = True
    return mask


def test_a_shuffled_target_has_no_distribution_distance_but_a_pixel_distance() -> None:
    target = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    brain = _brain()
    shuffled = target.clone()
    for b in range(2):
        inside = brain[b, 0]
        values = shuffled[b, 0][inside]
        shuffled[b, 0][inside] = values[torch.randperm(values.numel(), generator=torch.Generator().manual_seed(b))]
    assert float(distribution_distance(shuffled, target, brain)) == pytest.approx(0.0, abs=1e-7)
    assert float(weighted_l1(shuffled, target, None, brain)) > 0.2


def test_the_distance_is_the_shift_between_two_histograms_and_ignores_the_background() -> None:
    target = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    brain = _brain()
    shifted = target + 0.1
    shifted[~brain] = 5.0  # outside the brain: must not count
    assert float(distribution_distance(shifted, target, brain)) == pytest.approx(0.1, abs=1e-6)
    assert float(distribution_distance(shifted, target, brain.float() * 5)) == pytest.approx(0.1, abs=1e-6)


def test_windows_with_too_little_brain_are_skipped() -> None:
    target = torch.rand(2, 1, 32, 32)
    brain = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
    brain[0, 0, :8, :8] = True  # 64 pixels: counts
    brain[1, 0, 0, : MIN_DISTRIBUTION_PIXELS - 1] = True  # too few: skipped
    pred = target.clone()
    pred[1] += 1.0
    assert float(distribution_distance(pred, target, brain)) == pytest.approx(0.0, abs=1e-7)
    assert float(distribution_distance(pred, target, torch.zeros_like(brain))) == 0.0


def test_its_gradient_widens_a_prediction_that_lacks_the_bright_tail() -> None:
    target = torch.linspace(0, 1, 32 * 32).reshape(1, 1, 32, 32)
    pred = (0.5 + 0.2 * (target - 0.5)).requires_grad_(True)  # the right order, too narrow a range
    distribution_distance(pred, target).backward()
    brightest, darkest = pred.grad.flatten()[-1], pred.grad.flatten()[0]
    assert brightest < 0 < darkest  # descent raises the brightest voxels and lowers the darkest


def test_the_joint_losses_carry_the_term_only_when_asked() -> None:
    plain, with_term = build_loss("joint_l1"), build_loss("joint_l1", lambda_hist=10.0)
    assert "hist" not in plain.lambdas and with_term.lambdas["hist"] == 10.0
    target = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    pred = (target * 0.5).clone()
    brain = _brain()
    terms = with_term.terms(pred, target, brain)
    assert set(terms) == {"wl1", "wssim", "tv", "hist"}
    expected = plain(pred, target, brain) + 10.0 * distribution_distance(pred, target, brain)
    assert torch.allclose(with_term(pred, target, brain), expected, rtol=1e-5)


def test_the_option_reaches_the_loss_and_is_checked() -> None:
    config = make_config({"src": "T1", "dst": "T2", "loss": "joint", "mask_loss": True, "histogram_weight": 10.0})
    assert build_loss(config.model.loss, **loss_kwargs(config.model)).lambdas["hist"] == 10.0
    assert "lambda_hist" not in loss_kwargs(make_config({"src": "T1", "dst": "T2"}).model)
    with pytest.raises(ConfigError, match="--histogram-weight applies to the joint losses only"):
        make_config({"src": "T1", "dst": "T2", "loss": "l2", "histogram_weight": 10.0})
    with pytest.raises(ConfigError, match="--histogram-weight must be non-negative"):
        make_config({"src": "T1", "dst": "T2", "histogram_weight": -1.0})


def test_with_bands_the_thin_tail_weighs_as_much_as_the_bulk() -> None:
    target = torch.linspace(0, 1, 1000).reshape(1, 1, 40, 25) * 0.5
    target.view(-1)[-10:] = 1.0  # a bright tail: 1 % of the pixels
    tailless = target.clone()
    tailless.view(-1)[-10:] = 0.5
    whole = float(distribution_distance(tailless, target))
    banded = float(distribution_distance(tailless, target, None, (0, 50, 99, 100)))
    assert whole == pytest.approx(0.005, abs=1e-4)  # the tail's 1 % of a 0.5 gap
    assert banded == pytest.approx(0.5 / 3, abs=1e-4)  # one band of three is off by 0.5


def test_with_bands_the_spread_inside_a_band_is_free() -> None:
    target = torch.linspace(0, 1, 1000).reshape(1, 1, 40, 25)
    flat = torch.cat([torch.full((500,), float(target.view(-1)[:500].mean())),
                      torch.full((500,), float(target.view(-1)[500:].mean()))]).reshape(1, 1, 40, 25)
    assert float(distribution_distance(flat, target, None, (0, 50, 100))) == pytest.approx(0.0, abs=1e-6)
    assert float(distribution_distance(flat, target)) > 0.1


def test_the_bands_option_is_parsed_and_needs_the_term() -> None:
    config = make_config({"src": "T1", "dst": "T2", "histogram_weight": 10.0, "histogram_bands": "0,1,50,99,100"})
    assert config.model.histogram_bands == (0.0, 1.0, 50.0, 99.0, 100.0)
    loss = build_loss(config.model.loss, **loss_kwargs(config.model))
    assert loss.hist_bands == (0.0, 1.0, 50.0, 99.0, 100.0) and loss.config["hist_bands"] == [0, 1, 50, 99, 100]
    with pytest.raises(ConfigError, match="--histogram-bands needs --histogram-weight"):
        make_config({"src": "T1", "dst": "T2", "histogram_bands": "0,100"})
    for bad in ("50,101", "50", "10,5"):
        with pytest.raises(ConfigError, match="increasing percentiles"):
            make_config({"src": "T1", "dst": "T2", "histogram_weight": 1.0, "histogram_bands": bad})
