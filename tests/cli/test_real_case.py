"""The BraSyn task on a real case: a held-out BraTS 2018 case with its FLAIR removed is filled, and
``synnet evaluate`` scores the synthetic FLAIR against the removed file (skipped without the data)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from synnet_cli.__main__ import main

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CASE = REPO.parent / "shared/data/brats18/Brats18_CBICA_ABM_1"  # held out by every bundled model
MODEL = "synnet_t1-t1c-t2_to_flair"


@pytest.mark.skipif(not CASE.is_dir(), reason=f"no real BraTS case at {CASE}")
def test_a_real_case_without_flair_is_filled_and_scored(tmp_path: Path, capsys) -> None:
    dataset = tmp_path / "brats" / CASE.name
    dataset.mkdir(parents=True)
    for suffix in ("t1", "t1ce", "t2", "seg"):
        (dataset / f"{CASE.name}_{suffix}.nii.gz").symlink_to(CASE / f"{CASE.name}_{suffix}.nii.gz")
    out = tmp_path / "filled"
    assert main(["fill", str(dataset.parent), "-o", str(out), "--store", str(REPO / "model_store")]) == 0
    report = capsys.readouterr().out
    # the dedicated model: the unified model's validation scores are not above it by more than a rerun's noise
    assert re.search(rf"{CASE.name}\s+FLAIR\s+{MODEL}\s+\d", report), report

    filled = out / CASE.name / f"{CASE.name}_flair.nii.gz"
    truth = CASE / f"{CASE.name}_flair.nii.gz"
    assert sorted(p.name for p in out.rglob("*.nii.gz")) == [filled.name]
    image, source = nib.load(filled), nib.load(CASE / f"{CASE.name}_t1.nii.gz")
    assert image.shape == source.shape == (240, 240, 155)
    np.testing.assert_array_equal(image.affine, source.affine)

    seg = CASE / f"{CASE.name}_seg.nii.gz"
    assert main(["evaluate", "--pred", str(filled), "--truth", str(truth), "--seg", str(seg)]) == 0
    printed = capsys.readouterr().out
    print(printed)  # the numbers, for the record (pytest -s)
    assert f"model space of {MODEL}" in printed
    # The numbers training.evaluate recorded for the bundled model on this case.
    with (REPO / "docs/results/bundled/per_case.csv").open() as handle:
        recorded = next(
            row for row in csv.DictReader(handle)
            if row["model"] == MODEL and row["case"] == CASE.name and row["target"] == "FLAIR"
        )  # fmt: skip
    for name, key in (("in brain", "brain"), ("whole \\(model space\\)", "")):
        psnr, ssim = map(float, re.search(rf"{name}\s+([\d.]+)\s+([\d.]+)", printed).groups())
        suffix = f"_{key}" if key else ""
        assert psnr == pytest.approx(float(recorded[f"psnr{suffix}"]), abs=0.01)
        if recorded[f"ssim{suffix}"]:  # the all-configurations evaluation skips the whole-volume SSIM
            assert ssim == pytest.approx(float(recorded[f"ssim{suffix}"]), abs=0.001)
    assert re.search(r"BraSyn\s+[\d.]+\s+tumour 0\.\d+, rest 0\.\d+", printed), printed
