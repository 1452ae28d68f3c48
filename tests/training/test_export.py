"""Export: frozen TorchScript that verifies itself, and a model-store entry with a valid manifest."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from float_tolerance import assert_close_to_scale
from synnet.manifest import ModelManifest, model_digest
from training.export import ExportError, export_torchscript, write_model
from training.models import create_model

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


class _DriftsWhenScripted(nn.Module):
    """Eager and TorchScript disagree on purpose, to prove the check catches it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting():
            return x + 1e-3
        return x


def _small_model() -> nn.Module:
    torch.manual_seed(0)
    return create_model("synnet", 2, 1, features=4, depth=2)


def test_export_reloads_and_matches_eager(tmp_path) -> None:
    model, example = _small_model(), torch.rand(2, 2, 20, 28)
    reloaded = export_torchscript(model, example, tmp_path / "model.pt")
    with torch.no_grad():
        assert_close_to_scale(reloaded(example), model(example))  # the same ops: no index flip
    other = torch.rand(1, 2, 33, 17)  # any H×W, not only the example's
    with torch.no_grad():
        assert_close_to_scale(torch.jit.load(tmp_path / "model.pt")(other), model(other))


def test_export_refuses_a_model_that_drifts(tmp_path) -> None:
    with pytest.raises(ExportError, match="differs from eager"):
        export_torchscript(_DriftsWhenScripted(), torch.zeros(1, 1, 8, 8), tmp_path / "model.pt")


def test_write_model_writes_a_manifest_whose_sha256_matches(tmp_path) -> None:
    manifest = write_model(
        tmp_path,
        "tiny",
        _small_model(),
        torch.rand(1, 2, 16, 16),
        src=["T1", "t1ce"],
        dst=["T2"],
        architecture={"name": "synnet", "params": {"n_src": 2, "n_dst": 1, "features": 4, "depth": 2}},
        loss={"name": "l2", "lambdas": {"l2": 1.0}},
        training_data={"source": "generated", "n_cases": 3},
    )
    folder = tmp_path / "tiny"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]  # no staging folder left
    loaded = ModelManifest.load(folder)
    assert loaded == manifest
    assert loaded.sha256 == model_digest(folder / "model.pt", loaded)
    edited = loaded.model_copy(update={"src": list(reversed(loaded.src))})  # the digest covers the src order
    assert model_digest(folder / "model.pt", edited) != loaded.sha256
    assert [m.value for m in loaded.src] == ["T1", "T1c"]
    assert loaded.frameworks["torch"] == torch.__version__
