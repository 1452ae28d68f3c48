"""Losses: hand-computed values, agreement with the SSIM metric, gradients (gradcheck), masks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from synnet.metrics import K1, ssim
from training.losses import (
    PAPER_LAMBDAS,
    JointLoss,
    build_loss,
    edge_weights,
    l2,
    list_losses,
    ssim_loss,
    total_variation,
    weighted_l2,
    weighted_ssim_loss,
)


def _pair(shape: tuple[int, ...] = (2, 2, 14, 15), dtype: torch.dtype = torch.float64, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=generator, dtype=dtype)
    pred = (target + 0.2 * torch.randn(shape, generator=generator, dtype=dtype)).clamp(0, 1)
    return pred, target


def _mask(shape: tuple[int, ...] = (2, 1, 14, 15), seed: int = 1) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) > 0.3


# --- fixed values on hand-made inputs -------------------------------------------------------


def test_l2_and_weighted_l2_hand_values() -> None:
    pred = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    target = torch.zeros_like(pred)
    assert l2(pred, target).item() == pytest.approx(3.5)  # (0 + 1 + 4 + 9) / 4
    mask = torch.tensor([[[[True, False], [False, True]]]])
    assert l2(pred, target, mask).item() == pytest.approx(4.5)  # (0 + 9) / 2
    weights = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    assert weighted_l2(pred, target, weights).item() == pytest.approx(12.5)  # (0 + 2 + 12 + 36) / 4


def test_ssim_loss_of_two_constant_images_is_the_luminance_term() -> None:
    pred, target = torch.full((1, 1, 12, 12), 0.5), torch.full((1, 1, 12, 12), 0.25)
    c1 = K1**2
    expected = 1 - (2 * 0.5 * 0.25 + c1) / (0.5**2 + 0.25**2 + c1)  # no variance: structure term is 1
    assert ssim_loss(pred, target).item() == pytest.approx(expected, rel=1e-5)


def test_total_variation_hand_values() -> None:
    x = torch.tensor([[[[0.0, 3.0], [4.0, 0.0]]]])  # one position with p = 4, q = 3
    eps = 1e-8
    assert total_variation(x, eps=eps).item() == pytest.approx(math.sqrt(25 + eps) - math.sqrt(eps))
    ramp = (0.1 * torch.arange(6.0)).reshape(1, 1, 6, 1).expand(1, 1, 6, 5)  # p = 0.1, q = 0
    assert total_variation(ramp, eps=eps).item() == pytest.approx(math.sqrt(0.01 + eps) - math.sqrt(eps))


def test_identical_images_cost_nothing() -> None:
    _, target = _pair()
    for loss in (l2, ssim_loss, build_loss("wl2"), build_loss("ssim")):
        assert abs(loss(target, target).item()) < 1e-12
    flat = torch.full((1, 1, 12, 12), 0.3)
    assert total_variation(flat).item() == 0.0
    assert build_loss("joint")(flat, flat).item() == pytest.approx(0.0, abs=1e-6)


# --- edge weights ----------------------------------------------------------------------------


def test_edge_weights_of_a_step_peak_beside_the_step() -> None:
    step = torch.zeros(1, 1, 8, 10)
    step[..., 5:] = 1.0
    omega = edge_weights(step, w=2.0)
    expected = torch.ones(1, 1, 8, 10)
    expected[..., 4:6] = 3.0  # the Sobel response is equal on both columns next to the step
    torch.testing.assert_close(omega, expected)


def test_edge_weights_are_one_on_flat_images_and_never_differentiated() -> None:
    flat = torch.full((2, 3, 12, 12), 0.7, requires_grad=True)
    omega = edge_weights(flat, w=5.0)
    assert not omega.requires_grad
    torch.testing.assert_close(omega, torch.ones_like(omega))


def test_edge_weights_lie_in_one_to_one_plus_w_per_image() -> None:
    _, target = _pair()
    omega = edge_weights(target, w=4.0)
    assert omega.shape == target.shape and omega.min() >= 1.0
    torch.testing.assert_close(omega.amax(dim=(2, 3)), torch.full((2, 2), 5.0, dtype=torch.float64))


# --- one SSIM: the loss is the metric --------------------------------------------------------


def test_one_minus_ssim_loss_is_the_metric() -> None:
    pred, target = _pair((1, 1, 24, 31))
    metric = ssim(pred[0, 0].numpy(), target[0, 0].numpy(), data_range=1.0)
    assert 1 - ssim_loss(pred, target).item() == pytest.approx(metric, abs=1e-10)


def test_one_minus_masked_ssim_loss_is_the_masked_metric() -> None:
    pred, target = _pair((1, 1, 24, 31))
    mask = _mask((1, 1, 24, 31))
    metric = ssim(pred[0, 0].numpy(), target[0, 0].numpy(), data_range=1.0, mask=mask[0, 0].numpy())
    assert 1 - ssim_loss(pred, target, mask).item() == pytest.approx(metric, abs=1e-10)


def test_weighted_ssim_with_unit_weights_is_ssim_loss() -> None:
    pred, target = _pair()
    mask = _mask()
    ones = torch.ones_like(target)
    for m in (None, mask):
        assert weighted_ssim_loss(pred, target, ones, m).item() == pytest.approx(ssim_loss(pred, target, m).item())
        assert weighted_l2(pred, target, ones, m).item() == pytest.approx(l2(pred, target, m).item())


def test_weighted_ssim_crops_the_weights_like_the_map() -> None:
    pred, target = _pair((1, 1, 13, 13))  # a 3×3 SSIM map: weights (5:8, 5:8) matter, the rest not
    weights = torch.ones_like(target)
    weights[..., :5, :] = 100.0
    weights[..., 8:, :] = 100.0
    assert weighted_ssim_loss(pred, target, weights).item() == pytest.approx(ssim_loss(pred, target).item())


# --- masks -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list_losses())
def test_loss_ignores_pixels_outside_the_mask(name: str) -> None:
    pred, target = _pair((2, 2, 24, 15))
    mask = torch.zeros(2, 1, 24, 15, dtype=torch.bool)
    mask[..., 17:20, 6:9] = True
    changed = pred.clone()
    changed[..., :3, :] = 0.9  # outside the mask and every SSIM window centred in it (rows ≥ 12)
    loss = build_loss(name)
    assert loss(changed, target, mask).item() == pytest.approx(loss(pred, target, mask).item())


def test_shapes_are_checked_with_their_values() -> None:
    pred, target = _pair()
    with pytest.raises(ValueError, match=r"pred: \[2, 2, 14, 15\] and target: \[2, 2, 14, 14\]"):
        l2(pred, target[..., :14])
    with pytest.raises(ValueError, match=r"got \[2, 3, 14, 15\]"):
        build_loss("joint")(pred, target, torch.ones(2, 3, 14, 15))


# --- gradients -------------------------------------------------------------------------------


def test_total_variation_gradient_is_finite_on_a_constant_image() -> None:
    flat = torch.full((1, 1, 12, 12), 0.5, requires_grad=True)
    total_variation(flat).backward()
    assert torch.isfinite(flat.grad).all() and flat.grad.abs().max() == 0
    pred = torch.zeros(1, 1, 16, 16, requires_grad=True)
    build_loss("joint")(pred, torch.zeros(1, 1, 16, 16)).backward()
    assert torch.isfinite(pred.grad).all()


@pytest.mark.parametrize("masked", [False, True])
def test_gradcheck_of_the_functions(masked: bool) -> None:
    pred, target = _pair((1, 2, 12, 13))
    pred.requires_grad_(True)
    target.requires_grad_(True)
    mask = _mask((1, 1, 12, 13)) if masked else None
    weights = edge_weights(target)
    assert torch.autograd.gradcheck(lambda p, t: l2(p, t, mask), (pred, target))
    assert torch.autograd.gradcheck(lambda p, t: ssim_loss(p, t, mask), (pred, target))
    assert torch.autograd.gradcheck(lambda p, t: weighted_l2(p, t, weights, mask), (pred, target))
    assert torch.autograd.gradcheck(lambda p, t: weighted_ssim_loss(p, t, weights, mask), (pred, target))
    assert torch.autograd.gradcheck(lambda p: total_variation(p, mask), (pred,))


@pytest.mark.parametrize("name", list_losses())
def test_gradcheck_of_the_modules(name: str) -> None:
    pred, target = _pair((1, 2, 12, 13))
    pred.requires_grad_(True)
    loss = build_loss(name)
    # ω depends on the target only and is held fixed, so the gradient is checked w.r.t. pred
    assert torch.autograd.gradcheck(lambda p: loss(p, target, _mask((1, 1, 12, 13))), (pred,))


# --- the joint loss and the factory ----------------------------------------------------------


def test_joint_loss_is_the_lambda_weighted_sum_of_its_terms() -> None:
    pred, target = _pair()
    mask = _mask()
    loss = JointLoss()
    assert loss.lambdas == PAPER_LAMBDAS == {"wl2": 10.0, "wssim": 5.0, "tv": 0.5}
    omega = edge_weights(target, loss.edge_weight)
    expected = (
        10.0 * weighted_l2(pred, target, omega, mask)
        + 5.0 * weighted_ssim_loss(pred, target, omega, mask)
        + 0.5 * total_variation(pred, mask)
    )
    assert loss(pred, target, mask).item() == pytest.approx(expected.item())


def test_build_loss_passes_options_and_describes_itself() -> None:
    assert list_losses() == ["l2", "wl2", "ssim", "joint", "joint_l1"]
    assert build_loss("joint_l1").lambdas == {"wl1": 10.0, "wssim": 5.0, "tv": 0.5}
    joint = build_loss("joint", lambda_tv=0.0, edge_weight=1.0)
    assert joint.lambdas == {"wl2": 10.0, "wssim": 5.0, "tv": 0.0}
    assert joint.config["name"] == "joint" and joint.config["edge_weight"] == 1.0
    assert build_loss("l2").lambdas == {"l2": 1.0}
    with pytest.raises(ValueError, match="unknown loss 'mae'"):
        build_loss("mae")


def test_float32_joint_loss_trains_toward_the_target() -> None:
    pred, target = _pair((2, 1, 16, 16), dtype=torch.float32)
    pred = pred.clone().requires_grad_(True)
    loss = build_loss("joint")
    optimizer = torch.optim.SGD([pred], lr=0.01)
    first = loss(pred, target).item()
    for _ in range(20):
        optimizer.zero_grad()
        value = loss(pred, target)
        value.backward()
        optimizer.step()
    assert math.isfinite(value.item()) and value.item() < first
    assert np.isfinite(pred.detach().numpy()).all()


def test_losses_compute_in_float32_inside_autocast() -> None:
    pred, target = _pair((2, 1, 16, 16), dtype=torch.float32)
    for name in list_losses():
        loss = build_loss(name)
        expected = loss(pred, target)
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            value = loss(pred.bfloat16(), target)
        assert value.dtype == torch.float32
        assert value.item() == pytest.approx(loss(pred.bfloat16().float(), target).item(), rel=1e-5)
        assert value.item() == pytest.approx(expected.item(), rel=0.05)


def test_joint_l1_differs_from_joint_only_in_its_intensity_term() -> None:
    pred, target = _pair((2, 1, 24, 24), dtype=torch.float64)
    l1_terms = build_loss("joint_l1").terms(pred, target)
    l2_terms = build_loss("joint").terms(pred, target)
    weights = edge_weights(target)
    assert torch.allclose(l1_terms["wl1"], (weights * (pred - target).abs()).mean())
    assert torch.equal(l1_terms["wssim"], l2_terms["wssim"]) and torch.equal(l1_terms["tv"], l2_terms["tv"])
    assert float(l1_terms["wl1"]) > float(l2_terms["wl2"])  # errors below 1: |e| > e², more weight on small levels
