"""A unified model in the store: sources not given travel as NaN channels and reach the network as
zeros plus ``present = 0``; inference returns the requested targets for any sources."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from float_tolerance import assert_slices_close
from synnet.inference import synthesize
from synnet.modalities import Modality
from synnet.normalization import IntensityRange, normalize
from synnet.store import load_model
from training.export import any_to_any_example, write_model
from training.models import create_model

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


@pytest.fixture(scope="module")
def unified_folder(tmp_path_factory: pytest.TempPathFactory):
    torch.manual_seed(0)
    model = create_model("unified", 4, 4, features=4, depth=2)
    every = [m.value for m in Modality]
    write_model(
        tmp_path_factory.mktemp("store"), "unified", model, any_to_any_example(32),
        src=every, dst=every, any_to_any=True,
        architecture={"name": "unified", "params": {"features": 4, "depth": 2}}, loss={"name": "joint"},
        output_reference={m: IntensityRange(lo=0.0, hi=100.0) for m in every},
        input={"multiple_of": 4, "min_size": 16}, training_data={"source": "generated", "n_cases": 1},
    )  # fmt: skip
    return tmp_path_factory.getbasetemp(), model.eval()


def test_nan_channels_become_zeros_and_absent(unified_folder, tmp_path) -> None:
    base, eager = unified_folder
    folder = next(base.glob("store*/unified"))
    loaded = load_model(folder, "cpu")
    x = torch.rand(2, 4, 32, 32)
    x[0, 1:3] = float("nan")
    x[1, 3] = float("nan")
    present = torch.tensor([[1.0, 0, 0, 1], [1.0, 1, 1, 0]])
    with torch.no_grad():
        expected = eager(torch.nan_to_num(x, nan=0.0), present)
    assert torch.allclose(loaded.forward(x), expected, atol=1e-5)


@pytest.mark.parametrize("given", [("T1",), ("T1c", "T2"), ("T2", "FLAIR"), ("T1", "T1c", "FLAIR")])
def test_synthesize_any_sources_equals_the_network_called_directly(unified_folder, given) -> None:
    """The pipeline's answer for a subset of sources is the network's, given each source in its manifest
    channel, zeros in the others, and ``present`` saying which are which (NaN must not reach it as zeros
    with ``present = 1``, nor a source in another's channel)."""
    base, _ = unified_folder
    folder = next(base.glob("store*/unified"))
    loaded = load_model(folder, "cpu", channels_last=False)
    rng = np.random.default_rng(1)
    mask = np.zeros((32, 32, 3), bool)
    mask[6:26, 4:28] = True
    # a different image per modality, so a source in another's channel changes the output
    images = {m: np.where(mask, rng.random(mask.shape) * 100 * (i + 1) + 1, 0).astype(np.float32) for i, m in
              enumerate(Modality)}  # fmt: skip
    sources = {m: images[m] for m in loaded.manifest.src if m.value in given}
    y, stats = synthesize(loaded.forward, sources, mask, loaded.manifest, crop=False)
    assert y.shape == (4, 32, 32, 3) and stats.run == 3

    channels = [
        normalize(sources[m], mask, loaded.manifest.normalization)[0] if m in sources else np.zeros(mask.shape)
        for m in loaded.manifest.src
    ]
    x = torch.from_numpy(np.moveaxis(np.stack(channels), -1, 0).astype(np.float32))  # (Z, 4, X, Y): one batch
    present = torch.tensor([[float(m in sources) for m in loaded.manifest.src]] * 3)
    with torch.inference_mode():
        direct = np.moveaxis(loaded.module(x, present).numpy(), 0, -1)
    expected = np.clip(direct, 0, 1) * mask
    for channel in range(4):
        assert_slices_close(y[channel], expected[channel], mask)
