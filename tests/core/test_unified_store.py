"""A unified model in the store: sources not given travel as NaN channels and reach the network as
zeros plus ``present = 0``; inference returns the requested targets for any sources."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synnet.inference import synthesize
from synnet.modalities import Modality
from synnet.normalization import IntensityRange, brain_mask
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


def test_synthesize_any_sources_gives_finite_targets(unified_folder) -> None:
    base, _ = unified_folder
    loaded = load_model(next(base.glob("store*/unified")), "cpu")
    rng = np.random.default_rng(0)
    volume = np.zeros((32, 32, 3), np.float32)
    volume[6:26, 6:26] = rng.random((20, 20, 3)) * 100 + 1
    sources = {Modality.T2: volume, Modality.FLAIR: volume[::-1].copy()}
    y, stats = synthesize(loaded.forward, sources, brain_mask(list(sources.values())), loaded.manifest)
    assert y.shape == (4, 32, 32, 3) and np.isfinite(y).all() and stats.run == 3
