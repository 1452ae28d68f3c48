"""The service's speed levers that bench/serve_speed.py measures: NHWC strides for one-channel
inputs, as the store hands them to the network; device defaults for the layout and the batching
delay; the stack of cropped brain slices that the network runs; and gzip deflated on several threads."""

from __future__ import annotations

import gzip
import zlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from stand_in_manifests import stand_in_manifest

from synnet.imageio import gzip_bytes
from synnet.inference import slice_stack
from synnet.settings import Settings
from synnet.store import LoadedModel, as_channels_last, default_channels_last


def test_one_channel_input_gets_nhwc_strides_and_keeps_its_values() -> None:
    x = torch.rand(2, 1, 32, 48)
    # Why .contiguous(memory_format=...) is not enough: with one channel it returns x as it is.
    assert x.contiguous(memory_format=torch.channels_last).stride() == x.stride() == (1536, 1536, 48, 1)
    y = as_channels_last(x)
    assert y.stride() == (1536, 1, 48, 1) and torch.equal(y, x)
    already = torch.rand(2, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    assert as_channels_last(already) is already


class ReportsChannelStride(torch.nn.Module):
    """A stand-in network whose output is the channel stride of the input it was handed."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x, float(x.stride(1)))


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
@pytest.mark.parametrize("channels_last", [True, False])
def test_the_store_hands_a_one_source_network_the_layout_it_was_loaded_with(channels_last: bool) -> None:
    """What bench/serve_speed.py measured the lever on: a one-channel input reaches the network NHWC
    (channel stride 1) on CPU, not as an NCHW tensor that merely counts as channels_last."""
    module = torch.jit.script(ReportsChannelStride())
    model = LoadedModel(stand_in_manifest("m", "T1", "T2"), module, torch.device("cpu"), channels_last=channels_last)
    seen = model.forward(torch.rand(2, 1, 16, 24))
    assert torch.all(seen == (1 if channels_last else 16 * 24))


def test_layout_and_batching_delay_defaults_depend_on_the_device() -> None:
    assert default_channels_last(torch.device("cpu")) and not default_channels_last(torch.device("cuda"))
    settings = Settings(max_batch_delay_s=None)
    assert settings.batch_delay_for("cpu") == 0.0 and settings.batch_delay_for("cuda") == 0.01
    settings = Settings(max_batch_delay_s=0.05)
    assert settings.batch_delay_for("cuda") == 0.05


def test_slice_stack_holds_the_brain_slices_cropped_to_one_aligned_box() -> None:
    mask = np.zeros((64, 48, 5), bool)
    mask[10:30, 5:20, 1] = True
    mask[12:40, 8:25, 3] = True
    x = np.random.default_rng(0).random((2, 64, 48, 5), dtype=np.float32)
    manifest = SimpleNamespace(input=SimpleNamespace(multiple_of=16, min_size=16, context_slices=0), dst=["T2"])
    stack = slice_stack(x, mask, manifest)  # type: ignore[arg-type]
    assert (stack.stats.run, stack.stats.skipped) == (2, 3) and stack.slices.tolist() == [1, 3]
    assert (stack.rows, stack.cols) == (slice(0, 48), slice(0, 32))
    assert stack.x.shape == (2, 2, 48, 32) and stack.x.flags.c_contiguous
    np.testing.assert_array_equal(stack.x[1], x[:, 0:48, 0:32, 3])
    whole = slice_stack(x, mask, manifest, crop=False)  # type: ignore[arg-type]
    assert whole.x.shape == (2, 2, 64, 48)


@pytest.mark.parametrize("size", [0, 1000, 9 * 1024 * 1024 + 7])
def test_threaded_gzip_is_an_ordinary_gzip_file(size: int) -> None:
    data = np.random.default_rng(size).integers(0, 4, size, dtype=np.uint8).tobytes()
    packed = gzip_bytes(data, level=1, threads=2)
    assert gzip.decompress(packed) == data
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # what synnet.imageio's reader uses
    assert inflater.decompress(packed) == data and inflater.eof and not inflater.unused_data
