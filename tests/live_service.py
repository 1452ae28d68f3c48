"""A real ``python -m service`` (or ``synnet serve``) for the tests that drive it over TCP: started on a free port of
127.0.0.1, waited for until ready, stopped at the end; plus what those tests read off the process
(/proc memory) and send it (a raw multipart request)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]


@dataclass
class LiveService:
    url: str
    process: subprocess.Popen
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def live_service(
    env: Mapping[str, str],
    log: Path,
    *,
    ready_timeout_s: float = 60,
    ready_path: str = "/readyz",
    command: Callable[[int], Sequence[str]] | None = None,
) -> Iterator[LiveService]:
    """``python -m service`` with ``env`` over the environment, on a free port, once ``ready_path`` answers 200.

    Args:
        env: ``SYNNET_*`` settings laid over ``os.environ``; ``SYNNET_PORT`` is chosen here.
        log: file that gets the process's stdout and stderr.
        ready_timeout_s: how long to wait for readiness before failing with the log's tail.
        ready_path: the path polled for readiness.
        command: another command line that serves on 127.0.0.1 at the port it is given (e.g.
            ``synnet serve --port``); ``SYNNET_PORT`` is then left as ``env`` has it.

    Yields:
        The running service. At the end it is killed if still running; a test may stop it itself
        (e.g. SIGTERM) and check its exit code.
    """
    port = free_port()
    environ = os.environ | dict(env)
    if command is None:
        environ["SYNNET_PORT"] = str(port)
    argv = [sys.executable, "-m", "service"] if command is None else list(command(port))
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=REPO, env=environ, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout_s
        while not _answers_200(f"{url}{ready_path}"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"python -m service did not become ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield LiveService(url, process, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _answers_200(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def process_memory_mb(pid: int, field: str = "VmRSS") -> float:
    """``field`` of ``/proc/<pid>/status`` (``VmRSS`` resident now, ``VmHWM`` its peak), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} in /proc")


def multipart_request(fields: Mapping[str, tuple[str, bytes]], query: str = "src=T1&dst=T2") -> bytes:
    """A whole HTTP/1.1 ``POST /synthesize?<query>`` with ``fields`` (name: (filename, data)) as multipart, as bytes."""
    boundary = "synnetboundary"
    body = (
        b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
            for name, (filename, data) in fields.items()
        )
        + f"--{boundary}--\r\n".encode()
    )
    head = (
        f"POST /synthesize?{query} HTTP/1.1\r\nHost: test\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@contextmanager
def fuzzed_service(store: Path, api_key: str, folder: Path) -> Iterator[LiveService]:
    """A service for the fuzzers: ``store``'s models on one CPU thread behind ``api_key``.

    Whatever the fuzzers sent, its log must end without a traceback.
    """
    env = {
        "SYNNET_MODEL_STORE": str(store), "SYNNET_DEVICE": "cpu", "SYNNET_LOG_LEVEL": "warning",
        "SYNNET_TORCH_THREADS": "1", "SYNNET_API_KEYS": api_key,
    }  # fmt: skip
    with live_service(env, folder / "service.log") as running:
        yield running
        assert "Traceback" not in running.log.read_text()
