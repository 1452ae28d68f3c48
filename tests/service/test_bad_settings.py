"""A bad SYNNET_* value stops ``python -m service`` at start: exit 2, one line per variable, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_service_exits_2_naming_each_bad_variable(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNNET_")}
    env |= {"SYNNET_MAX_BATCH_SIZE": "0", "SYNNET_LOG_LEVEL": "loud", "SYNNET_MODEL_STORE": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "service"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert "SYNNET_MAX_BATCH_SIZE: Input should be greater than or equal to 1 (got '0')" in done.stderr
    assert "SYNNET_LOG_LEVEL: Input should be 'critical', 'error', 'warning', 'info' or 'debug' (got 'loud')" in (
        done.stderr
    )
