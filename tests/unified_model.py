"""A tiny unified (any-to-any) SynNet for the tests that need one in a store, trained and exported
by the real ``python -m training.fit --arch unified`` on the session's phantom cases."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UNIFIED_NAME = "synnet_unified"  # training.fit's default name for --arch unified
# As small as training.fit makes them: two steps on 32x32 crops.
TINY_UNIFIED = [
    "--arch", "unified", "--epochs", "1", "--max-steps", "2", "--batch-size", "2", "--slice-size", "32",
    "--features", "4", "--depth", "2", "--val-max-slices", "2", "--seed", "0",
]  # fmt: skip


def fit_unified(data: Path, store: Path, run_dir: Path, extra_data: Path | None = None) -> Path:
    """Train a tiny unified model on ``data`` (plus ``extra_data``) and export it into ``store``.

    Returns:
        The model's folder, ``store / UNIFIED_NAME``. A failed run fails the test with its stderr.
    """
    extra = ["--extra-data", str(extra_data)] if extra_data is not None else []
    command = [
        sys.executable, "-m", "training.fit", *TINY_UNIFIED, "--data", str(data), *extra,
        "--out", str(store), "--run-dir", str(run_dir),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.fail(f"training.fit --arch unified failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return store / UNIFIED_NAME
