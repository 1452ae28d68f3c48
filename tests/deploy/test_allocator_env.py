"""glibc malloc keeps freed memory in the images: GLIBC_TUNABLES is their environment, one value everywhere."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from service.allocator import MALLOC_TUNABLES, keeps_freed_memory

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.gpu"])
def test_service_images_set_the_tunables(dockerfile: str) -> None:
    text = (REPO / "docker" / dockerfile).read_text()
    service_stage = text[text.index("AS service") :]
    assert re.search(rf"GLIBC_TUNABLES={re.escape(MALLOC_TUNABLES)}\s*$", service_stage, re.MULTILINE)


def test_a_process_started_with_them_reports_it_and_the_app_changes_nothing() -> None:
    code = "from service.allocator import keeps_freed_memory; print(keeps_freed_memory())"
    env = {"GLIBC_TUNABLES": MALLOC_TUNABLES, "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "True", out.stderr
    assert not keeps_freed_memory({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
    assert "mallopt" not in (REPO / "service" / "runtime.py").read_text()
