"""Fixtures of the data tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from synnet.modalities import Modality
from training.data.brats import LoadedCase, find_cases, load_case


@pytest.fixture(scope="session")
def loaded_phantom(phantom_root: Path) -> LoadedCase:
    """The first generated case, all four modalities and its segmentation, in memory."""
    return load_case(find_cases(phantom_root)[0], list(Modality))
