"""Hostile uploads against the service: each refused with its status and code, quickly, in bounded memory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hostile_corpus import Hostile, bomb, corpus, declared_too_large

REPO = Path(__file__).resolve().parents[2]
CORPUS = corpus()
STATUS = {"too_large": 413, "unsupported_format": 415}  # every other code of the corpus is a 422
QUERY = {"src": "T1", "dst": "T2"}


def assert_refused(response: httpx.Response, case: Hostile) -> None:
    assert response.status_code == STATUS.get(case.code, 422), response.text
    body = response.json()
    assert body["error"] == case.code and case.words in body["detail"], body


@pytest.mark.anyio
async def test_every_hostile_file_gets_its_status(serve) -> None:
    async with serve() as (_, client):
        for case in CORPUS:
            response = await client.post("/synthesize", params=QUERY, files={"T1": (case.filename, case.data)})
            assert_refused(response, case)


@pytest.fixture(scope="module")
def server(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, subprocess.Popen]]:
    """``python -m service`` on a free port of 127.0.0.1, ready."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = os.environ | {
        "SYNNET_MODEL_STORE": str(store), "SYNNET_PORT": str(port), "SYNNET_DEVICE": "cpu",
        "SYNNET_LOG_LEVEL": "warning", "SYNNET_TORCH_THREADS": "1",
    }  # fmt: skip
    log = tmp_path_factory.mktemp("hostile") / "service.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "service"], cwd=REPO, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _ready(url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"python -m service did not become ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url, process
    finally:
        process.kill()
        process.wait(timeout=10)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's peak RSS from /proc")
def test_a_real_server_refuses_the_corpus_fast_in_bounded_memory(server, record_property) -> None:
    """The issue's target: over the corpus and both bombs, no refusal over 5 s, server peak RSS under 1.5 GB."""
    url, process = server
    cases = [*CORPUS, Hostile("2 GiB bomb", "t1.nii.gz", bomb(), "too_large", "too large"),
             Hostile("declares 2 GiB", "t1.nii.gz", declared_too_large(), "too_large", "too large")]  # fmt: skip
    slowest = 0.0
    with httpx.Client(base_url=url, timeout=30) as client:
        for case in cases:
            began = time.perf_counter()
            response = client.post("/synthesize", params=QUERY, files={"T1": (case.filename, case.data)})
            slowest = max(slowest, time.perf_counter() - began)
            assert_refused(response, case)
    peak = peak_rss_mb(process.pid)
    record_property("slowest_refusal_s", round(slowest, 3))  # the figures of docs/service.md (--junitxml)
    record_property("server_peak_rss_mb", round(peak))
    assert slowest < 5.0
    assert peak < 1500
