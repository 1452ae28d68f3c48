"""A served MIMO model, a 2D NIfTI upload, and the model named in the output's NIfTI header."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from float_tolerance import assert_slices_close
from synnet.manifest import ModelManifest
from synnet.modalities import Modality
from synnet.normalization import brain_mask

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")]

T1, T1c, T2, FLAIR = Modality.T1, Modality.T1c, Modality.T2, Modality.FLAIR
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mimo_store(tmp_path_factory: pytest.TempPathFactory, phantom_root: Path) -> Path:
    """A store holding one tiny T1,T1c → T2,FLAIR model, trained by training.fit."""
    root = tmp_path_factory.mktemp("mimo")
    command = [
        sys.executable, "-m", "training.fit", "--src", "T1,T1c", "--dst", "T2,FLAIR", "--data", str(phantom_root),
        "--epochs", "1", "--max-steps", "2", "--batch-size", "2", "--slice-size", "32", "--features", "4",
        "--depth", "2", "--val-max-slices", "2", "--out", str(root / "store"), "--name", "mimo",
        "--run-dir", str(root / "run"),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "store"


def _module(store: Path, name: str):
    import torch

    return torch.jit.load(str(store / name / "model.pt"), map_location="cpu").eval()


async def test_a_mimo_model_serves_both_targets_in_one_pass(serve, mimo_store, small_case, kit) -> None:
    files = {
        "T1": ("t1.nii.gz", kit.nifti_bytes(small_case[T1].array, small_case[T1].affine)),
        "T1c": ("t1c.nii.gz", kit.nifti_bytes(small_case[T1c].array, small_case[T1c].affine)),
    }
    async with serve(model_store=mimo_store) as (_, client):
        response = await client.post("/synthesize", params={"src": "T1,T1c", "dst": "T2,FLAIR"}, files=files)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(m["name"], m["targets"], m["exact"]) for m in body["models"]] == [("mimo", ["T2", "FLAIR"], True)]
    manifest = ModelManifest.load(mimo_store / "mimo")
    sources = {T1: small_case[T1].array, T1c: small_case[T1c].array}
    expected = kit.eager_synthesis(_module(mimo_store, "mimo"), manifest, sources, crop=True)
    for channel, target in enumerate(("T2", "FLAIR")):
        served = kit.read_nifti(base64.b64decode(body["targets"][target]["data"])).get_fdata(dtype=np.float32)
        assert_slices_close(served, expected[channel], brain_mask(list(sources.values())))
    assert not np.allclose(expected[0], expected[1])  # two decoder arms, two different images


async def test_a_2d_nifti_slice_comes_back_as_a_2d_nifti_with_its_affine(serve, trained, case, kit) -> None:
    image = case[T1].array[:, :, 77]
    affine = np.diag([0.9, 0.9, 3.0, 1.0])
    async with serve() as (_, client):
        response = await client.post(
            "/synthesize",
            params={"src": "T1", "dst": "T2"},
            files={"T1": ("t1.nii.gz", kit.nifti_bytes(image, affine))},
        )
    assert response.status_code == 200, response.text
    target = response.json()["targets"]["T2"]
    assert target["format"] == "nifti" and target["shape"] == [240, 240]
    served = kit.read_nifti(base64.b64decode(target["data"]))
    assert served.shape == (240, 240)
    np.testing.assert_allclose(served.affine, affine, atol=1e-6)
    expected = kit.eager_synthesis(trained.module("t1_to_t2"), trained.manifest("t1_to_t2"), {T1: image}, crop=True)[0]
    assert_slices_close(served.get_fdata(dtype=np.float32), expected, brain_mask(image))


async def test_the_output_header_names_the_model(serve, small_case, kit) -> None:
    part = ("t1.nii.gz", kit.nifti_bytes(small_case[T1].array, small_case[T1].affine))
    async with serve() as (_, client):
        response = await client.post(
            "/synthesize", params={"src": "T1", "dst": "T2", "download": "1"}, files={"T1": part}
        )
    assert response.status_code == 200, response.text
    descrip = kit.read_nifti(response.content).header["descrip"].item()
    assert descrip == b"synthetic T2 by synnet model t1_to_t2"
