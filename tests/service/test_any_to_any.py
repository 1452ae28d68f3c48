"""Every one of the 50 configurations through a real ``python -m service``: the session's dedicated
models plus a tiny unified model trained here (phantoms, one extra case with T1 and FLAIR only)."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from eager_reference import single_thread

from float_tolerance import assert_slices_close
from live_service import live_service
from synnet.manifest import ModelManifest
from synnet.modalities import Modality
from synnet.normalization import brain_mask
from synnet.routing import all_configurations
from unified_model import UNIFIED_NAME, fit_unified

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
SUFFIX = {Modality.T1: "t1", Modality.T1c: "t1ce", Modality.T2: "t2", Modality.FLAIR: "flair"}


@pytest.fixture(scope="module")
def mixed_store(trained, tmp_path_factory: pytest.TempPathFactory, phantom_root: Path) -> Path:
    """The session's dedicated models beside a unified one trained with a partial extra case."""
    root = tmp_path_factory.mktemp("any_to_any")
    extra = root / "extra" / "Partial_00001"
    extra.mkdir(parents=True)
    source = trained.cases[1]
    for modality in (Modality.T1, Modality.FLAIR):
        name = f"Partial_00001_{SUFFIX[modality]}.nii.gz"
        shutil.copy(next(source.glob(f"*_{SUFFIX[modality]}.nii.gz")), extra / name)
    store = root / "store"
    shutil.copytree(trained.store, store)
    fit_unified(phantom_root, store, root / "run", extra_data=root / "extra")
    return store


def test_the_unified_manifest_serves_any_to_any_and_trained_on_the_partial_case(mixed_store: Path) -> None:
    manifest = ModelManifest.load(mixed_store / UNIFIED_NAME)
    assert manifest.any_to_any and manifest.src == manifest.dst == list(Modality)
    assert "Partial_00001" in manifest.training_data.train_cases
    assert manifest.architecture.name == "unified"


def test_every_configuration_returns_the_synthesis_of_its_model(mixed_store: Path, small_case, kit, tmp_path) -> None:
    """Each of the 50 configurations is answered by the model its route names, with what that network gives
    when called directly: for the unified model, each source sent in its manifest channel, zeros and
    ``present = 0`` for the others."""
    settings = {
        "SYNNET_MODEL_STORE": str(mixed_store), "SYNNET_DEVICE": "cpu", "SYNNET_TORCH_THREADS": "1",
        "SYNNET_MAX_BATCH_DELAY_S": "0",
    }  # fmt: skip
    parts = {m: kit.nifti_bytes(v.array[:, :, 8:12], v.affine, compress=False) for m, v in small_case.items()}
    arrays = {m: kit.read_nifti(data).get_fdata(dtype=np.float32) for m, data in parts.items()}  # as sent
    expected_by_model = {}
    with live_service(settings, tmp_path / "service.log", ready_timeout_s=90) as service:
        listing = httpx.get(f"{service.url}/models", timeout=10).json()
        assert len(listing["configurations"]) == 50
        routes = {r["configuration"]: r for r in listing["routes"]}
        assert len(routes) == 50
        assert routes["T1->T2"]["targets"]["T2"]["model"] == "t1_to_t2"  # no scores recorded: dedicated keeps it
        assert routes["T2->T1"]["targets"]["T1"]["model"] == "synnet_unified"
        with httpx.Client(base_url=service.url, timeout=60) as client:
            for src, dst in all_configurations():
                files = {m.value: (f"{m.value}.nii", parts[m]) for m in src}
                params = {"src": ",".join(m.value for m in src), "dst": ",".join(m.value for m in dst)}
                response = client.post("/synthesize", params=params, files=files)
                assert response.status_code == 200, (params, response.text)
                body = response.json()
                assert list(body["targets"]) == [m.value for m in dst]
                served = {t: m["name"] for m in body["models"] for t in m["targets"]}
                configuration = f"{params['src']}->{params['dst']}"
                assert served == {t: r["model"] for t, r in routes[configuration]["targets"].items()}
                sources = {m: arrays[m] for m in src}
                mask = brain_mask(list(sources.values()))  # every source sent outlines the brain
                for target, name in served.items():
                    if (name, src) not in expected_by_model:
                        manifest = ModelManifest.load(mixed_store / name)
                        module = torch.jit.load(str(mixed_store / name / "model.pt"), map_location="cpu").eval()
                        with single_thread():
                            expected_by_model[name, src] = (
                                manifest, kit.eager_synthesis(module, manifest, sources, crop=True, mask=mask)
                            )
                    manifest, expected = expected_by_model[name, src]
                    image = kit.read_nifti(base64.b64decode(body["targets"][target]["data"]))
                    assert image.shape == (80, 80, 4)
                    channel = manifest.dst.index(Modality(target))
                    assert_slices_close(image.get_fdata(dtype=np.float32), expected[channel], mask)
    assert {name for name, _ in expected_by_model} == {"t1_to_t2", "t1_t1c_to_flair", UNIFIED_NAME}

