"""Every registered model through the same checks: shape, any H×W, backward, TorchScript, overfit."""

from __future__ import annotations

import pytest
import torch

from float_tolerance import FLOAT64_RTOL, assert_close_to_scale
from training.models import create_model, is_any_to_any, list_models, model_config, register_model

# TorchScript is deprecated upstream but is this project's export format.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")

SMALL = {"features": 8, "depth": 3}
ARMS = [(1, 1), (2, 1), (3, 2)]  # SISO, MISO, MIMO
# the any-to-any model has its own tests (tests/models/test_unified.py)
PAIRWISE = [name for name in list_models() if not is_any_to_any(name)]


def _small(name: str, n_src: int, n_dst: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, n_src, n_dst, **SMALL)


def test_registry_lists_the_paper_networks() -> None:
    assert list_models() == ["cnn", "deconvnet", "synnet", "unet", "unified"]


def test_registry_rejects_bad_requests() -> None:
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        create_model("resnet", 1, 1)
    with pytest.raises(ValueError, match="n_src=0"):
        create_model("synnet", 0, 1)
    with pytest.raises(ValueError, match="unknown \\['width'\\]"):
        create_model("synnet", 1, 1, width=3)
    with pytest.raises(ValueError, match="already registered"):
        register_model("synnet")(lambda n_src, n_dst: torch.nn.Identity())


@pytest.mark.parametrize("name", PAIRWISE)
def test_model_config_records_every_hyper_parameter(name: str) -> None:
    expected = {"arch": name, "n_src": 2, "n_dst": 1, "features": 64, "depth": 4, "slices_per_source": 1}
    assert model_config(name, 2, 1) == expected
    assert model_config(name, 1, 3, features=8)["features"] == 8


@pytest.mark.parametrize("name", PAIRWISE)
@pytest.mark.parametrize(("n_src", "n_dst"), ARMS)
def test_forward_shape_and_odd_sizes(name: str, n_src: int, n_dst: int) -> None:
    model = _small(name, n_src, n_dst).eval()
    with torch.no_grad():
        for height, width in [(32, 48), (37, 53), (16, 17)]:
            out = model(torch.rand(2, n_src, height, width))
            assert out.shape == (2, n_dst, height, width)
            assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", PAIRWISE)
def test_default_width_and_depth_accept_the_smallest_slice(name: str) -> None:
    model = create_model(name, 1, 1).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 1, 16, 19)).shape == (1, 1, 16, 19)


@pytest.mark.parametrize("name", PAIRWISE)
def test_wrong_channel_count_is_rejected(name: str) -> None:
    model = _small(name, 2, 1).eval()
    with pytest.raises(ValueError, match=r"expected input of shape \(B, 2, H, W\), got \[1, 3, 32, 32\]"):
        model(torch.rand(1, 3, 32, 32))


@pytest.mark.parametrize("name", PAIRWISE)
@pytest.mark.parametrize(("n_src", "n_dst"), ARMS)
def test_backward_reaches_every_parameter(name: str, n_src: int, n_dst: int) -> None:
    model = _small(name, n_src, n_dst).train()
    out = model(torch.rand(2, n_src, 37, 53))
    out.square().mean().backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, param_name
        assert torch.isfinite(param.grad).all(), param_name
    assert any(float(p.grad.abs().sum()) > 0 for p in model.parameters())


# Scripting, freezing, tracing and memory layout must not change the function a model computes.
# These run in float64: each transformation runs other kernels (freezing folds BatchNorm into
# the convolutions, channels_last has its own), and in float32 their last-bit differences can
# flip a near-tied 2x2 max-pool index, which moves whole activations (see float_tolerance). In
# float64 the kernels agree to ~1e-15, so the comparison stays tight on every CPU.


def _small_float64(name: str, n_src: int, n_dst: int) -> torch.nn.Module:
    return _small(name, n_src, n_dst).eval().double()


@pytest.mark.parametrize("name", PAIRWISE)
@pytest.mark.parametrize(("n_src", "n_dst"), ARMS)
def test_torchscript_round_trip_freeze_and_trace(name: str, n_src: int, n_dst: int, tmp_path) -> None:
    model = _small_float64(name, n_src, n_dst)
    x = torch.rand(2, n_src, 37, 53, dtype=torch.float64)
    with torch.no_grad():
        expected = model(x)
        path = tmp_path / "model.pt"
        torch.jit.save(torch.jit.script(model), str(path))
        reloaded = torch.jit.load(str(path))
        assert_close_to_scale(reloaded(x), expected, FLOAT64_RTOL)
        other = torch.rand(1, n_src, 40, 21, dtype=torch.float64)  # the scripted model keeps any-size support
        assert_close_to_scale(reloaded(other), model(other), FLOAT64_RTOL)
        frozen = torch.jit.freeze(torch.jit.script(model))
        assert_close_to_scale(frozen(x), expected, FLOAT64_RTOL)
        traced = torch.jit.trace(model, x)  # a trace is specialized to its input's shape
        assert_close_to_scale(traced(x), expected, FLOAT64_RTOL)


@pytest.mark.parametrize("name", PAIRWISE)
def test_channels_last_gives_the_same_output(name: str) -> None:
    model = _small_float64(name, 2, 2)
    x = torch.rand(2, 2, 37, 53, dtype=torch.float64)
    with torch.no_grad():
        expected = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.to(memory_format=torch.channels_last))
    assert_close_to_scale(out, expected, FLOAT64_RTOL)


def _smooth_images(generator: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    coarse = torch.rand(shape[0], shape[1], shape[2] // 4, shape[3] // 4, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=shape[2:], mode="bilinear", align_corners=False)


@pytest.mark.parametrize("name", PAIRWISE)
def test_overfits_a_single_batch(name: str) -> None:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    x = _smooth_images(generator, (2, 2, 16, 16))
    target = torch.stack([x[:, 0] * x[:, 1], 1 - x[:, 0]], dim=1)  # a nonlinear two-target map
    model = create_model(name, 2, 2, features=8, depth=2).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(150):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] <= losses[0] / 10, (losses[0], losses[-1])
