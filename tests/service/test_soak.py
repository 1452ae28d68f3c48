"""A bounded soak of a real ``python -m service``: a few hundred mixed requests from four clients at once
(small volumes, PNG slices, hostile files, clients that vanish after sending), none lost, RSS flat
after warm-up, and every request accounted for in /metrics."""

from __future__ import annotations

import itertools
import re
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from hostile_corpus import corpus

from live_service import live_service, multipart_request, process_memory_mb
from synnet.modalities import Modality

pytestmark = pytest.mark.slow

ROUNDS, WARM_UP_ROUNDS = 40, 8
CLIENTS = 4
QUERY = {"src": "T1", "dst": "T2"}
# RSS may rise this much after warm-up (allocator arenas settling), no more.
RSS_GROWTH_LIMIT_MB = 64
HOSTILE_STATUS = {"too_large": 413, "unsupported_format": 415}
# How long a request is retried after 503s, and how long the vanished clients' work may take to be counted:
# deadlines for polling only, generous so that a slow or shared machine passes.
RETRY_FOR_S = 120


@pytest.fixture(scope="module")
def server(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    env = {
        "SYNNET_MODEL_STORE": str(store), "SYNNET_DEVICE": "cpu", "SYNNET_LOG_LEVEL": "warning",
        "SYNNET_TORCH_THREADS": "1",
    }  # fmt: skip
    with live_service(env, tmp_path_factory.mktemp("soak") / "service.log", ready_timeout_s=90) as running:
        yield running.url, running.process.pid
        assert "Traceback" not in running.log.read_text()


def workload(small_case, kit) -> list[tuple[str, Callable[[str, httpx.Client], str]]]:
    """One round: (kind, call); each call returns what it saw, e.g. '200' or 'gone'."""
    volume = kit.nifti_bytes(small_case[Modality.T1].array, small_case[Modality.T1].affine)
    slices = [kit.png_bytes(small_case[Modality.T1].array[:, :, z], 16) for z in (8, 12, 16, 20)]
    hostile = itertools.cycle(corpus())

    def post(filename: str, data: bytes, expected: int) -> Callable[[str, httpx.Client], str]:
        def call(url: str, client: httpx.Client) -> str:
            # A 503 is an answer too; the work is then sent again, as a client would, until the deadline:
            # how many 503s a slow machine gives before a slot frees is no part of what this test proves.
            deadline = time.monotonic() + RETRY_FOR_S
            while True:
                response = client.post(f"{url}/synthesize", params=QUERY, files={"T1": (filename, data)})
                if response.status_code != 503 or time.monotonic() > deadline:
                    break
                assert response.headers["retry-after"]
                time.sleep(0.05)
            assert response.headers["content-type"] == "application/json"
            assert response.status_code == expected, response.text[:300]
            return str(response.status_code)

        return call

    def vanish(url: str, client: httpx.Client) -> str:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(multipart_request({"T1": ("t1.nii.gz", volume)}))
        return "gone"

    def round_calls() -> list[tuple[str, Callable[[str, httpx.Client], str]]]:
        calls = [("volume", post("t1.nii.gz", volume, 200))]
        calls += [("slice", post("t1.png", png, 200)) for png in slices]
        for case in (next(hostile), next(hostile), next(hostile)):
            calls.append(("hostile", post(case.filename, case.data, HOSTILE_STATUS.get(case.code, 422))))
        calls.append(("disconnect", vanish))
        return calls

    return [call for _ in range(ROUNDS) for call in round_calls()]


def synthesize_count(url: str) -> Counter[str]:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    pattern = r'^synnet_http_requests_total{method="POST",route="/synthesize",status="(\d+)"} (\S+)$'
    return Counter({status: int(float(value)) for status, value in re.findall(pattern, text, re.M)})


def test_soak(server, small_case, kit, record_property) -> None:
    url, pid = server
    calls = workload(small_case, kit)
    per_round = len(calls) // ROUNDS
    seen: Counter[str] = Counter()
    began = time.perf_counter()
    with httpx.Client(timeout=60) as client, ThreadPoolExecutor(CLIENTS) as pool:
        warm, rest = calls[: WARM_UP_ROUNDS * per_round], calls[WARM_UP_ROUNDS * per_round :]
        for kind, outcome in zip([k for k, _ in warm], pool.map(lambda c: c[1](url, client), warm), strict=True):
            seen[f"{kind}:{outcome}"] += 1
        time.sleep(1)
        rss_warm = process_memory_mb(pid)
        for kind, outcome in zip([k for k, _ in rest], pool.map(lambda c: c[1](url, client), rest), strict=True):
            seen[f"{kind}:{outcome}"] += 1
    seconds = time.perf_counter() - began
    # Every vanished client is accounted for (499, or 200 when it ended before the server noticed).
    deadline = time.monotonic() + RETRY_FOR_S
    while sum(synthesize_count(url).values()) < len(calls) and time.monotonic() < deadline:
        time.sleep(0.2)
    counts = synthesize_count(url)
    rss_end, peak = process_memory_mb(pid), process_memory_mb(pid, "VmHWM")
    record_property("soak_requests", len(calls))
    record_property("soak_seconds", round(seconds, 1))
    record_property("soak_statuses", dict(counts))
    record_property("rss_after_warm_up_mb", round(rss_warm))
    record_property("rss_end_mb", round(rss_end))
    record_property("peak_rss_mb", round(peak))
    print(f"soak: {len(calls)} requests in {seconds:.1f} s, statuses {dict(counts)}, RSS after warm-up "
          f"{rss_warm:.0f} MB, at the end {rss_end:.0f} MB, peak {peak:.0f} MB")  # fmt: skip
    assert sum(seen.values()) == len(calls)
    assert set(counts) <= {"200", "413", "415", "422", "499", "503"}, counts  # no 500, nothing else
    # None lost: each request got one final answer (a 503 is followed by a retry), each vanished client a 499
    # (or a 200 when its synthesis ended before the server noticed).
    assert sum(counts.values()) - counts["503"] == len(calls), (counts, seen)
    assert counts["499"] >= seen["disconnect:gone"] // 2
    assert rss_end - rss_warm < RSS_GROWTH_LIMIT_MB, (rss_warm, rss_end)
