"""The bundled models' exported programs: verified, sealed, serving TorchScript's voxels in all 50 configurations."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import nibabel as nib
import numpy as np
import pytest

from float_tolerance import assert_close_to_scale
from live_service import live_service
from synnet.manifest import PROGRAM_FILE, ModelManifest, model_digest, sha256_file
from synnet.modalities import format_modalities
from synnet.routing import all_configurations
from training.data.brats import find_cases, load_case

STORE = Path(__file__).resolve().parents[2] / "model_store"
MANIFESTS = sorted(STORE.glob("*/manifest.json"))
# Loading 20 programs parses their symbolic shapes: minutes on two cores.
READY_TIMEOUT_S = 900


@pytest.mark.parametrize("manifest_path", MANIFESTS, ids=lambda p: p.parent.name)
def test_every_bundled_model_has_a_program_its_digest_covers(manifest_path: Path) -> None:
    folder = manifest_path.parent
    manifest = ModelManifest.load(folder)
    assert manifest.exported_program == PROGRAM_FILE and (folder / PROGRAM_FILE).is_file()
    assert model_digest(folder / manifest.model_file, manifest) == manifest.sha256
    unsealed = manifest.model_copy(update={"exported_program": None})
    assert model_digest(folder / manifest.model_file, unsealed) != manifest.sha256  # the program counts
    assert sha256_file(folder / PROGRAM_FILE) != sha256_file(folder / manifest.model_file)


@pytest.fixture(scope="module")
def case_files(phantom_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A generated case cut to 16 axial slices through the brain, one NIfTI file per modality."""
    loaded = load_case(find_cases(phantom_root)[0], ["T1", "T1c", "T2", "FLAIR"], load_seg=False)
    middle = loaded.shape[2] // 2
    folder = tmp_path_factory.mktemp("case")
    files = {}
    for modality, image in loaded.images.items():
        files[modality.value] = folder / f"{modality.value}.nii.gz"
        nib.save(nib.Nifti1Image(image[:, :, middle - 8 : middle + 8], np.eye(4)), files[modality.value])
    return files


def served_voxels(model_format: str, case_files: dict[str, Path], log: Path) -> Iterator[tuple[str, str, np.ndarray]]:
    """(configuration, target, raw voxels) of every configuration, from a real service on the bundled store."""
    env = {"SYNNET_MODEL_STORE": str(STORE), "SYNNET_DEVICE": "cpu", "SYNNET_MODEL_FORMAT": model_format,
           "SYNNET_LOG_LEVEL": "warning"}  # fmt: skip
    with live_service(env, log, ready_timeout_s=READY_TIMEOUT_S) as service:
        assert httpx.get(f"{service.url}/readyz").json()["failed"] == []
        for src, dst in all_configurations():
            files = {m.value: (case_files[m.value].name, case_files[m.value].read_bytes()) for m in src}
            query = {"src": format_modalities(src), "dst": format_modalities(dst), "format": "npy"}
            answer = httpx.post(f"{service.url}/synthesize", params=query, files=files, timeout=600)
            assert answer.status_code == 200, answer.text
            for target, result in answer.json()["targets"].items():
                voxels = np.load(io.BytesIO(base64.b64decode(result["data"])))
                yield f"{query['src']}->{query['dst']}", target, voxels


def test_the_service_serves_the_same_voxels_from_programs_as_from_torchscript_in_all_50_configurations(
    case_files: dict[str, Path], tmp_path: Path
) -> None:
    torchscript = {(c, t): v for c, t, v in served_voxels("torchscript", case_files, tmp_path / "torchscript.log")}
    exported = {(c, t): v for c, t, v in served_voxels("export", case_files, tmp_path / "export.log")}
    assert len({c for c, _ in torchscript}) == 50 and exported.keys() == torchscript.keys()
    for key, voxels in torchscript.items():
        assert np.abs(voxels).max() > 0, key  # something was synthesized
        assert_close_to_scale(exported[key], voxels)
