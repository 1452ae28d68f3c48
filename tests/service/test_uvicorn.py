"""The real thing: ``python -m service`` (uvicorn) on 127.0.0.1, driven over TCP."""

from __future__ import annotations

import base64
import io
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from eager_reference import single_thread

from float_tolerance import assert_slices_close
from live_service import LiveService, live_service
from synnet.imageio import read_image
from synnet.modalities import Modality
from synnet.normalization import brain_mask

pytestmark = pytest.mark.slow

UPLOAD_LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def server(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    env = {
        "SYNNET_MODEL_STORE": str(store),
        "SYNNET_DEVICE": "cpu",
        "SYNNET_LOG_LEVEL": "warning",
        "SYNNET_TORCH_THREADS": "1",
        "SYNNET_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
    }
    with live_service(env, tmp_path_factory.mktemp("uvicorn") / "service.log", ready_timeout_s=60) as running:
        yield running


def raw_exchange(url: str, head: bytes, body: bytes = b"") -> bytes:
    """Send raw bytes over one TCP connection and read until the server closes or 5 s pass."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(head + body)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
                if b"\r\n\r\n" in received and b'"detail"' in received:
                    break
        except TimeoutError:
            pass
    return received


def test_served_over_tcp_equals_eager(server, trained, case, kit) -> None:
    url = server.url
    png = kit.png_bytes(case[Modality.T1].array[:, :, 77], 16)
    response = httpx.post(
        f"{url}/synthesize", params={"src": "T1", "dst": "T2", "format": "npy"},
        files={"T1": ("t1.png", png)}, timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"]
    served = np.load(io.BytesIO(base64.b64decode(response.json()["targets"]["T2"]["data"])))
    decoded, _ = read_image(png, "t1.png")
    with single_thread():
        expected = kit.eager_synthesis(
            trained.module("t1_to_t2"), trained.manifest("t1_to_t2"), {Modality.T1: decoded}, crop=True
        )[0]
    assert_slices_close(served, expected, brain_mask(decoded))
    metrics = httpx.get(f"{url}/metrics", timeout=5).text
    assert 'synnet_http_requests_total{method="POST",route="/synthesize",status="200"} 1.0' in metrics


def test_oversize_content_length_is_refused_before_any_body_is_sent(server) -> None:
    url = server.url
    head = (
        b"POST /synthesize?src=T1&dst=T2 HTTP/1.1\r\nHost: test\r\n"
        b"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 10000000000\r\n\r\n"
    )
    answer = raw_exchange(url, head)  # not one byte of the promised 10 GB is sent
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"error":"payload_too_large"' in answer.replace(b" ", b"")


def test_oversize_chunked_upload_is_cut_off(server) -> None:
    url = server.url
    head = (
        b"POST /synthesize?src=T1&dst=T2 HTTP/1.1\r\nHost: test\r\n"
        b"Content-Type: multipart/form-data; boundary=xyz\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    part = b'--xyz\r\nContent-Disposition: form-data; name="T1"; filename="t1.nii"\r\n\r\n' + b"\0" * (UPLOAD_LIMIT + 1)
    answer = raw_exchange(url, head, f"{len(part):x}\r\n".encode() + part + b"\r\n")  # no final chunk: still "sending"
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_sigterm_shuts_down_cleanly(server) -> None:
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
    server.process.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully (lifespan included), then re-raises the signal it caught.
    assert server.process.wait(timeout=20) in (0, -signal.SIGTERM)
    assert "Traceback" not in server.log.read_text()
