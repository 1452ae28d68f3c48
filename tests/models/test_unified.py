"""The unified SynNet: every subset of sources in, the missing modalities out, absent arms inert."""

from __future__ import annotations

import pytest
import torch

from training.models import create_model, is_any_to_any, model_config

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")

SMALL = {"features": 8, "depth": 3}
PATTERNS = torch.tensor([[1, 0, 0, 0], [0, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 1]], dtype=torch.float32)


def _small(fusion: str = "mean") -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("unified", 4, 4, **SMALL, fusion=fusion).eval()


def test_registered_as_any_to_any_with_four_arms_each_way() -> None:
    assert is_any_to_any("unified") and not is_any_to_any("synnet")
    assert model_config("unified", 4, 4) == {
        "arch": "unified",
        "n_src": 4,
        "n_dst": 4,
        "features": 64,
        "depth": 4,
        "fusion": "mean",
    }
    with pytest.raises(ValueError, match="all 4 modalities"):
        create_model("unified", 2, 1)
    with pytest.raises(ValueError, match="fusion must be one of mean, mean_max"):
        create_model("unified", 4, 4, fusion="sum")
    model = _small()
    assert len(model.encoders) == 4 and len(model.decoders) == 4


@pytest.mark.parametrize(("height", "width"), [(32, 48), (37, 53), (16, 17)])
def test_any_size_and_per_sample_availability(height: int, width: int) -> None:
    with torch.no_grad():
        out = _small()(torch.rand(4, 4, height, width), PATTERNS)
    assert out.shape == (4, 4, height, width) and torch.isfinite(out).all()


@pytest.mark.parametrize("fusion", ["mean", "mean_max"])
def test_a_missing_source_is_inert_whatever_its_channel_holds(fusion: str) -> None:
    model, x = _small(fusion), torch.rand(4, 4, 32, 32)
    garbage = x.clone()
    garbage[PATTERNS == 0] = torch.rand_like(garbage[PATTERNS == 0]) * 100
    with torch.no_grad():
        assert torch.equal(model(x, PATTERNS), model(garbage, PATTERNS))


def test_availability_changes_the_output_and_broadcasts() -> None:
    model, x = _small(), torch.rand(2, 4, 32, 32)
    with torch.no_grad():
        one = model(x, torch.tensor([1.0, 0, 0, 0]))
        two = model(x, torch.tensor([1.0, 0, 0, 1]))
        per_sample = model(x, torch.tensor([[1.0, 0, 0, 0], [1.0, 0, 0, 0]]))
    assert torch.equal(one, per_sample)
    assert not torch.allclose(one[:, 2], two[:, 2])  # T2 from T1 differs from T2 from T1 + FLAIR
    assert torch.equal(two[:, 0], torch.zeros_like(two[:, 0]))  # a present modality is not synthesized


def test_backward_reaches_the_present_arms_only() -> None:
    torch.manual_seed(0)
    model = create_model("unified", 4, 4, **SMALL).train()
    present = torch.tensor([[1.0, 0, 1, 0]] * 2)
    out = model(torch.rand(2, 4, 32, 32), present)
    out[:, 1].mean().backward()
    grads = [sum(float(p.grad.abs().sum()) for p in arm.parameters() if p.grad is not None) for arm in model.encoders]
    assert grads[0] > 0 and grads[2] > 0 and grads[1] == 0 and grads[3] == 0


@pytest.mark.parametrize("fusion", ["mean", "mean_max"])
def test_torchscript_round_trip_matches_eager(tmp_path, fusion: str) -> None:
    from training.export import any_to_any_example, export_torchscript

    model = _small(fusion)
    reloaded = export_torchscript(model, any_to_any_example(32), tmp_path / "model.pt")
    x, present = any_to_any_example(40, seed=1)
    with torch.no_grad():
        assert torch.allclose(reloaded(x, present), model(x, present), atol=1e-5)


def test_mean_max_mixes_mean_and_maximum_once_per_level() -> None:
    model, plain = _small("mean_max"), _small("mean")
    features = SMALL["features"]
    assert [m[0].in_channels for m in model.skip_mixers] == [2 * features] * SMALL["depth"]
    assert model.bottleneck[0].in_channels == 2 * features + 4 and plain.bottleneck[0].in_channels == features + 4
    assert len(plain.skip_mixers) == 0
