"""Hostile uploads against the service: each refused with its status and code, quickly, in bounded memory."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from hostile_corpus import Hostile, bomb, corpus, declared_too_large

from live_service import live_service, process_memory_mb

CORPUS = corpus()
STATUS = {"too_large": 413, "unsupported_format": 415}  # every other code of the corpus is a 422
QUERY = {"src": "T1", "dst": "T2"}
REFUSAL_LIMIT_S = 5.0
USUAL_BASELINE_S = 0.01


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
    env = {
        "SYNNET_MODEL_STORE": str(store), "SYNNET_DEVICE": "cpu", "SYNNET_LOG_LEVEL": "warning",
        "SYNNET_TORCH_THREADS": "1",
    }  # fmt: skip
    with live_service(env, tmp_path_factory.mktemp("hostile") / "service.log", ready_timeout_s=60) as running:
        yield running.url, running.process


def refusal_seconds(client: httpx.Client, case: Hostile) -> float:
    began = time.perf_counter()
    response = client.post("/synthesize", params=QUERY, files={"T1": (case.filename, case.data)})
    seconds = time.perf_counter() - began
    assert_refused(response, case)
    return seconds


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's peak RSS from /proc")
def test_a_real_server_refuses_the_corpus_fast_in_bounded_memory(server, record_property) -> None:
    """The issue's target: over the corpus and both bombs, no refusal over 5 s, server peak RSS under 1.5 GB.

    On a slow or shared machine every request is slower, so the 5 s is scaled by how much slower than
    usual this server answers a refusal that costs nothing (an 18-byte file that is no image), measured
    here: USUAL_BASELINE_S is that time on an idle 2-core machine. A bomb that was inflated would cost
    seconds more than the baseline allows, and the peak RSS does not depend on speed.
    """
    url, process = server
    cases = [*CORPUS, Hostile("2 GiB bomb", "t1.nii.gz", bomb(), "too_large", "too large"),
             Hostile("declares 2 GiB", "t1.nii.gz", declared_too_large(), "too_large", "too large")]  # fmt: skip
    trivial = Hostile("no image", "t1.png", b"this is not a png", "unsupported_format", "")
    with httpx.Client(base_url=url, timeout=120) as client:
        baseline = float(np.median([refusal_seconds(client, trivial) for _ in range(5)]))
        seconds = {case.id: refusal_seconds(client, case) for case in cases}
    peak = process_memory_mb(process.pid, "VmHWM")
    slowest = max(seconds, key=seconds.get)
    slowdown = max(1.0, baseline / USUAL_BASELINE_S)
    record_property("slowest_refusal_s", round(seconds[slowest], 3))  # the figures of docs/service.md (--junitxml)
    record_property("server_peak_rss_mb", round(peak))
    print(f"hostile: slowest refusal {seconds[slowest]:.3f} s ({slowest}), baseline {baseline * 1000:.1f} ms "
          f"(slowdown {slowdown:.1f}), peak RSS {peak:.0f} MB")  # fmt: skip
    assert seconds[slowest] < REFUSAL_LIMIT_S * slowdown, (slowest, seconds[slowest], baseline)
    assert peak < 1500
