"""model.pt2: every export writes the torch.export program of model.pt's network, verified, sealed by the digest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from synnet.evaluation import EVALUATION_FILE
from synnet.manifest import MANIFEST_FILE, FlipEnsemble, ModelManifest, OutputCalibration
from synnet.program import load_program
from synnet.store import StoreError, read_manifest
from training.export import add_program, any_to_any_example, example_input, write_model
from training.models import create_model, model_config
from training.models.flip_average import FlipAveragedAnyToAny
from training.models.output_calibration import CalibratedAnyToAny, QuantileMap
from training.rebuild import RebuildError, eager_model

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")

FIELDS = {
    "loss": {"name": "l2"},
    "training_data": {"source": "generated", "n_cases": 0},
}


def write_dedicated(store: Path, name: str = "tiny", features: int = 4) -> ModelManifest:
    torch.manual_seed(0)
    hyper = {"features": features, "depth": 2}
    return write_model(
        store, name, create_model("synnet", 2, 1, **hyper), example_input(2, 24), src=["T1", "T2"], dst=["FLAIR"],
        architecture={"name": "synnet", "params": model_config("synnet", 2, 1, **hyper)},
        input={"multiple_of": 4, "min_size": 16}, output_reference={"FLAIR": {"lo": 0.0, "hi": 1.0}}, **FIELDS,
    )  # fmt: skip


def torchscript(path: Path) -> torch.jit.ScriptModule:
    return torch.jit.load(str(path), map_location="cpu")


@torch.no_grad()
def test_an_export_writes_a_program_that_gives_model_pt_s_outputs_at_any_batch_and_size(tmp_path: Path) -> None:
    manifest = write_dedicated(tmp_path)
    folder = tmp_path / "tiny"
    assert manifest.exported_program == "model.pt2" and (folder / "model.pt2").is_file()
    program, reference = load_program(folder / "model.pt2", torch.device("cpu")), torchscript(folder / "model.pt")
    for shape in [(1, 2, 16, 16), (3, 2, 37, 53), (5, 2, 64, 20)]:  # off the 4-pixel grid too: the model pads
        x = torch.rand(shape)
        assert torch.equal(program(x), reference(x)), shape


def test_the_digest_covers_the_program(tmp_path: Path) -> None:
    write_dedicated(tmp_path)
    folder = tmp_path / "tiny"
    read_manifest(folder)  # intact
    program = folder / "model.pt2"
    program.write_bytes(program.read_bytes() + b"\0")
    with pytest.raises(StoreError, match="sha256 mismatch"):
        read_manifest(folder)
    program.unlink()
    with pytest.raises(StoreError, match=r"exported program model\.pt2 not found"):
        read_manifest(folder)


def calibration_record(quantiles: int) -> OutputCalibration:
    return OutputCalibration(quantiles=quantiles, rule="test", fit_cases=[], check_cases=[], configurations=[])


@torch.no_grad()
def test_a_calibrated_flip_averaged_unified_model_exports_from_its_torchscript_file(tmp_path: Path) -> None:
    """The wrappers hold a loaded TorchScript network, as training.calibrate and training.flip_ensemble build them:
    the program is made from the module rebuilt from model.pt, with torch.cond where the network branches on a value."""
    torch.manual_seed(0)
    hyper = {"features": 4, "depth": 2, "fusion": "mean_max"}
    fields = {
        "src": ["T1", "T1c", "T2", "FLAIR"], "dst": ["T1", "T1c", "T2", "FLAIR"], "any_to_any": True,
        "architecture": {"name": "unified", "params": model_config("unified", 4, 4, **hyper)},
        "input": {"multiple_of": 4, "min_size": 16},
        "output_reference": {m: {"lo": 0.0, "hi": 1.0} for m in ("T1", "T1c", "T2", "FLAIR")}, **FIELDS,
    }  # fmt: skip
    example = any_to_any_example(24)
    write_model(tmp_path, "u", create_model("unified", 4, 4, **hyper), example, **fields)
    knots = torch.linspace(0, 1, 5).repeat(16, 4, 1)
    calibration = QuantileMap(knots, knots.sqrt(), torch.rand(16, 4) > 0.5)
    active = torch.zeros(16, 4, dtype=torch.bool)
    active[0b0001, 1:] = True  # from T1 alone: averaged; every other source set runs once
    averaged = FlipAveragedAnyToAny(CalibratedAnyToAny(torchscript(tmp_path / "u" / "model.pt"), calibration), active)
    fields["output_calibration"] = calibration_record(5)
    fields["flip_ensemble"] = FlipEnsemble(flips=["none"], rule="test", check_cases=[], configurations=[])
    write_model(tmp_path, "u", averaged, example, **fields)

    folder = tmp_path / "u"
    program, reference = load_program(folder / "model.pt2", torch.device("cpu")), torchscript(folder / "model.pt")
    alone = torch.tensor([[1.0, 0, 0, 0], [1, 0, 0, 0]])  # the averaged branch of the cond
    others = torch.tensor([[0.0, 1, 1, 0], [1, 1, 1, 0]])  # the plain branch; T1c's decoder does not run
    for present in (alone, others, torch.cat([alone[:1], others[:1]])):
        x = torch.rand(len(present), 4, 29, 41) * present[:, :, None, None]
        assert torch.equal(program(x, present), reference(x, present))


def test_a_model_file_that_is_not_the_manifest_s_network_is_not_rebuilt(tmp_path: Path) -> None:
    manifest = write_dedicated(tmp_path, features=4)
    claimed = manifest.model_copy(update={"architecture": manifest.architecture.model_copy(
        update={"params": {**manifest.architecture.params, "features": 8}})})  # fmt: skip
    with pytest.raises(RebuildError, match="do not fit the manifest's architecture"):
        eager_model(tmp_path / "tiny" / "model.pt", claimed)


def test_add_program_gives_an_older_export_its_program_and_keeps_model_pt(tmp_path: Path) -> None:
    write_dedicated(tmp_path)
    folder = tmp_path / "tiny"
    (folder / "model.pt2").unlink()  # as exported before programs were
    older = ModelManifest.load(folder).model_copy(update={"exported_program": None}).sealed(folder / "model.pt")
    older.save(folder)
    (folder / EVALUATION_FILE).write_text(json.dumps({"targets": {}}))
    model_pt = (folder / "model.pt").read_bytes()

    manifest = add_program(tmp_path, "tiny")

    assert (folder / "model.pt").read_bytes() == model_pt and (folder / EVALUATION_FILE).is_file()
    assert manifest.exported_program == "model.pt2" and read_manifest(folder) == manifest
    assert json.loads((folder / MANIFEST_FILE).read_text())["sha256"] != older.sha256
