"""Fixtures shared by every test package: generated BraTS-like cases on disk.

Generated cases (:mod:`training.phantom`) stand in for real BraTS data so that the suite runs on a
fresh machine without network or data; they are made once per test session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

PHANTOM_CASES = 3
PHANTOM_SEED = 0


@pytest.fixture(scope="session")
def phantom_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BraTS-2021-layout folder of 3 generated cases (seed 0), written once per session.

    Each case is ``BraTS2021_phantom_0000i/BraTS2021_phantom_0000i_{t1,t1ce,t2,flair,seg}.nii.gz``,
    240 x 240 x 155 int16. Treat it as read-only: other tests share it.
    """
    from training.phantom import write_cases

    root = tmp_path_factory.mktemp("phantom_brats")
    write_cases(root, PHANTOM_CASES, seed=PHANTOM_SEED)
    return root


@pytest.fixture(scope="session", autouse=True)
def training_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every training run of the session (in this process or a subprocess) caches its cases in a temporary
    folder, never in the checkout's data/cache."""
    cache_env = "SYNNET_TRAINING_CACHE"  # synnet.settings.training.TrainingSettings.training_cache

    folder = tmp_path_factory.mktemp("training_cache")
    previous = os.environ.get(cache_env)
    os.environ[cache_env] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop(cache_env, None)
    else:
        os.environ[cache_env] = previous
