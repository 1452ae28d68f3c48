"""training.evaluate on a tiny model trained here: per-case rows, tumour regions, report, manifest."""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from synnet.evaluation import EvaluationRecord
from synnet.manifest import ModelManifest
from training.evaluate import main, run_evaluation
from training.fitting.cli import build_parser, make_config
from training.fitting.run import run

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")]


@pytest.fixture(scope="module")
def evaluated(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A tiny T1→T2 model, one test case of which gets a tumour label map; its store and data."""
    tmp = tmp_path_factory.mktemp("evaluate")
    data = tmp / "data"
    shutil.copytree(tiny_root, data)
    argv = ["--data", str(data), "--src", "T1", "--dst", "T2", "--features", "8", "--depth", "2",
            "--slice-size", "32", "--batch-size", "4", "--max-steps", "2", "--val-cases", "0",
            "--test-cases", "1", "--out", str(tmp / "store"), "--run-dir", str(tmp / "run"),
            "--name", "tiny"]  # fmt: skip
    manifest = run(make_config(vars(build_parser().parse_args(argv)))).manifest
    (test_case,) = manifest.training_data.test_cases
    folder = data / test_case
    image = nib.load(folder / f"{test_case}_t1.nii.gz")
    seg = np.zeros(image.shape, dtype=np.uint8)
    seg[15:25, 15:25, 4:8] = 2
    seg[18:22, 18:22, 5:7] = 4
    nib.save(nib.Nifti1Image(seg, image.affine), folder / f"{test_case}_seg.nii.gz")
    return data, tmp / "store", tmp / "report"


def test_evaluation_writes_rows_report_figure_and_evaluation_file(evaluated: tuple[Path, Path, Path]) -> None:
    data, store, out = evaluated
    summaries = run_evaluation(data, store, ["tiny"], out, write_evaluation_files=True, command="test")
    rows = list(csv.DictReader((out / "per_case.csv").open()))
    manifest = ModelManifest.load(store / "tiny")
    assert [row["case"] for row in rows] == manifest.training_data.test_cases
    row = rows[0]
    assert row["target"] == "T2"
    for name in ("psnr", "ssim", "psnr_brain", "ssim_brain", "psnr_wt", "ssim_wt", "psnr_et", "ssim_et"):
        assert math.isfinite(float(row[name])), name
    assert -1.0 <= float(row["ssim_et"]) <= 1.0
    assert row["dataset"] == data.name and math.isfinite(float(row["psnr_brasyn"]))
    # BraSyn counts the background (SSIM 1 there) into "rest": above our in-brain SSIM by construction
    assert float(row["ssim_brain"]) < float(row["ssim_brasyn_rest"]) <= 1.0
    assert -1.0 <= float(row["ssim_brasyn_tumour"]) <= 1.0
    (summary,) = summaries
    assert summary.n_cases == 1
    evaluation = EvaluationRecord.load_if_present(store / "tiny")
    assert evaluation is not None and ModelManifest.load(store / "tiny") == manifest  # the manifest is untouched
    metrics = evaluation.targets["T2"]
    assert metrics.psnr == pytest.approx(round(float(row["psnr"]), 4), abs=1e-4)
    assert metrics.ssim_brain == pytest.approx(round(float(row["ssim_brain"]), 4), abs=1e-4)
    assert evaluation.data["cases"] == manifest.training_data.test_cases
    assert f"| tiny | {data.name} | T2 | 1 |" in (out / "report.md").read_text()
    assert (out / "figures" / "tiny.png").stat().st_size > 1000


def test_rows_already_written_are_reused(evaluated: tuple[Path, Path, Path]) -> None:
    data, store, _ = evaluated
    out = store.parent / "report_again"
    run_evaluation(data, store, ["tiny"], out, figures=False)
    first = (out / "per_case.csv").read_text()
    (out / "per_case.csv").write_text(first.replace(first.splitlines()[1].split(",")[4], "99.0", 1))
    run_evaluation(data, store, ["tiny"], out, figures=False)  # the edited row is kept, not recomputed
    assert "99.0" in (out / "per_case.csv").read_text()


def test_cli_names_unknown_models(evaluated: tuple[Path, Path, Path], capsys) -> None:
    data, store, out = evaluated
    assert main(["--data", str(data), "--store", str(store), "--models", "nope", "--out", str(out)]) == 2
    assert "no model nope" in capsys.readouterr().err


def copy_case(source: Path, folder: Path, case_id: str) -> Path:
    """The case in ``source`` under another case id (its files renamed with it) in ``folder``."""
    target = folder / case_id
    shutil.copytree(source, target)
    for path in target.iterdir():
        path.rename(path.with_name(path.name.replace(source.name, case_id)))
    return target


def test_another_dataset_is_a_test_dataset_of_the_evaluation_file_in_both_conventions(
    evaluated: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    data, store, _ = evaluated
    other = tmp_path / "other_pipeline"
    train_case = ModelManifest.load(store / "tiny").training_data.train_cases[0]
    copy_case(data / train_case, other, "Case-elsewhere")  # the same images under another case id
    summaries = run_evaluation(
        data, store, ["tiny"], tmp_path / "out", figures=False, write_evaluation_files=True, also=[other]
    )
    assert [(s.dataset, s.n_cases) for s in summaries] == [(data.name, 1), ("other_pipeline", 1)]
    assert "| tiny | other_pipeline | T2 | 1 |" in (tmp_path / "out" / "report.md").read_text()
    evaluation = EvaluationRecord.load_if_present(store / "tiny")
    assert evaluation is not None and "Case-elsewhere" not in evaluation.data["cases"]
    block = evaluation.test["other_pipeline"]
    assert block.cases == ["Case-elsewhere"] and block.data == str(other)
    rows = {row["case"]: row for row in csv.DictReader((tmp_path / "out" / "per_case.csv").open())}
    tested, row = block.targets["T2"], rows["Case-elsewhere"]
    for name in ("psnr_brain", "ssim_brain", "psnr_brasyn", "ssim_brasyn_rest", "psnr"):
        assert getattr(tested, name) == pytest.approx(round(float(row[name]), 4), abs=1e-4), name
    validation = evaluation.targets["T2"]  # what routing reads keeps its place, now in both conventions too
    assert math.isfinite(validation.psnr_brasyn) and math.isfinite(validation.ssim_brasyn_rest)


def test_a_case_the_model_was_trained_on_is_never_its_test_data(
    evaluated: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    data, store, _ = evaluated
    train_case = ModelManifest.load(store / "tiny").training_data.train_cases[0]
    other = tmp_path / "partial"
    copy_case(data / train_case, other, train_case)
    copy_case(data / train_case, other, "Case-new")
    run_evaluation(data, store, ["tiny"], tmp_path / "out", figures=False, write_evaluation_files=True, also=[other])
    cases = {row["case"] for row in csv.DictReader((tmp_path / "out" / "per_case.csv").open())}
    assert train_case not in cases and "Case-new" in cases
    evaluation = EvaluationRecord.load_if_present(store / "tiny")
    assert evaluation is not None and evaluation.test["partial"].cases == ["Case-new"]


def test_normalized_data_is_scored_inside_its_brain_mask_file(
    evaluated: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """A z-scored copy of a case (background a negative constant, brain from a mask file) scores as the case:
    every normalization here is affine-invariant, so only a brain taken from the nonzero voxels would differ."""
    data, store, _ = evaluated
    (test_case,) = ModelManifest.load(store / "tiny").training_data.test_cases
    zscored = tmp_path / "zscored" / "Case-z"
    zscored.mkdir(parents=True)
    t1 = nib.load(data / test_case / f"{test_case}_t1.nii.gz")
    brain = np.asarray(t1.dataobj) != 0  # the brain the service takes for the original case: T1's nonzero voxels
    nib.save(nib.Nifti1Image(brain.astype(np.uint8), t1.affine), zscored / "Case-z_brainmask.nii.gz")
    for suffix in ("t1", "t2"):
        image = np.asarray(nib.load(data / test_case / f"{test_case}_{suffix}.nii.gz").dataobj, dtype=np.float32)
        inside = image[brain]
        z = np.where(brain, (image - inside.mean()) / inside.std(), -2.5).astype(np.float32)
        nib.save(nib.Nifti1Image(z, t1.affine), zscored / f"Case-z_{suffix}.nii.gz")
    run_evaluation(data, store, ["tiny"], tmp_path / "out", figures=False, also=[zscored.parent])
    rows = {row["case"]: row for row in csv.DictReader((tmp_path / "out" / "per_case.csv").open())}
    original, copy = rows[test_case], rows["Case-z"]
    for name in ("psnr_brain", "ssim_brain"):
        assert float(copy[name]) == pytest.approx(float(original[name]), abs=1e-3), name
    assert math.isfinite(float(copy["psnr_brasyn"])) and 0.0 < float(copy["ssim_brasyn_rest"]) <= 1.0
