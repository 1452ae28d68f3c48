"""Fixtures of the service tests: real tiny models trained and exported by ``python -m training.fit``
on the session's phantom cases (``phantom_root``), those cases as inputs, and the app running on them.

Two models are trained once per session (about 15 s on 2 CPU cores): ``t1_to_t2`` (SISO) and
``t1_t1c_to_flair`` (MISO, two encoder arms), so routing, channel order and multi-model requests
run on real networks, never on mocks.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import shutil
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import nibabel as nib
import numpy as np
import pytest
import torch
from eager_reference import eager_synthesis
from fastapi import FastAPI
from PIL import Image

from service.app import create_app
from synnet.manifest import ModelManifest
from synnet.modalities import Modality
from synnet.settings import Settings

REPO = Path(__file__).resolve().parents[2]
# (name, src, dst) of the models trained for the session.
MODELS = [("t1_to_t2", "T1", "T2"), ("t1_t1c_to_flair", "T1,T1c", "FLAIR")]
TINY_FIT = [
    "--epochs", "1", "--max-steps", "2", "--batch-size", "2", "--slice-size", "32",
    "--features", "4", "--depth", "2", "--val-max-slices", "2", "--seed", "0",
]  # fmt: skip
BRATS_SUFFIX = {Modality.T1: "t1", Modality.T1c: "t1ce", Modality.T2: "t2", Modality.FLAIR: "flair"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need the trained models (directly or through the app) are integration tests: ``slow``."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents and "trained" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass(frozen=True)
class TrainedStore:
    """The model store written by training.fit and the phantom cases it trained on."""

    store: Path
    cases: list[Path]

    def manifest(self, name: str) -> ModelManifest:
        return ModelManifest.load(self.store / name)

    def module(self, name: str) -> torch.jit.ScriptModule:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(self.store / name / "model.pt"), map_location="cpu").eval()


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, phantom_root: Path) -> TrainedStore:
    root = tmp_path_factory.mktemp("service_models")
    for name, src, dst in MODELS:
        command = [
            sys.executable, "-m", "training.fit", "--src", src, "--dst", dst, *TINY_FIT,
            "--data", str(phantom_root), "--out", str(root / "store"),
            "--name", name, "--run-dir", str(root / "runs" / name),
        ]  # fmt: skip
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            pytest.fail(f"training.fit failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return TrainedStore(root / "store", sorted(p for p in phantom_root.iterdir() if p.is_dir()))


@pytest.fixture(scope="session")
def store(trained: TrainedStore) -> Path:
    return trained.store


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class Volume:
    """One modality of a case: raw intensities (X, Y, Z) and the affine."""

    array: np.ndarray
    affine: np.ndarray


def load_case(folder: Path) -> dict[Modality, Volume]:
    volumes = {}
    for modality, suffix in BRATS_SUFFIX.items():
        image = nib.load(next(folder.glob(f"*_{suffix}.nii.gz")))
        volumes[modality] = Volume(np.asarray(image.get_fdata(dtype=np.float32)), image.affine)
    return volumes


@pytest.fixture(scope="session")
def case(trained: TrainedStore) -> dict[Modality, Volume]:
    """A whole 240×240×155 phantom case."""
    return load_case(trained.cases[0])


@pytest.fixture(scope="session")
def small_case(case: dict[Modality, Volume]) -> dict[Modality, Volume]:
    """The same case, every 3rd voxel in-plane, 20 slices from the middle and 4 empty slices below:
    80×80×24, fast to serve, and with slices that must be skipped.
    """
    small = {}
    for modality, volume in case.items():
        slab = volume.array[::3, ::3, 60:80]
        slab = np.concatenate([np.zeros((*slab.shape[:2], 4), np.float32), slab], axis=2)
        affine = volume.affine @ np.diag([3.0, 3.0, 1.0, 1.0])
        small[modality] = Volume(np.ascontiguousarray(slab), affine)
    return small


def nifti_bytes(array: np.ndarray, affine: np.ndarray, dtype: type = np.int16, compress: bool = True) -> bytes:
    image = nib.Nifti1Image(np.asarray(array).astype(dtype), affine)
    raw = image.to_bytes()
    return gzip.compress(raw, mtime=0) if compress else raw


def png_bytes(array: np.ndarray, bits: int = 8) -> bytes:
    top = (1 << bits) - 1
    scaled = np.clip(np.asarray(array, np.float64) / max(float(array.max()), 1e-9), 0, 1) * top
    pixels = np.rint(scaled).astype(np.uint8 if bits == 8 else np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def read_nifti(data: bytes) -> nib.Nifti1Image:
    return nib.Nifti1Image.from_bytes(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)


def read_png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)


# ---------------------------------------------------------------------------------------------
# The app


def settings_for(store: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"model_store": store, "device": "cpu", "max_batch_delay_s": 0.0}
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its lifespan running and models loaded, and an httpx client on ASGITransport."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await asyncio.wait_for(app.state.runtime.ready.wait(), timeout=60)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as client:
            yield app, client


@pytest.fixture
def serve(store: Path) -> Callable[..., object]:
    """``async with serve(**settings) as (app, client)``: the app on the session's model store."""

    def make(model_store: Path | None = None, **overrides: object) -> object:
        return running(settings_for(model_store or store, **overrides))

    return make


@pytest.fixture
def broken_store(store: Path, tmp_path: Path) -> Path:
    """The good models plus broken ones: tampered weights, an output field edited after export, an invalid
    manifest, a folder without one, and a manifest (sealed anew) that does not match its network."""
    root = tmp_path / "store"
    shutil.copytree(store, root)
    bad_sha = root / "zz_bad_sha"
    shutil.copytree(store / "t1_to_t2", bad_sha)
    manifest = ModelManifest.load(bad_sha).model_copy(update={"name": "zz_bad_sha"})
    manifest.save(bad_sha)
    with (bad_sha / "model.pt").open("ab") as handle:
        handle.write(b"tampered")
    edited = root / "zz_edited"
    shutil.copytree(store / "t1_to_t2", edited)
    manifest = ModelManifest.load(edited)
    reference = manifest.output_reference[Modality.T2].model_copy(update={"hi": 1.0})
    manifest.model_copy(update={"output_reference": {Modality.T2: reference}}).save(edited)
    (root / "zz_no_manifest").mkdir()
    (root / "zz_no_manifest" / "model.pt").write_bytes(b"weights without a manifest")
    bad_manifest = root / "zz_bad_manifest"
    shutil.copytree(store / "t1_to_t2", bad_manifest)
    (bad_manifest / "manifest.json").write_text('{"name": "zz_bad_manifest", "src": ["T1"]')
    mismatch = root / "zz_mismatch"
    shutil.copytree(store / "t1_to_t2", mismatch)
    # Claims two sources for a one-source network: only the warm-up forward can tell.
    update = {"name": "zz_mismatch", "src": [Modality.T1, Modality.T1c]}
    ModelManifest.load(mismatch).model_copy(update=update).sealed(mismatch / "model.pt").save(mismatch)
    return root


@pytest.fixture(scope="session")
def kit() -> object:
    """The helpers above, for test modules (with --import-mode=importlib they cannot import conftest)."""

    class Kit:
        nifti_bytes = staticmethod(nifti_bytes)
        png_bytes = staticmethod(png_bytes)
        read_nifti = staticmethod(read_nifti)
        read_png = staticmethod(read_png)
        eager_synthesis = staticmethod(eager_synthesis)
        settings_for = staticmethod(settings_for)
        running = staticmethod(running)
        load_case = staticmethod(load_case)

    return Kit()
