"""Input warnings: none on BraTS data (generated and real, both LPS at 1 mm, skull-stripped), exactly the
right one for each defect made on purpose."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from synnet.imageio import read_image
from synnet.input_checks import check_inputs
from synnet.modalities import Modality

REAL_CASE = Path(__file__).resolve().parents[2].parent / "shared/data/brats18/Brats18_2013_2_1"
SUFFIX = {Modality.T1: "t1", Modality.T1c: "t1ce", Modality.T2: "t2"}


def load(folder: Path) -> tuple[dict[Modality, np.ndarray], object]:
    read = {m: read_image(next(folder.glob(f"*_{s}.nii.gz"))) for m, s in SUFFIX.items()}
    return {m: a for m, (a, _) in read.items()}, read[Modality.T1][1]


@pytest.fixture(scope="module")
def phantom(phantom_root: Path):
    return load(sorted(p for p in phantom_root.iterdir() if p.is_dir())[0])


@pytest.fixture(scope="module")
def real():
    if not REAL_CASE.is_dir():
        pytest.skip(f"no real BraTS case at {REAL_CASE}")
    return load(REAL_CASE)


def codes(sources, meta) -> list[str]:
    return [w.code for w in check_inputs(sources, meta)]


def with_affine(meta, affine: np.ndarray):
    """``meta`` as a NIfTI written with ``affine`` would carry it (header zooms included)."""
    header = meta.header.copy()
    header.set_qform(affine, code=1)
    header.set_sform(affine, code=1)
    return type(meta)(**{**vars(meta), "affine": affine, "header": header})


@pytest.mark.parametrize("case", ["phantom", "real"])
def test_each_defect_gives_its_warning(case: str, request) -> None:
    sources, meta = request.getfixturevalue(case)
    assert check_inputs(sources, meta) == []

    noisy = dict(sources)  # not skull-stripped: the background filled with low noise
    background = sources[Modality.T2] == 0
    noise = np.random.default_rng(0).uniform(1.0, 30.0, size=background.sum()).astype(np.float32)
    noisy[Modality.T2] = sources[Modality.T2].copy()
    noisy[Modality.T2][background] = noise
    warnings = check_inputs(noisy, meta)
    assert [w.code for w in warnings] == ["not_skull_stripped"]
    assert warnings[0].message.startswith("T2: 100% of the slice edges") and "Skull-strip" in warnings[0].message

    thick = with_affine(meta, meta.affine @ np.diag([1.0, 1.0, 3.0, 1.0]))
    warnings = check_inputs(sources, thick)
    assert [w.code for w in warnings] == ["voxel_size"]
    assert "voxel size 1 × 1 × 3 mm" in warnings[0].message and "resample to 1 mm" in warnings[0].message

    flipped = with_affine(meta, meta.affine @ np.diag([-1.0, 1.0, 1.0, 1.0]))  # the x axis stored reversed
    warnings = check_inputs(sources, flipped)
    assert [w.code for w in warnings] == ["orientation"]
    assert "orientation RPS differs from the BraTS template's LPS" in warnings[0].message

    shifted = dict(sources)  # T1c moved 12 mm forward: not co-registered with the others
    shifted[Modality.T1c] = np.roll(sources[Modality.T1c], 12, axis=1)
    warnings = check_inputs(shifted, meta)
    assert [w.code for w in warnings] == ["not_coregistered", "not_coregistered"]
    assert all("T1c" in w.message and "register" in w.message.lower() for w in warnings)


def test_arrays_and_png_skip_what_they_cannot_tell() -> None:
    image = np.zeros((64, 64), np.float32)
    image[16:48, 16:48] = 1.0
    assert check_inputs({Modality.T1: image}) == []
    assert codes({Modality.T1: np.ones((64, 64), np.float32)}, None) == ["not_skull_stripped"]
