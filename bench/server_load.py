"""Part (c) of ``bench/serve_speed.py``: a real ``python -m service`` under load, and the in-process
time of exactly the work it did.

Kept apart because it needs the service's dependencies (FastAPI, uvicorn, nibabel, httpx), which
parts (a) and (b) do not: a GPU machine can run those with torch alone.

The server serves a one-model store (a symlink to ``--model``'s folder) so it starts in seconds.
The in-process reference loads that store with :meth:`synnet.store.ModelStore.load`, decodes the
same uploaded bytes as the service does (:func:`synnet.pipeline.decode_inputs`) and prepares them with
:func:`synnet.inference.prepare`, then runs :meth:`LoadedModel.forward` on the stack in chunks of the
server's batch size: the same slices, box, file, dtype, layout and batching.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import torch

from service.inputs import synthesis_request
from service.uploads import FormParts, Part
from synnet.imageio import read_image, write_png
from synnet.inference import SliceStack, prepare
from synnet.modalities import Modality
from synnet.normalization import brain_mask
from synnet.pipeline import decode_inputs
from synnet.settings import Settings
from synnet.store import LoadedModel, ModelStore

READY_TIMEOUT_S = 180.0
Files = dict[Modality, tuple[str, bytes, str]]  # modality → (filename, bytes, media type)


@dataclass
class VolumeResult:
    """Medians over the volume requests; seconds are per request."""

    case: str
    shape: tuple[int, ...]
    run: int
    skipped: int
    box: tuple[int, int]
    batch_size: int
    server_s: float
    forward_s: float  # the server's synnet_inference_seconds during the request
    inprocess_s: float
    paired_s: float  # wall time per volume with two requests in flight


@dataclass
class SliceResult:
    """One concurrency level of single-slice requests."""

    concurrency: int
    requests: int
    box: tuple[int, int]
    batch: int  # the in-process reference's batch: min(concurrency, server batch size)
    server_rate: float  # slices/s
    inprocess_rate: float
    p50_s: float
    p99_s: float


@dataclass
class ServerResults:
    settings: Settings
    volume: VolumeResult
    slices: list[SliceResult]


def measure_server(
    store: Path,
    model_name: str,
    device: str,
    case: Path | None,
    *,
    volume_requests: int,
    slice_requests: int,
    concurrency: list[int],
) -> ServerResults:
    """Start the service on a free port, run the volume and slice loads, stop it."""
    settings = Settings(device=device)
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    with tempfile.TemporaryDirectory(prefix="serve_speed_") as tmp:
        workdir = Path(tmp)
        one_model = workdir / "store"
        one_model.mkdir()
        (one_model / model_name).symlink_to((store / model_name).resolve(), target_is_directory=True)
        registry = ModelStore.load(one_model, device, channels_last=settings.channels_last)
        if model_name not in registry.models:
            raise SystemExit(f"model {model_name} did not load: {registry.unavailable}")
        model = registry.models[model_name]
        label, volume = volume_files(case, model.manifest.src, workdir)
        with (
            ThreadPoolExecutor(1, "reference-inference") as executor,
            running_service(one_model, device, workdir / "service.log") as service,
        ):
            reference = Reference(model, executor)
            return asyncio.run(
                _measure(service.url, reference, settings, label, volume, volume_requests, slice_requests, concurrency)
            )


async def _measure(
    url: str,
    reference: Reference,
    settings: Settings,
    label: str,
    volume: Files,
    volume_requests: int,
    slice_requests: int,
    concurrency: list[int],
) -> ServerResults:
    model = reference.model
    batch_size = settings.batch_size_for(model.device.type)
    async with httpx.AsyncClient(base_url=url, timeout=600.0, limits=httpx.Limits(max_connections=256)) as client:
        volume_result = await measure_volume(client, reference, volume, label, volume_requests, batch_size, settings)
        one_slice = slice_files(volume, model.manifest.src)
        stack = reference_stack(one_slice, model, settings.crop_to_brain)
        slices = [
            await measure_slices(client, reference, one_slice, stack, c, max(slice_requests, 4 * c), batch_size)
            for c in concurrency
        ]
    return ServerResults(settings, volume_result, slices)


# --- inputs -----------------------------------------------------------------------------------


def volume_files(case: Path | None, src: list[Modality], workdir: Path) -> tuple[str, Files]:
    """The case's NIfTI file of every source, as uploaded: ``--case``, else a generated phantom case."""
    from training.data.brats import find_cases

    if case is None:
        from training.phantom.write import write_cases

        case = write_cases(workdir / "phantom", 1, seed=0)[0]
    found = [c for c in find_cases(case.parent) if c.folder.resolve() == case.resolve()]
    if not found or found[0].lacks(src):
        raise SystemExit(f"{case} is not a BraTS case folder with {', '.join(m.value for m in src)} images")
    files = {m: (found[0].files[m].name, found[0].files[m].read_bytes(), "application/gzip") for m in src}
    return case.name, files


def slice_files(volume: Files, src: list[Modality]) -> Files:
    """The axial slice with the most brain of every source, as a 16-bit PNG."""
    images = {m: read_image(data, name)[0] for m, (name, data, _) in volume.items()}
    z = int(np.argmax(brain_mask(list(images.values())).sum(axis=(0, 1))))
    files: Files = {}
    for m in src:
        image = images[m][:, :, z]
        files[m] = (f"{m.value}.png", write_png(image, 16, (0.0, float(image.max()))), "image/png")
    return files


def reference_stack(files: Files, model: LoadedModel, crop: bool) -> SliceStack:
    """What the server feeds the network for these uploads, computed by the service's own functions."""
    parts = FormParts(sources={m: Part(m.value, name, data) for m, (name, data, _) in files.items()})
    inputs = decode_inputs(synthesis_request(parts, model.manifest.src, model.manifest.dst, None))
    return prepare(inputs.sources, inputs.mask, model.manifest, crop=crop)


def form(files: Files) -> dict[str, tuple[str, bytes, str]]:
    return {m.value: file for m, file in files.items()}


@dataclass
class Reference:
    """The server's forward, in-process and in one worker thread as the service runs it.

    The thread matters: on the shared 2-core machine, OpenMP regions started from the main thread
    ran up to 4× slower than the same ones started from a worker while another process was busy.
    """

    model: LoadedModel
    executor: ThreadPoolExecutor

    def seconds(self, x: np.ndarray, batch_size: int) -> float:
        """Wall time of the forward on ``x`` (n, C, h, w) in chunks of ``batch_size``."""
        return self.executor.submit(self._run, x, batch_size).result()

    def _run(self, x: np.ndarray, batch_size: int) -> float:
        start = time.perf_counter()
        for i in range(0, len(x), batch_size):
            self.model.forward(torch.from_numpy(x[i : i + batch_size]))
        return time.perf_counter() - start


# --- loads ------------------------------------------------------------------------------------


async def measure_volume(
    client: httpx.AsyncClient,
    reference: Reference,
    files: Files,
    label: str,
    requests: int,
    batch_size: int,
    settings: Settings,
) -> VolumeResult:
    """Whole-volume requests one at a time, each after an in-process run of the same stack."""
    model = reference.model
    manifest = model.manifest
    params = {"src": ",".join(m.value for m in manifest.src), "dst": ",".join(m.value for m in manifest.dst)}
    # The JSON form once (also a warm-up): the server's own slice count, checked against ours.
    body = checked(await client.post("/synthesize", params=params, files=form(files))).json()
    served = body["targets"][manifest.dst[0].value]
    stack = reference_stack(files, model, settings.crop_to_brain)
    if served["slices_run"] != stack.stats.run:
        raise RuntimeError(f"the server ran {served['slices_run']} slices, the reference {stack.stats.run}")
    reference.seconds(stack.x, batch_size)  # TorchScript specializes on the box's shapes
    download = {**params, "download": "1"}
    server, forward, inprocess, paired = [], [], [], []
    for _ in range(requests):
        inprocess.append(reference.seconds(stack.x, batch_size))
        before = await inference_seconds(client, model.name)
        start = time.perf_counter()
        checked(await client.post("/synthesize", params=download, files=form(files)))
        server.append(time.perf_counter() - start)
        forward.append(await inference_seconds(client, model.name) - before)
        # Two in flight: one request's decoding and encoding overlap the other's forward passes.
        start = time.perf_counter()
        await asyncio.gather(*(client.post("/synthesize", params=download, files=form(files)) for _ in range(2)))
        paired.append((time.perf_counter() - start) / 2)
    box = stack.x.shape[2], stack.x.shape[3]
    return VolumeResult(
        label,
        tuple(body["input"]["shape"]),
        stack.stats.run,
        stack.stats.skipped,
        box,
        batch_size,
        statistics.median(server),
        statistics.median(forward),
        statistics.median(inprocess),
        statistics.median(paired),
    )


async def measure_slices(
    client: httpx.AsyncClient,
    reference: Reference,
    files: Files,
    stack: SliceStack,
    concurrency: int,
    requests: int,
    batch_size: int,
    samples: int = 3,
) -> SliceResult:
    """``requests`` one-slice requests from ``concurrency`` clients, and the same slice in-process."""
    batch = min(concurrency, batch_size)
    x = np.repeat(stack.x, batch, axis=0)
    calls = max(1, 8 // batch)
    reference.seconds(x, batch)
    inprocess = statistics.median(reference.seconds(np.repeat(x, calls, axis=0), batch) for _ in range(samples))
    manifest = reference.model.manifest
    params = {"src": ",".join(m.value for m in manifest.src), "dst": manifest.dst[0].value, "download": "1"}
    await post_many(client, params, files, concurrency, concurrency)  # warm-up
    latencies, wall = await post_many(client, params, files, requests, concurrency)
    p50, p99 = np.percentile(latencies, [50, 99])
    return SliceResult(
        concurrency,
        requests,
        (stack.x.shape[2], stack.x.shape[3]),
        batch,
        requests / wall,
        batch * calls / inprocess,
        float(p50),
        float(p99),
    )


async def post_many(
    client: httpx.AsyncClient, params: dict[str, str], files: Files, requests: int, concurrency: int
) -> tuple[list[float], float]:
    """Latency of each request, and the wall time of all, with ``concurrency`` requests in flight."""
    latencies: list[float] = []
    todo = iter(range(requests))  # shared by the workers: the event loop runs one at a time

    async def worker() -> None:
        for _ in todo:
            start = time.perf_counter()
            checked(await client.post("/synthesize", params=params, files=form(files)))
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - start


def checked(response: httpx.Response) -> httpx.Response:
    if response.status_code != 200:
        raise RuntimeError(f"{response.request.url} answered {response.status_code}: {response.text[:300]}")
    return response


async def inference_seconds(client: httpx.AsyncClient, model: str) -> float:
    """The server's total time in forward passes of ``model`` so far (Prometheus counter)."""
    text = checked(await client.get("/metrics")).text
    match = re.search(rf'^synnet_inference_seconds_sum{{model="{re.escape(model)}"}} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


# --- the service process ----------------------------------------------------------------------


@dataclass(frozen=True)
class RunningService:
    url: str
    pid: int


@contextlib.contextmanager
def running_service(
    store: Path,
    device: str,
    log: Path,
    *,
    env: dict[str, str] | None = None,
    ready_timeout_s: float = READY_TIMEOUT_S,
) -> Iterator[RunningService]:
    """``python -m service`` (with ``env`` added to its environment) on a free port of 127.0.0.1, until
    ``/readyz`` answers 200; stopped after."""
    port = free_port()
    env = {**os.environ, "SYNNET_DEVICE": device, "SYNNET_LOG_LEVEL": "warning", **(env or {})}
    command = [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port), "--model-store", str(store)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log, ready_timeout_s)
        yield RunningService(url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the service was not ready after {timeout_s:.0f} s:\n{log.read_text()[-2000:]}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
