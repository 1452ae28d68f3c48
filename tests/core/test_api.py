"""The Python API on a bundled model: every input kind gives the same voxels, results carry the source's
space and the service's routing, metrics and errors."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from synnet import SynthesisResult, Synthesizer
from synnet.errors import SynnetError
from synnet.evaluation import EvaluationRecord
from synnet.imageio import read_image
from synnet.inference import synthesize, to_raw_units
from synnet.metrics import compute_metrics
from synnet.modalities import Modality
from synnet.normalization import brain_mask
from synnet.routing import NoModelError, plan
from synnet.store import StoreError

pytestmark = pytest.mark.slow

BUNDLED = Path(__file__).resolve().parents[2] / "model_store"
MODEL = "synnet_t1_to_t2"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the bundled T1 -> T2 model only."""
    root = tmp_path_factory.mktemp("store")
    (root / MODEL).symlink_to(BUNDLED / MODEL, target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def synthesizer(store: Path) -> Synthesizer:
    return Synthesizer(store, "cpu")


@pytest.fixture(scope="module")
def files(phantom_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[Modality, Path]:
    """T1 and T2 of a phantom case, every 4th voxel in-plane and 6 slices (60×60×6), BraTS affine."""
    case = sorted(p for p in phantom_root.iterdir() if p.is_dir())[0]
    out = tmp_path_factory.mktemp("small")
    paths = {}
    for modality, suffix in ((Modality.T1, "t1"), (Modality.T2, "t2")):
        image = nib.load(case / f"{case.name}_{suffix}.nii.gz")
        paths[modality] = out / f"small_{suffix}.nii.gz"
        data = np.asarray(image.dataobj)[::4, ::4, 74:80]
        nib.save(nib.Nifti1Image(data, image.affine, header=image.header), paths[modality])
    return paths


def test_paths_images_and_arrays_give_the_same_voxels(synthesizer, files) -> None:
    t1 = files[Modality.T1]
    by_path = synthesizer.synthesize({"T1": t1}, "T2")
    by_image = synthesizer.synthesize({"t1n": nib.load(t1)}, ["t2w"])
    by_array = synthesizer.synthesize({Modality.T1: np.asarray(nib.load(t1).dataobj)}, Modality.T2)
    assert isinstance(by_path, SynthesisResult)
    expected = np.asarray(by_path["T2"].dataobj)
    assert expected.shape == (60, 60, 6) and expected.dtype == np.float32 and expected.any()
    np.testing.assert_array_equal(np.asarray(by_image["t2w"].dataobj), expected)
    np.testing.assert_array_equal(np.asarray(by_array[Modality.T2].dataobj), expected)
    # In the first source's space, marked synthetic; an array carries no space.
    source = nib.load(t1)
    np.testing.assert_array_equal(by_path["T2"].affine, source.affine)
    np.testing.assert_array_equal(by_image["T2"].affine, source.affine)
    np.testing.assert_array_equal(by_array["T2"].affine, np.eye(4))
    assert by_path["T2"].header["descrip"].tobytes().rstrip(b"\0") == f"synthetic T2 by synnet model {MODEL}".encode()
    assert list(by_path) == [Modality.T2] and by_path.models == {Modality.T2: MODEL}
    assert by_path.warnings == [] and by_path.metrics == {}


def test_it_is_the_core_pipeline_and_the_service_metrics(synthesizer, files) -> None:
    """The voxels are synnet.inference.synthesize's; the metrics synnet.metrics.compute_metrics's."""
    result = synthesizer.synthesize({"T1": files[Modality.T1]}, "T2", truths={"T2": files[Modality.T2]})
    t1, _ = read_image(files[Modality.T1])
    truth, _ = read_image(files[Modality.T2])
    model = synthesizer.model(MODEL)
    mask = brain_mask([t1])
    y, _ = synthesize(model.forward, {Modality.T1: t1}, mask, model.manifest, batch_size=4)
    np.testing.assert_array_equal(
        np.asarray(result["T2"].dataobj), to_raw_units(y[0], mask, model.manifest, Modality.T2)
    )
    assert result.metrics[Modality.T2] == compute_metrics(y[0], truth, mask, model.manifest)


def test_routing_is_the_services(synthesizer) -> None:
    every = Synthesizer(BUNDLED, "cpu")
    src, dst = (Modality.T1, Modality.T1c, Modality.T2), (Modality.FLAIR,)
    recorded = {m.name: EvaluationRecord.load_if_present(BUNDLED / m.name) for m in every.manifests}
    assert every.plan(["t1", "t1ce", "t2"], "flair") == plan(src, dst, every.manifests, recorded)
    # by recorded quality: T1 from T2 scores higher from the dedicated model, FLAIR only the unified one makes
    by_target = {t: a.name for a in every.plan(["T2"], "T1,FLAIR") for t in a.targets}
    assert by_target == {Modality.T1: "synnet_t2_to_t1", Modality.FLAIR: "synnet_unified"}
    # FLAIR from T1,T2: the unified model's recorded score is higher than T1 -> FLAIR's, which could serve it
    assert [a.name for a in every.plan(["T1", "T2"], "FLAIR")] == ["synnet_unified"]
    with pytest.raises(NoModelError, match="no model synthesizes FLAIR from T1") as raised:
        synthesizer.synthesize({"T1": np.ones((32, 32), np.float32)}, "FLAIR")
    assert raised.value.available == ["T1->T2"]


def test_bad_inputs_are_refused_with_the_values(synthesizer, files) -> None:
    t1 = np.asarray(nib.load(files[Modality.T1]).dataobj)
    with pytest.raises(SynnetError, match=r"source T2 has shape \(60, 60, 5\) but source T1 has shape \(60, 60, 6\)"):
        synthesizer.synthesize({"T1": t1, "T2": t1[..., :5]}, "T1c")
    with pytest.raises(SynnetError, match="src and dst overlap on T1"):
        synthesizer.synthesize({"T1": t1}, "T1,T2")
    with pytest.raises(SynnetError, match="no brain to synthesize"):
        synthesizer.synthesize({"T1": np.zeros_like(t1)}, "T2")
    with pytest.raises(SynnetError, match="unknown modality 'PD'"):
        synthesizer.synthesize({"PD": t1}, "T2")


def test_the_store_comes_from_the_environment_else_the_bundled_one(store, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SYNNET_MODEL_STORE", str(store))
    assert Synthesizer(device="cpu").configurations == ["T1->T2"]
    monkeypatch.delenv("SYNNET_MODEL_STORE")
    assert Synthesizer(device="cpu").store == BUNDLED
    with pytest.raises(StoreError, match=r"model store folder .*absent not found"):
        Synthesizer(tmp_path / "absent")
