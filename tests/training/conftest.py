"""Fixtures of the training tests: small hand-made slice stacks in memory and NIfTI cases on disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from synnet.modalities import parse_modalities
from synnet.normalization import IntensityRange
from tiny_cases import write_tiny_cases
from training.data.slices import SliceStack


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
