"""``synnet fill``: exactly the missing files, in the dataset's naming and the sources' space; resumable."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from synnet.dataset_layout import scan_dataset
from synnet_cli.__main__ import main

pytestmark = pytest.mark.slow

BUNDLED = Path(__file__).resolve().parents[2] / "model_store"
EXPECTED = {
    "Case_A/Case_A_flair.nii.gz",
    "Case_B/Case_B_t2.nii.gz",
    "Case_B/Case_B_flair.nii.gz",
    "BraTS-GLI-00003-000/BraTS-GLI-00003-000-t1c.nii.gz",
}


def written(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}


def fill(dataset: Path, out: Path, *extra: str) -> int:
    return main(["fill", str(dataset), "-o", str(out), "--store", str(BUNDLED), "--device", "cpu", *extra])


def test_fill_writes_exactly_the_missing_files_then_nothing(dataset: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "filled"
    assert fill(dataset, out) == 0
    report = capsys.readouterr().out
    assert set(written(out)) == EXPECTED
    assert "3 case(s) filled, 1 complete, 0 filled before" in report
    # routed by validation scores: FLAIR from T1,T1c,T2 by its dedicated model (the unified model's gain is within
    # a rerun's noise); from T1,T1c, T2 by T1,T1c -> T2 (the MIMO model does not beat it) and FLAIR by
    # T1 -> FLAIR (higher on both, beyond the noise)
    for line, model in [
        ("Case_A", "synnet_t1-t1c-t2_to_flair"),
        ("Case_B", "synnet_t1-t1c_to_t2"),
        ("Case_B", "synnet_t1_to_flair"),
    ]:
        assert any(row.split()[:1] == [line] and model in row for row in report.splitlines()), report
    for case in scan_dataset(dataset):
        for name in (p.name for p in (out / case.case_id).glob("*")) if (out / case.case_id).exists() else ():
            source = nib.load(next(iter(case.files.values())))
            image = nib.load(out / case.case_id / name)
            assert image.shape == source.shape
            np.testing.assert_array_equal(image.affine, source.affine)
            assert image.header["descrip"].tobytes().startswith(b"synthetic ")
            assert np.asarray(image.dataobj).any()

    before = written(out)
    assert fill(dataset, out) == 0
    assert written(out) == before  # nothing rewritten
    assert "0 case(s) filled, 1 complete, 3 filled before" in capsys.readouterr().out

    # A run stopped after Case_B's T2: the resumed run writes the FLAIR alone, as the first run did.
    flair = out / "Case_B/Case_B_flair.nii.gz"
    first = np.asarray(nib.load(flair).dataobj)
    flair.unlink()
    assert fill(dataset, out) == 0
    after = written(out)
    assert set(after) == EXPECTED
    assert {k for k in after if after[k] != before[k]} == {"Case_B/Case_B_flair.nii.gz"}
    np.testing.assert_array_equal(np.asarray(nib.load(flair).dataobj), first)
    assert "Case_B  FLAIR" in capsys.readouterr().out
