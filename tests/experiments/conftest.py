"""Fixtures of the lab's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tiny_cases import write_tiny_cases


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three 40×40×12 BraTS-named cases."""
    return write_tiny_cases(tmp_path_factory.mktemp("tiny_brats"))
