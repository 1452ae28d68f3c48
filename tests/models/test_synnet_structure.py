"""SynNet is the paper's network: block composition, index unpooling, one arm per modality, FLOPs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import training.models.synnet as synnet_module
from training.models import create_model
from training.models.blocks import PoolingEncoderBlock


def _small(n_src: int, n_dst: int) -> synnet_module.SynNet:
    torch.manual_seed(0)
    return create_model("synnet", n_src, n_dst, features=8, depth=3).eval()


def test_blocks_follow_the_paper() -> None:
    model = create_model("synnet", 2, 3)
    assert len(model.encoders) == 2 and len(model.decoders) == 3
    for encoder in model.encoders:
        assert len(encoder.blocks) == 4  # 4 poolings by default
        for block in encoder.blocks:
            conv, norm, act = block.conv
            assert isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3) and conv.bias is not None
            assert conv.out_channels == 64 and isinstance(norm, nn.BatchNorm2d) and isinstance(act, nn.ReLU)
    assert model.bottleneck[0].in_channels == 2 * 64  # the arms are fused by concatenation
    for decoder in model.decoders:
        assert len(decoder.blocks) == 4
        for conv, norm, act in decoder.blocks:
            # unpooled features (64) concatenated with both arms' skips (2 × 64)
            assert conv.in_channels == 64 + 2 * 64 and conv.out_channels == 64 and conv.kernel_size == (3, 3)
            assert isinstance(norm, nn.BatchNorm2d) and isinstance(act, nn.ReLU)
        assert decoder.synthesis.kernel_size == (1, 1) and decoder.synthesis.out_channels == 1


def test_output_is_linear() -> None:
    model = _small(1, 1)
    with torch.no_grad():
        model.decoders[0].synthesis.bias.fill_(-5.0)  # a linear output can go negative; a ReLU'd one cannot
        assert model(torch.rand(1, 1, 32, 32)).max() < 0


def _record_unpool(monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor]:
    used: list[torch.Tensor] = []
    real = synnet_module.unpool

    def recording(x: torch.Tensor, indices: torch.Tensor, size: list[int]) -> torch.Tensor:
        used.append(indices)
        return real(x, indices, size)

    monkeypatch.setattr(synnet_module, "unpool", recording)
    return used


def _record_encoder_outputs(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    for module in model.modules():
        if isinstance(module, PoolingEncoderBlock):
            module.register_forward_hook(lambda _m, _i, out: outputs.append(out))
    return outputs


def test_single_arm_unpools_with_its_encoders_indices(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _small(1, 1)
    used = _record_unpool(monkeypatch)
    encoded = _record_encoder_outputs(model)
    with torch.no_grad():
        model(torch.rand(1, 1, 32, 48))
    own = [index for _, _, index in encoded]
    assert len(used) == 3
    for index in used:  # deepest level first
        assert torch.equal(index, own.pop())


def test_several_arms_unpool_with_the_indices_of_their_strongest_response(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _small(2, 1)
    used = _record_unpool(monkeypatch)
    encoded = _record_encoder_outputs(model)
    with torch.no_grad():
        model(torch.rand(1, 2, 32, 48))
    arm0, arm1 = encoded[:3], encoded[3:]
    for level, index in zip(reversed(range(3)), used, strict=True):
        strongest = torch.maximum(arm0[level][0], arm1[level][0])
        expected = F.max_pool2d_with_indices(strongest, 2, 2)[1]
        assert torch.equal(index, expected)


def test_output_depends_on_where_the_indices_point(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _small(1, 1)
    x = torch.rand(1, 1, 32, 48)
    with torch.no_grad():
        expected = model(x)
        real = synnet_module.unpool

        def shuffled(features: torch.Tensor, indices: torch.Tensor, size: list[int]) -> torch.Tensor:
            return real(features, indices.flip(-1), size)  # same values, wrong places

        monkeypatch.setattr(synnet_module, "unpool", shuffled)
        assert not torch.allclose(model(x), expected, atol=1e-4)


def test_each_decoder_arm_writes_its_own_target_channel() -> None:
    model = _small(2, 2)
    with torch.no_grad():
        model.decoders[1].synthesis.weight.zero_()
        model.decoders[1].synthesis.bias.fill_(0.25)
        out = model(torch.rand(1, 2, 32, 48))
    assert torch.all(out[:, 1] == 0.25) and out[:, 0].std() > 0


def test_every_source_arm_contributes() -> None:
    model = _small(2, 1)
    x = torch.rand(1, 2, 32, 48)
    with torch.no_grad():
        base = model(x)
        for arm in range(2):
            changed = x.clone()
            changed[:, arm] = torch.rand(1, 32, 48)
            assert not torch.allclose(model(changed), base)


def test_siso_costs_about_13_gflop_per_240_slice() -> None:
    model = create_model("synnet", 1, 1).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.rand(1, 1, 240, 240))
    assert 12.5e9 < counter.get_total_flops() < 13.1e9
