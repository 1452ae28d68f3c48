"""Tiny BraTS-named cases on disk (40×40×12, four modalities): fast to load, for CLI, data-path and evaluation tests."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from synnet.modalities import Modality

BRATS_SUFFIX = {Modality.T1: "t1", Modality.T1c: "t1ce", Modality.T2: "t2", Modality.FLAIR: "flair"}


def write_tiny_cases(root: Path, n_cases: int = 3, shape: tuple[int, int, int] = (40, 40, 12)) -> Path:
    """BraTS-2018-named cases with an ellipsoid brain and a different smooth contrast per modality."""
    rng = np.random.default_rng(0)
    x, y, z = np.mgrid[: shape[0], : shape[1], : shape[2]]
    brain = ((x - shape[0] / 2) / (shape[0] / 2.6)) ** 2 + ((y - shape[1] / 2) / (shape[1] / 2.4)) ** 2 + (
        (z - shape[2] / 2) / (shape[2] / 1.6)
    ) ** 2 < 1
    for c in range(n_cases):
        case_id = f"Case{c}"
        (root / case_id).mkdir(parents=True, exist_ok=True)
        for i, modality in enumerate(Modality):
            texture = np.sin(x / (3 + i)) + np.cos(y / (4 + c)) + 0.1 * rng.random(shape)
            image = np.where(brain, 200 + 40 * i + 30 * texture, 0).astype(np.float32)
            path = root / case_id / f"{case_id}_{BRATS_SUFFIX[modality]}.nii.gz"
            nib.save(nib.Nifti1Image(image, np.eye(4)), path)
    return root
