"""BraTS case discovery, loading and subject-level splitting."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from synnet.modalities import Modality
from training.data.brats import WHOLE_TUMOUR_LABEL, find_cases, load_case, split_cases
from training.data.errors import DataError

ALL = list(Modality)
BRATS_2023 = {"t1": "t1n", "t1ce": "t1c", "t2": "t2w", "flair": "t2f", "seg": "seg"}
TINY_SHAPE = (24, 20, 10)


def tiny_volume(shape: tuple[int, int, int] = TINY_SHAPE, level: float = 100.0) -> np.ndarray:
    """An int16 box-shaped 'brain' in the middle of a zero background."""
    volume = np.zeros(shape, np.int16)
    volume[4:-4, 4:-4, 2:-2] = level
    return volume


def write_nifti(path: Path, array: np.ndarray, affine: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, np.eye(4) if affine is None else affine), path)
    return path


@pytest.fixture
def make_tiny_case(tmp_path: Path) -> Callable[..., Path]:
    """Write a small case folder: one file per suffix, a default box unless an array is given."""

    def make(case_id: str, suffixes: Iterable[str], sep: str = "_", ext: str = ".nii.gz", **arrays) -> Path:
        folder = tmp_path / case_id
        for suffix in suffixes:
            write_nifti(folder / f"{case_id}{sep}{suffix}{ext}", arrays.get(suffix, tiny_volume()))
        return folder

    return make


# --- discovery -------------------------------------------------------------------------------


def test_finds_generated_cases_in_the_2021_layout(phantom_root: Path) -> None:
    cases = find_cases(phantom_root)
    assert [c.case_id for c in cases] == [f"BraTS2021_phantom_{i:05d}" for i in range(3)]
    for case in cases:
        assert set(case.files) == set(Modality)
        assert case.files[Modality.T1c].name == f"{case.case_id}_t1ce.nii.gz"
        assert case.files[Modality.FLAIR].name == f"{case.case_id}_flair.nii.gz"
        assert case.seg is not None and case.seg.name == f"{case.case_id}_seg.nii.gz"
        assert case.lacks(ALL) == []


def test_2023_names_load_the_same_arrays(phantom_root: Path, tmp_path: Path) -> None:
    original = find_cases(phantom_root)[0]
    case_id = "BraTS-GLI-00000-000"
    folder = tmp_path / case_id
    folder.mkdir()
    for path in original.folder.iterdir():
        suffix = path.name[len(original.case_id) + 1 : -len(".nii.gz")]
        os.link(path, folder / f"{case_id}-{BRATS_2023[suffix]}.nii.gz")

    (renamed,) = find_cases(tmp_path)
    assert renamed.case_id == case_id
    assert {m: p.name for m, p in renamed.files.items()} == {
        Modality.T1: f"{case_id}-t1n.nii.gz",
        Modality.T1c: f"{case_id}-t1c.nii.gz",
        Modality.T2: f"{case_id}-t2w.nii.gz",
        Modality.FLAIR: f"{case_id}-t2f.nii.gz",
    }
    assert renamed.seg is not None and renamed.seg.name == f"{case_id}-seg.nii.gz"
    a, b = load_case(original, [Modality.T2, Modality.FLAIR]), load_case(renamed, ["t2w", "t2f"])
    for modality in (Modality.T2, Modality.FLAIR):
        np.testing.assert_array_equal(a.images[modality], b.images[modality])
    np.testing.assert_array_equal(a.seg, b.seg)


def test_uncompressed_nii_and_unrelated_files(make_tiny_case, tmp_path: Path) -> None:
    folder = make_tiny_case("Brats18_X_1", ["t1", "t2"], ext=".nii")
    (folder / "notes.txt").write_text("not an image")
    write_nifti(folder / "Brats18_X_1_brainmask.nii.gz", tiny_volume())
    make_tiny_case("Brats18_A_1", ["t1ce", "flair"])
    (tmp_path / "empty_folder").mkdir()

    cases = find_cases(tmp_path)
    assert [c.case_id for c in cases] == ["Brats18_A_1", "Brats18_X_1"]
    assert set(cases[1].files) == {Modality.T1, Modality.T2}
    assert cases[1].seg is None
    assert cases[1].files[Modality.T1].name == "Brats18_X_1_t1.nii"


def test_no_cases_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no BraTS cases") as info:
        find_cases(tmp_path)
    assert info.value.code == "no_cases"
    with pytest.raises(DataError, match="not a folder"):
        find_cases(tmp_path / "absent")


def test_two_files_for_one_modality_is_an_error(make_tiny_case, tmp_path: Path) -> None:
    folder = make_tiny_case("Case1", ["t1", "t2"])
    write_nifti(folder / "Case1_t1n.nii", tiny_volume())
    with pytest.raises(DataError, match=r"Case1 has two T1 files") as info:
        find_cases(tmp_path)
    assert info.value.code == "duplicate_file"


# --- loading ---------------------------------------------------------------------------------


def test_load_case_returns_float32_volumes_and_the_affine(loaded_phantom) -> None:
    assert set(loaded_phantom.images) == set(Modality)
    for image in loaded_phantom.images.values():
        assert image.shape == (240, 240, 155) and image.dtype == np.float32
    assert loaded_phantom.affine.shape == (4, 4)
    assert loaded_phantom.affine[0, 0] == -1 and loaded_phantom.affine[1, 1] == -1
    assert loaded_phantom.seg is not None and loaded_phantom.seg.dtype == np.uint8


def test_missing_modality_names_the_case_and_the_modality(make_tiny_case, tmp_path: Path) -> None:
    make_tiny_case("Case7", ["t1", "t1ce", "t2"])
    (case,) = find_cases(tmp_path)
    assert case.lacks(["FLAIR", "t1", "t2w"]) == [Modality.FLAIR]
    with pytest.raises(DataError) as info:
        load_case(case, [Modality.T1, Modality.FLAIR])
    assert info.value.code == "missing_modality"
    assert "Case7" in str(info.value) and "lacks FLAIR" in str(info.value)
    assert "found: T1,T1c,T2" in str(info.value)


def test_shape_mismatch_names_the_modalities_and_shapes(make_tiny_case, tmp_path: Path) -> None:
    make_tiny_case("Case2", ["t1", "t2"], t2=tiny_volume((24, 20, 12)))
    (case,) = find_cases(tmp_path)
    with pytest.raises(DataError) as info:
        load_case(case, [Modality.T1, Modality.T2])
    message = str(info.value)
    assert info.value.code == "mismatched_case"
    assert "case Case2" in message and "T2 has shape (24, 20, 12) but T1 has shape (24, 20, 10)" in message


def test_affine_mismatch_names_the_modality(make_tiny_case, tmp_path: Path) -> None:
    folder = make_tiny_case("Case3", ["t1", "t2", "flair"])
    shifted = np.eye(4)
    shifted[0, 3] = 5.0
    write_nifti(folder / "Case3_flair.nii.gz", tiny_volume(), affine=shifted)
    (case,) = find_cases(tmp_path)
    load_case(case, [Modality.T1, Modality.T2])  # the co-registered pair is fine
    with pytest.raises(DataError, match=r"case Case3: FLAIR and T1 have the same shape but different affines") as info:
        load_case(case, [Modality.T1, Modality.T2, Modality.FLAIR])
    assert "5" in str(info.value)


def test_segmentation_on_another_grid_is_rejected(make_tiny_case, tmp_path: Path) -> None:
    make_tiny_case("Case4", ["t1", "seg"], seg=tiny_volume((20, 20, 10)))
    (case,) = find_cases(tmp_path)
    with pytest.raises(DataError, match="seg"):
        load_case(case, [Modality.T1])
    assert load_case(case, [Modality.T1], load_seg=False).seg is None


def test_a_whole_tumour_mask_loads_as_the_whole_tumour_only(make_tiny_case, tmp_path: Path) -> None:
    """The T1+FLAIR-only subjects ship a binary mask: it weighs the tumour like a label map's seg > 0."""
    mask = np.zeros(TINY_SHAPE, np.uint8)
    mask[8:12, 8:12, 4:6] = 1
    make_tiny_case("Case5", ["t1", "flair", "wholetumour"], wholetumour=mask)
    (case,) = find_cases(tmp_path)
    assert case.whole_tumour_only and case.lacks(ALL) == [Modality.T1c, Modality.T2]
    seg = load_case(case, [Modality.T1]).seg
    assert seg is not None and set(np.unique(seg)) == {0, WHOLE_TUMOUR_LABEL} and ((seg > 0) == (mask > 0)).all()


def test_a_label_map_wins_over_a_whole_tumour_mask(make_tiny_case, tmp_path: Path) -> None:
    make_tiny_case("Case6", ["t1", "seg", "wholetumour"])
    (case,) = find_cases(tmp_path)
    assert case.seg is not None and case.seg.name == "Case6_seg.nii.gz" and not case.whole_tumour_only


# --- splitting -------------------------------------------------------------------------------

IDS = [f"Brats18_{i:03d}" for i in range(16)]


def test_split_is_deterministic_disjoint_and_independent_of_order() -> None:
    kept, held = split_cases(IDS, 4, seed=0)
    assert len(kept) == 12 and len(held) == 4
    assert set(kept).isdisjoint(held) and set(kept) | set(held) == set(IDS)
    assert kept == sorted(kept) and held == sorted(held)
    shuffled = IDS[:]
    random.Random(1).shuffle(shuffled)
    assert split_cases(shuffled, 4, seed=0) == (kept, held)
    assert split_cases(IDS, 4, seed=0) == (kept, held)


def test_seed_changes_the_split() -> None:
    held_out = {tuple(split_cases(IDS, 4, seed=s)[1]) for s in range(5)}
    assert len(held_out) > 1


def test_adding_a_case_moves_no_other_case() -> None:
    _, held = split_cases(IDS, 4, seed=0)
    _, held_more = split_cases([*IDS, "Brats18_new"], 4, seed=0)
    assert len(set(held) & set(held_more)) >= 3


@pytest.mark.parametrize(
    ("ids", "n", "match"),
    [(IDS, 17, "cannot hold out 17 of 16"), (IDS, -1, "cannot hold out -1"), (["a", "b", "a"], 1, "twice: a")],
)
def test_bad_split_requests(ids: list[str], n: int, match: str) -> None:
    with pytest.raises(DataError, match=match) as info:
        split_cases(ids, n, seed=0)
    assert info.value.code == "bad_split"
