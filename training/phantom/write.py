"""Writing generated cases to disk in the BraTS 2021 layout, so the BraTS loader reads them."""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np

from synnet.imageio import save_nifti
from synnet.modalities import Modality
from training.phantom.generate import generate_case

logger = logging.getLogger(__name__)

CASE_PREFIX = "BraTS2021_phantom_"
# BraTS 2021 file suffixes.
FILE_SUFFIXES = {Modality.T1: "t1", Modality.T1c: "t1ce", Modality.T2: "t2", Modality.FLAIR: "flair"}


def case_seed(seed: int, index: int) -> int:
    """The seed of case ``index`` of a dataset made with ``seed``.

    Mixed through :class:`numpy.random.SeedSequence` so that datasets made with neighbouring
    seeds share no case (``seed + index`` would make seed 1 repeat seed 0 shifted by one).
    """
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def _save(array: np.ndarray, affine: np.ndarray, path: Path, description: str) -> None:
    image = nib.Nifti1Image(array, affine)
    image.header.set_xyzt_units("mm")
    image.header.set_qform(affine, code=1)
    image.header.set_sform(affine, code=1)
    image.header["descrip"] = description.encode()[:79]
    save_nifti(image, path)


def write_case(case: dict, folder: str | Path, case_id: str) -> Path:
    """Write one case from :func:`generate_case` as ``folder/<case_id>_{t1,t1ce,t2,flair,seg}.nii.gz``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    description = f"synnet phantom, seed {case['seed']}"
    for modality, suffix in FILE_SUFFIXES.items():
        _save(case[modality], case["affine"], folder / f"{case_id}_{suffix}.nii.gz", description)
    _save(case["seg"], case["affine"], folder / f"{case_id}_seg.nii.gz", description)
    return folder


def write_cases(out_dir: str | Path, n_cases: int, seed: int = 0) -> list[Path]:
    """Generate ``n_cases`` cases into ``out_dir/BraTS2021_phantom_<index:05d>/``.

    Args:
        out_dir: dataset root (created if needed); existing case folders are overwritten.
        n_cases: how many cases, >= 1.
        seed: dataset seed; case ``i`` uses :func:`case_seed` (seed, i), so the same seed gives
            the same data and a dataset of N cases is a prefix of one of N + 1.

    Returns:
        The case folders, in index order.
    """
    if n_cases < 1:
        raise ValueError(f"n_cases must be at least 1, got {n_cases}")
    out_dir = Path(out_dir)
    folders = []
    for index in range(n_cases):
        case_id = f"{CASE_PREFIX}{index:05d}"
        folders.append(write_case(generate_case(case_seed(seed, index)), out_dir / case_id, case_id))
        logger.info("wrote %s", folders[-1])
    return folders
