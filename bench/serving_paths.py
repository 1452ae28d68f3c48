"""Part (d) of ``bench/serve_speed.py``: the serving paths compared through a real server, in one run.

Each path is a fresh ``python -m service`` serving one model with its settings
(``SYNNET_MODEL_FORMAT``, ``SYNNET_COMPILE``, ``SYNNET_PRECISION``; ``path_settings.PATHS``). For each:
the seconds from start to ready (loading, warm-up, compiling), the first volume request after
ready, one volume at a time (median), four volumes in flight (wall time per volume, median), the
server's resident memory after the loads (and its peak; the servers share one inductor cache, empty
at the start of the run, so the first compiled path compiles cold and a restarted one finds it), the
graphs compiled after the warm-up over
that mixed run (volumes one at a time and four at once, then one-slice PNG requests), how the model
actually served (from
``/readyz``: a bf16 request the model's recorded cost refuses serves fp32), and the largest
difference of its output from the TorchScript fp32 path's, in model space (raw units over the
output reference's range), and, with a BraTS ``--case``, the output's in-brain PSNR/SSIM against the
case's real target. Ratios are throughput against the TorchScript fp32 path of the same run.
"""

from __future__ import annotations

import asyncio
import io
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from server_load import Files, checked, form, running_service, slice_files, volume_files

from synnet.imageio import read_image
from synnet.manifest import ModelManifest
from synnet.metrics import brain_scores
from synnet.normalization import brain_mask, normalize_target

IN_FLIGHT = 4
SLICE_REQUESTS = 4  # one-slice PNG requests at the end of the mixed run
START_TIMEOUT_S = 3600.0  # compiling a flip-averaged model takes minutes on two cores


@dataclass
class PathResult:
    name: str
    served_as: str
    start_s: float
    first_s: float
    one_s: float
    in_flight_s: float  # wall time per volume with IN_FLIGHT requests in flight
    rss_mb: float
    peak_rss_mb: float
    recompilations: int | None  # graphs compiled after the warm-up, over the whole run
    output: np.ndarray  # the target in raw units, as the server sent it

    def scores(self, manifest: ModelManifest, truth: Truth) -> dict[str, float]:
        """In-brain PSNR/SSIM of the output against the case's real target, as training.evaluate scores them."""
        scale = manifest.output_reference[manifest.dst[0]]
        model_space = np.where(truth.mask, (self.output - scale.lo) / (scale.hi - scale.lo), 0.0).astype(np.float32)
        return brain_scores(model_space, truth.image, truth.mask)

    def ratios(self, reference: PathResult) -> tuple[float, float]:
        return reference.one_s / self.one_s, reference.in_flight_s / self.in_flight_s


@dataclass(frozen=True)
class Truth:
    image: np.ndarray  # the case's real target, normalized as training.evaluate normalizes it
    mask: np.ndarray  # the sources' brain mask, as the service makes it


def case_truth(case: Path | None, manifest: ModelManifest, files: Files) -> Truth | None:
    """The real target of ``--case`` (none for a generated volume)."""
    if case is None:
        return None
    from training.data.brats import find_cases

    (found,) = [c for c in find_cases(case.parent) if c.folder.resolve() == case.resolve()]
    target = found.files.get(manifest.dst[0])
    if target is None:
        return None
    mask = brain_mask([read_image(data, name)[0] for name, data, _ in files.values()])
    image = read_image(target.read_bytes(), target.name)[0]
    return Truth(normalize_target(image, mask, manifest.normalization)[0], mask)


def measure_paths(
    store: Path,
    model_name: str,
    case: Path | None,
    paths: dict[str, dict[str, str]],
    volume_requests: int,
    rounds: int,
) -> tuple[list[str], list[PathResult]]:
    """Every path (name → the service's environment; the first is the reference) on one volume.

    Returns the table lines and the results.
    """  # fmt: skip
    manifest = ModelManifest.load(store / model_name)
    with tempfile.TemporaryDirectory(prefix="serving_paths_") as tmp:
        workdir = Path(tmp)
        one_model = workdir / "store"
        one_model.mkdir()
        (one_model / model_name).symlink_to((store / model_name).resolve(), target_is_directory=True)
        label, files = volume_files(case, manifest.src, workdir)
        # one inductor cache for the run, empty at its start: the first compiled path compiles cold
        cache = {"TORCHINDUCTOR_CACHE_DIR": str(workdir / "inductor")}
        results = []
        for name, env in paths.items():
            started = time.perf_counter()
            log = workdir / f"{name.replace(' ', '_')}.log"
            with running_service(one_model, "cpu", log, env=env | cache, ready_timeout_s=START_TIMEOUT_S) as service:
                ready = time.perf_counter() - started
                results.append(asyncio.run(_measure(name, service.url, service.pid, manifest, files, ready,
                                                    volume_requests, rounds)))  # fmt: skip
        truth = case_truth(case, manifest, files) if case is not None else None
    return table(label, manifest, results, truth), results


async def _measure(
    name: str, url: str, pid: int, manifest: ModelManifest, files: Files, start_s: float, requests: int, rounds: int
) -> PathResult:
    params = {"src": ",".join(m.value for m in manifest.src), "dst": manifest.dst[0].value, "format": "npy"}
    download = {**params, "download": "1"}
    async with httpx.AsyncClient(base_url=url, timeout=3600.0) as client:
        served = (await client.get("/readyz")).json()["serving"][0]
        started = time.perf_counter()
        first = checked(await client.post("/synthesize", params=download, files=form(files)))
        first_s = time.perf_counter() - started
        one = []
        for _ in range(requests):
            started = time.perf_counter()
            checked(await client.post("/synthesize", params=download, files=form(files)))
            one.append(time.perf_counter() - started)
        in_flight = []
        for _ in range(rounds):
            started = time.perf_counter()
            answers = await asyncio.gather(
                *(client.post("/synthesize", params=download, files=form(files)) for _ in range(IN_FLIGHT))
            )
            in_flight.append((time.perf_counter() - started) / IN_FLIGHT)
            for answer in answers:
                checked(answer)
        one_slice = slice_files(files, manifest.src)  # batches of one slice, as a PNG viewer sends them
        for _ in range(SLICE_REQUESTS):
            checked(await client.post("/synthesize", params={**params, "download": "1", "format": "png"},
                                      files=form(one_slice)))  # fmt: skip
        recompilations = (await client.get("/readyz")).json()["serving"][0]["recompilations"]
    rss, peak = resident_mb(pid)
    served_as = f"{served['format']}, {served['precision']}{', compiled' if served['compiled'] else ''}"
    if served["notes"]:
        served_as += " (" + "; ".join(served["notes"]) + ")"
    output = np.load(io.BytesIO(first.content))
    return PathResult(name, served_as, start_s, first_s, statistics.median(one), statistics.median(in_flight),
                      rss, peak, recompilations, output)  # fmt: skip


def resident_mb(pid: int) -> tuple[float, float]:
    """The process's resident memory now and at its peak (VmRSS, VmHWM), MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return float(fields["VmRSS"].split()[0]) / 1024, float(fields["VmHWM"].split()[0]) / 1024


def table(label: str, manifest: ModelManifest, results: list[PathResult], truth: Truth | None) -> list[str]:
    """The (d) table: one row per path, ratios and differences against the first (TorchScript fp32)."""
    reference = results[0]
    scale = manifest.output_reference[manifest.dst[0]]
    span = scale.hi - scale.lo
    lines = [
        f"(d) serving paths, one model ({manifest.name}), volume {label}: a fresh server per path; "
        f"× = volume throughput against {reference.name}; difference = largest |Δ| of the output in model space",
        "",
        "| path | served as | start to ready s | first request s | one volume s | × | "
        f"{IN_FLIGHT} in flight s/volume | × | RSS MB (peak) | recompilations | max \\|Δ\\| vs {reference.name} | "
        "in-brain PSNR / SSIM |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def quality(r: PathResult) -> str:
        if truth is None:
            return ""
        scores = r.scores(manifest, truth)
        return f"{scores['psnr_brain']:.3f} / {scores['ssim_brain']:.4f}"

    for r in results:
        one, many = r.ratios(reference)
        difference = float(np.abs(r.output - reference.output).max()) / span
        lines.append(
            f"| {r.name} | {r.served_as} | {r.start_s:.1f} | {r.first_s:.2f} | {r.one_s:.2f} | {one:.2f} | "
            f"{r.in_flight_s:.2f} | {many:.2f} | {r.rss_mb:.0f} ({r.peak_rss_mb:.0f}) | "
            f"{'' if r.recompilations is None else r.recompilations} | {difference:.2g} | {quality(r)} |"
        )
    return lines
