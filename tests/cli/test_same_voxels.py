"""The Python API, ``synnet synthesize``/``fill`` locally and with ``--server``, and ``POST /synthesize``
(a real ``python -m service``) give identical voxels, metrics and warnings for the same inputs."""

from __future__ import annotations

import gzip
from pathlib import Path

import httpx
import nibabel as nib
import numpy as np
import pytest

from synnet import Synthesizer
from synnet.dataset_layout import BRATS_2021, scan_case
from synnet.evaluation import EvaluationRecord
from synnet.manifest import ModelManifest
from synnet.modalities import Modality
from synnet.routing import plan
from synnet.scores import MetricReport
from synnet_cli.__main__ import main
from synnet_cli.remote import RemoteSynthesizer

pytestmark = pytest.mark.slow

BUNDLED = Path(__file__).resolve().parents[2] / "model_store"
KEY = ["--api-key", "test-key"]


@pytest.fixture(scope="module")
def synthesizer() -> Synthesizer:
    return Synthesizer(BUNDLED, "cpu")


def voxels(path: Path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj)


def test_api_cli_service_and_server_give_identical_voxels(dataset, server, synthesizer, tmp_path, capsys) -> None:
    case = dataset / "Case_D"
    files = {m: case / BRATS_2021.file_name("Case_D", m) for m in Modality}
    sources = ["--t1", str(files[Modality.T1]), "--t1ce", str(files[Modality.T1c]), "--t2w", str(files[Modality.T2])]
    truth = ["--truth", f"FLAIR={files[Modality.FLAIR]}"]

    api = synthesizer.synthesize(
        {"T1": files[Modality.T1], "t1ce": nib.load(files[Modality.T1c]), "T2": str(files[Modality.T2])},
        dst="t2f",
        truths={"FLAIR": files[Modality.FLAIR]},
    )
    assert main(["synthesize", *sources, *truth, "--dst", "FLAIR", "-o", str(tmp_path / "local"), "--store",
                 str(BUNDLED), "--device", "cpu"]) == 0  # fmt: skip
    local_report = capsys.readouterr().out
    assert main(["synthesize", *sources, *truth, "--dst", "FLAIR", "-o", str(tmp_path / "remote"),
                 "--server", server, *KEY]) == 0  # fmt: skip
    remote_report = capsys.readouterr().out
    response = httpx.post(
        f"{server}/synthesize", params={"src": "T1,T1c,T2", "dst": "FLAIR", "download": 1},
        files={m.value: files[m].read_bytes() for m in (Modality.T1, Modality.T1c, Modality.T2)}
        | {"truth_FLAIR": files[Modality.FLAIR].read_bytes()},
        headers={"X-API-Key": "test-key"}, timeout=120,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    served = nib.Nifti1Image.from_bytes(gzip.decompress(response.content))

    expected = np.asarray(api["FLAIR"].dataobj)
    assert expected.shape == (60, 60, 8) and expected.any()
    for other in (voxels(tmp_path / "local/synthetic_FLAIR.nii.gz"), voxels(tmp_path / "remote/synthetic_FLAIR.nii.gz"),
                  np.asarray(served.dataobj)):  # fmt: skip
        np.testing.assert_array_equal(other, expected)
    source = nib.load(files[Modality.T1])
    for image in (api["FLAIR"], served, nib.load(tmp_path / "remote/synthetic_FLAIR.nii.gz")):
        np.testing.assert_array_equal(image.affine, source.affine)
        assert image.header["descrip"].tobytes().rstrip(b"\0") == b"synthetic FLAIR by synnet model " + (
            api.models[Modality.FLAIR].encode()
        )
    # Metrics: the service's headers, the API's report and both CLI tables say the same.
    metrics = api.metrics[Modality.FLAIR]
    assert float(response.headers["x-synnet-psnr-brain"]) == pytest.approx(metrics.psnr_brain, abs=1e-6)
    assert float(response.headers["x-synnet-ssim"]) == pytest.approx(metrics.ssim, abs=1e-6)
    for report in (local_report, remote_report):
        assert f"in brain             {metrics.psnr_brain:.2f}" in report, report
        assert api.models[Modality.FLAIR] in report


def test_the_service_the_api_and_the_server_client_give_one_metrics_record(dataset, server, synthesizer) -> None:
    case = dataset / "Case_D"
    files = {m: case / BRATS_2021.file_name("Case_D", m) for m in Modality}
    sources = {m: files[m] for m in (Modality.T1, Modality.T1c, Modality.T2)}
    truths = {Modality.FLAIR: files[Modality.FLAIR]}
    api = synthesizer.synthesize(sources, "FLAIR", truths).metrics[Modality.FLAIR]
    remote = RemoteSynthesizer(server, "test-key").synthesize(sources, "FLAIR", truths).metrics[Modality.FLAIR]
    uploads = {m.value: p.read_bytes() for m, p in sources.items()}
    uploads["truth_FLAIR"] = files[Modality.FLAIR].read_bytes()
    response = httpx.post(
        f"{server}/synthesize", params={"src": "T1,T1c,T2", "dst": "FLAIR"}, files=uploads,
        headers={"X-API-Key": "test-key"}, timeout=120,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    served = response.json()["targets"]["FLAIR"]["metrics"]
    assert type(api) is type(remote) is MetricReport  # what synnet synthesize prints, locally and with --server
    assert set(served) == {"psnr", "ssim", "psnr_brain", "ssim_brain", "identical"}
    assert api.model_dump(mode="json") == served == remote.model_dump(mode="json")
    assert MetricReport.model_validate(served) == remote and 0 < remote.ssim_brain < 1


def test_fill_over_the_server_writes_what_a_local_fill_writes(dataset, server, tmp_path, capsys) -> None:
    common = ["fill", str(dataset)]
    assert main([*common, "-o", str(tmp_path / "local"), "--store", str(BUNDLED), "--device", "cpu"]) == 0
    assert main([*common, "-o", str(tmp_path / "remote"), "--server", server, *KEY]) == 0
    assert "3 case(s) filled" in capsys.readouterr().out
    local = sorted(p.relative_to(tmp_path / "local") for p in (tmp_path / "local").rglob("*.nii.gz"))
    remote = sorted(p.relative_to(tmp_path / "remote") for p in (tmp_path / "remote").rglob("*.nii.gz"))
    assert local == remote and len(local) == 4
    for name in local:
        a, b = nib.load(tmp_path / "local" / name), nib.load(tmp_path / "remote" / name)
        np.testing.assert_array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj))
        np.testing.assert_array_equal(a.affine, b.affine)


def test_warnings_come_back_from_the_api_the_service_and_the_cli(dataset, server, synthesizer, tmp_path, capsys):
    case = dataset / "Case_A"
    flipped = {}
    for m in (Modality.T1, Modality.T1c, Modality.T2):
        image = nib.load(case / BRATS_2021.file_name("Case_A", m))
        flipped[m] = tmp_path / f"ras_{m.value}.nii.gz"
        nib.save(nib.Nifti1Image(np.asarray(image.dataobj), np.diag([1.0, 1.0, 1.0, 1.0])), flipped[m])
    api = synthesizer.synthesize(flipped, "FLAIR")
    assert [w.code for w in api.warnings] == ["orientation"]
    assert "RAS differs from the BraTS template's LPS" in api.warnings[0].message
    response = httpx.post(
        f"{server}/synthesize", params={"dst": "FLAIR"}, headers={"X-API-Key": "test-key"},
        files={m.value: p.read_bytes() for m, p in flipped.items()}, timeout=120,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json()["warnings"] == [{"code": "orientation", "message": api.warnings[0].message}]
    args = ["--t1", str(flipped[Modality.T1]), "--t1c", str(flipped[Modality.T1c]), "--t2", str(flipped[Modality.T2])]
    assert main(["synthesize", *args, "--dst", "FLAIR", "-o", str(tmp_path), "--server", server, *KEY]) == 0
    assert f"warning (orientation): {api.warnings[0].message}" in capsys.readouterr().out


def test_the_served_models_route_every_case_of_the_dataset_like_the_whole_store(dataset, served_models) -> None:
    """The server above holds only some bundled models; it must choose the models the whole store chooses."""

    def routes(names: list[str]) -> list[list[tuple[str, tuple[Modality, ...]]]]:
        manifests = [ModelManifest.load(BUNDLED / name) for name in names]
        evaluations = {name: EvaluationRecord.load_if_present(BUNDLED / name) for name in names}
        chosen = []
        for case in sorted(p for p in dataset.iterdir() if p.is_dir()):
            found = scan_case(case)
            if found.missing:
                assignments = plan(tuple(found.files), tuple(found.missing), manifests, evaluations)
                chosen.append([(a.name, a.targets) for a in assignments])
        return chosen

    every = sorted(p.name for p in BUNDLED.iterdir() if (p / "manifest.json").is_file())
    assert routes(served_models) == routes(every) and len(routes(every)) == 3
