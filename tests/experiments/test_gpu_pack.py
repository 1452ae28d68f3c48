"""experiments.gpu_pack: a packed and unpacked case normalizes to within one 7-bit step of the original."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from experiments.gpu_pack import LEVELS, main
from synnet.modalities import Modality
from synnet.normalization import brain_mask, normalize
from training.data.brats import find_cases, load_case


def test_pack_round_trip_keeps_model_space_within_one_step(phantom_root: Path, tmp_path: Path) -> None:
    case = find_cases(phantom_root)[0]
    packed = tmp_path / "cases.pack"
    assert main(["pack", "--data", str(phantom_root), "--cases", case.case_id, "--out", str(packed)]) == 0
    assert main(["unpack", str(packed), "--out", str(tmp_path / "out")]) == 0
    modalities = [Modality.T1, Modality.T2, Modality.FLAIR, Modality.T1c]
    original = load_case(case, modalities, load_seg=False)
    copy = load_case(find_cases(tmp_path / "out")[0], modalities, load_seg=False)
    mask = brain_mask(list(original.images.values()))
    assert np.array_equal(mask, brain_mask(list(copy.images.values())))
    np.testing.assert_allclose(copy.affine, original.affine)
    for modality in modalities:
        before, range_before = normalize(original.images[modality], mask)
        after, range_after = normalize(copy.images[modality], mask)
        step = 1.0 / LEVELS
        assert abs(range_after.hi - range_before.hi) <= step * (range_before.hi - range_before.lo)
        assert float(np.abs(after - before)[mask].max()) <= 1.5 * step
    assert packed.stat().st_size < 0.5 * sum(p.stat().st_size for p in case.files.values())
    # the tumour labels travel too: the bundled recipe weighs the loss inside the tumour
    labels_before = load_case(case, [Modality.T1]).seg
    labels_after = load_case(find_cases(tmp_path / "out")[0], [Modality.T1]).seg
    assert labels_before is not None and labels_before.any()
    assert labels_after is not None and np.array_equal(labels_after, labels_before)


def test_pack_keeps_a_partial_case_and_its_whole_tumour_mask(phantom_root: Path, tmp_path: Path) -> None:
    """A T1+FLAIR-only subject with a binary mask (as in ../shared/data/brats18_t1_flair) comes back as one."""
    source = find_cases(phantom_root)[0]
    case_id = "partial_subject"
    folder = tmp_path / "partial" / case_id
    folder.mkdir(parents=True)
    for modality, token in ((Modality.T1, "t1"), (Modality.FLAIR, "flair")):
        (folder / f"{case_id}_{token}.nii.gz").write_bytes(source.files[modality].read_bytes())
    labels = nib.load(source.seg)
    whole = (np.asarray(labels.dataobj) > 0).astype(np.uint8)
    nib.save(nib.Nifti1Image(whole, labels.affine), folder / f"{case_id}_wholetumour.nii.gz")
    packed = tmp_path / "partial.pack"
    assert main(["pack", "--data", str(tmp_path / "partial"), "--out", str(packed)]) == 0  # every case
    assert main(["unpack", str(packed), "--out", str(tmp_path / "out")]) == 0
    copy = find_cases(tmp_path / "out")[0]
    assert copy.case_id == case_id and set(copy.files) == {Modality.T1, Modality.FLAIR}
    assert copy.whole_tumour_only
    loaded = load_case(copy, [Modality.T1, Modality.FLAIR])
    assert loaded.seg is not None and np.array_equal(loaded.seg > 0, whole > 0)


def test_pack_names_missing_cases(phantom_root: Path, tmp_path: Path, capsys) -> None:
    assert main(["pack", "--data", str(phantom_root), "--cases", "nobody", "--out", str(tmp_path / "x")]) == 2
    assert "nobody" in capsys.readouterr().err
