"""Fixtures of the training tests: small hand-made slice stacks in memory and NIfTI cases on disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from synnet.modalities import Modality, parse_modalities
from synnet.normalization import IntensityRange
from training.data.slices import SliceStack

BRATS_SUFFIX = {Modality.T1: "t1", Modality.T1c: "t1ce", Modality.T2: "t2", Modality.FLAIR: "flair"}


def disc_stack(case_id: str = "c0", n: int = 4, size: int = 40, src: str = "T1", dst: str = "T2") -> SliceStack:
    """A stack whose brain is a centred disc; target channels = 1 - source, so content is known."""
    rows, cols = np.mgrid[:size, :size]
    mask = (rows - size / 2) ** 2 + (cols - size / 2) ** 2 < (size / 3) ** 2
    src_m, dst_m = parse_modalities(src), parse_modalities(dst)
    ramp = (rows + 2 * cols) / (3 * size)
    sources = np.stack([np.stack([ramp * (i + 1) / n * mask] * len(src_m)) for i in range(n)]).astype(np.float32)
    targets = np.stack([np.stack([(1 - ramp) * mask] * len(dst_m)) for _ in range(n)]).astype(np.float32)
    return SliceStack(
        case_id=case_id,
        src=src_m,
        dst=dst_m,
        sources=sources,
        targets=targets,
        masks=np.stack([mask] * n),
        slice_indices=np.arange(n),
        ranges={m: IntensityRange(lo=0.0, hi=100.0) for m in (*src_m, *dst_m)},
    )


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


@pytest.fixture
def make_stack() -> Callable[..., SliceStack]:
    """Factory of :func:`disc_stack` slice stacks."""
    return disc_stack


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three 40×40×12 BraTS-named cases: fast to load, for CLI and data-path tests."""
    return write_tiny_cases(tmp_path_factory.mktemp("tiny_brats"))


@pytest.fixture
def write_cases() -> Callable[..., Path]:
    """Factory of :func:`write_tiny_cases` folders, for tests that need more cases than ``tiny_root``."""
    return write_tiny_cases
