"""The scaled setup for real: Debian's nginx on docker/nginx/synnet.conf.template in front of two
``python -m service`` replicas on 127.0.0.1, serving a tiny model exported by training.export.

nginx's access log names the replica(s) each request went to ($upstream_addr, one per try), so
the tests see both the spread and every retry. The tests share one cluster and run in file
order; the last one kills a replica.
"""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from training.export import example_input, write_model
from training.models import create_model, model_config

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
HEALTHCHECK = REPO / "docker" / "healthcheck.py"
START_TIMEOUT_S = 60
# A line of the template's synnet_upstream log format.
LOG_LINE = re.compile(
    r'"(?P<request>[^"]*)" (?P<status>\d+) .* upstream=(?P<upstream>.*) upstream_status=(?P<tries>.*) request_id='
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Process:
    """A process started in its own session, so that it and its children are stopped together."""

    popen: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.alive():
            os.killpg(self.popen.pid, sig)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)


def start(command: list[str], log: Path, env: dict[str, str] | None = None) -> Process:
    with log.open("wb") as out:
        popen = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Process(popen, log)


def wait_until_up(url: str, process: Process) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if not process.alive():
            tail = process.log.read_text()[-3000:]
            pytest.fail(f"{process.popen.args} exited with {process.popen.returncode}:\n{tail}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} not up after {START_TIMEOUT_S}s:\n{process.log.read_text()[-3000:]}")


@dataclass
class Cluster:
    replicas: dict[str, Process]  # "127.0.0.1:port" -> replica
    url: str  # nginx
    access_log: Path

    def log_entries(self, at_least: int = 0) -> list[dict[str, str]]:
        """The access log's lines; waits (briefly) for ``at_least``, as nginx logs a request after answering it."""
        deadline = time.monotonic() + 5
        while True:
            entries = [m.groupdict() for m in map(LOG_LINE.search, self.access_log.read_text().splitlines()) if m]
            if len(entries) >= at_least or time.monotonic() > deadline:
                return entries
            time.sleep(0.05)


def export_tiny_model(store: Path) -> None:
    torch.manual_seed(0)
    hyper = {"features": 4, "depth": 1}
    write_model(
        store,
        "tiny_t1_to_t2",
        create_model("synnet", 1, 1, **hyper),
        example_input(1, 32),
        src=["T1"],
        dst=["T2"],
        architecture={"name": "synnet", "params": model_config("synnet", 1, 1, **hyper)},
        loss={"name": "l2"},
        output_reference={"T2": {"lo": 0.0, "hi": 1000.0}},
        training_data={"source": "generated", "n_cases": 0},
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, nginx_config, nginx_command):
    root = tmp_path_factory.mktemp("cluster")
    export_tiny_model(root / "store")
    started: list[Process] = []
    try:
        replicas = {}
        for index in range(2):
            port = free_port()
            env = os.environ | {
                "SYNNET_HOST": "127.0.0.1",
                "SYNNET_PORT": str(port),
                "SYNNET_MODEL_STORE": str(root / "store"),
                "SYNNET_LOG_LEVEL": "warning",
                "SYNNET_TORCH_THREADS": "1",  # two replicas share this machine's cores
            }
            replicas[f"127.0.0.1:{port}"] = start([sys.executable, "-m", "service"], root / f"replica{index}.log", env)
            started.append(replicas[f"127.0.0.1:{port}"])
        for address, replica in replicas.items():
            wait_until_up(f"http://{address}/readyz", replica)

        lb_port = free_port()
        conf = nginx_config(
            root / "nginx",
            {
                "NGINX_PORT": str(lb_port),
                "SYNNET_UPSTREAM_SERVERS": " ".join(f"server {address};" for address in replicas),
                "NGINX_ACCESS_LOG": str(root / "nginx" / "access.log"),
            },
        )
        nginx = start(nginx_command(conf), root / "nginx.out")
        started.append(nginx)
        wait_until_up(f"http://127.0.0.1:{lb_port}/healthz", nginx)
        yield Cluster(replicas, f"http://127.0.0.1:{lb_port}", root / "nginx" / "access.log")
    finally:
        for process in started:
            process.stop()


def png_bytes(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(1, 256, size=(32, 32), dtype=np.uint8)  # nonzero: all brain
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def synthesize(client: httpx.Client, seed: int) -> httpx.Response:
    return client.post(
        "/synthesize",
        params={"src": "T1", "dst": "T2", "probe": seed},
        files={"T1": (f"t1_{seed}.png", png_bytes(seed), "image/png")},
    )


def served_by(entry: dict[str, str]) -> str:
    return entry["upstream"].split(", ")[-1]


def synthesize_count(address: str) -> float:
    """Successful /synthesize requests as the replica itself counted them (its /metrics)."""
    text = httpx.get(f"http://{address}/metrics", timeout=5).text
    pattern = r'^synnet_http_requests_total\{(?=[^}]*route="/synthesize")(?=[^}]*status="200")[^}]*\} (\S+)$'
    return sum(float(value) for value in re.findall(pattern, text, flags=re.MULTILINE))


def test_requests_are_spread_over_both_replicas(cluster):
    before = {address: synthesize_count(address) for address in cluster.replicas}
    n_before = len(cluster.log_entries())
    with httpx.Client(base_url=cluster.url, timeout=30) as client:
        statuses = [synthesize(client, seed).status_code for seed in range(10)]
    assert statuses == [200] * 10

    entries = cluster.log_entries(at_least=n_before + 10)[n_before:]
    per_replica = Counter(served_by(e) for e in entries)
    assert set(per_replica) == set(cluster.replicas) and min(per_replica.values()) >= 3, per_replica
    # ... and each replica counted its share itself.
    for address in cluster.replicas:
        assert synthesize_count(address) - before[address] == per_replica[address]


def test_container_healthcheck_script(cluster):
    def healthcheck(port: str) -> int:
        env = os.environ | {"SYNNET_PORT": port}
        return subprocess.run([sys.executable, str(HEALTHCHECK)], env=env, capture_output=True, timeout=30).returncode

    address = next(iter(cluster.replicas))
    assert healthcheck(address.rsplit(":", 1)[1]) == 0
    assert healthcheck(str(free_port())) == 1  # nothing listens there


def test_killed_replica_loses_no_request(cluster):
    victim, survivor = cluster.replicas
    assert all(replica.alive() for replica in cluster.replicas.values())
    n_before = len(cluster.log_entries())

    # Kill the replica while requests are in flight (caught mid-request, a POST is retried only
    # thanks to non_idempotent), then keep sending: every request must still succeed.
    with httpx.Client(base_url=cluster.url, timeout=30) as client, ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(synthesize, client, seed) for seed in range(40)]
        while sum(f.done() for f in futures) < 8:
            time.sleep(0.005)
        cluster.replicas[victim].stop(signal.SIGKILL)
        statuses = [f.result().status_code for f in futures]
        statuses += [client.get("/healthz").status_code for _ in range(6)]
    assert statuses == [200] * 46

    entries = cluster.log_entries(at_least=n_before + 46)[n_before:]
    assert len(entries) == 46
    assert served_by(entries[-1]) == survivor
    # Requests that went to the dead replica first were retried by nginx on the survivor.
    retried = [e for e in entries if e["upstream"].startswith(f"{victim}, ")]
    assert retried, entries
    assert all(served_by(e) == survivor and e["tries"].endswith(", 200") for e in retried)
