"""``training.fit`` with no ``--data``: it generates its phantom cases itself and reports validation scores."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

from training.fitting.cli import build_parser, make_config
from training.fitting.run import run

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")]


def test_fit_without_data_generates_cases_and_logs_validation_metrics(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    argv = ["--src", "T1", "--dst", "T2", "--phantom-cases", "3", "--phantom-dir", str(tmp_path / "phantoms"),
            "--val-cases", "1", "--test-cases", "1", "--features", "8", "--depth", "2", "--slice-size", "48",
            "--batch-size", "4", "--epochs", "1", "--steps-per-epoch", "2", "--val-max-slices", "12",
            "--out", str(tmp_path / "store"), "--run-dir", str(tmp_path / "run")]  # fmt: skip
    with caplog.at_level(logging.INFO):
        result = run(make_config(vars(build_parser().parse_args(argv))))
    generated = sorted(p.name for p in (tmp_path / "phantoms").glob("*/*") if p.is_dir())
    assert len(generated) == 3
    manifest = result.manifest
    assert manifest.training_data.source == "generated"
    assert len(manifest.training_data.train_cases) == 1
    scores = manifest.validation["T2"]
    assert math.isfinite(scores.psnr) and 0.0 < scores.ssim <= 1.0
    epoch_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch 1/1")]
    assert epoch_lines and "T2: PSNR" in epoch_lines[0] and "SSIM" in epoch_lines[0]
