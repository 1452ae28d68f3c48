"""One synthesis request from uploaded parts to encoded targets.

route (which models) → decode and cross-check the uploads → run every chosen model through its
batcher, concurrently → denormalize, score and encode each target. Everything after the upload
is received runs under the request timeout; CPU-heavy steps run in worker threads so the event
loop keeps batching other requests meanwhile. The caller holds an admission slot throughout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from starlette.concurrency import run_in_threadpool

from service.errors import MissingPartError, SynthesisTimeoutError
from service.inputs import InputImages, check_parts, decode_inputs
from service.results import TargetOutput, finish_target, output_format
from service.runtime import Runtime
from service.schemas import InputInfo, InputWarning, ModelUse, OutputFormat, SynthesisResponse
from service.synthesis import run_model
from service.uploads import FormParts
from synnet import input_checks, routing
from synnet.imageio import ImageLimits
from synnet.inference import check_size
from synnet.modalities import Modality, check_disjoint


@dataclass
class SynthesisOutcome:
    src: tuple[Modality, ...]
    dst: tuple[Modality, ...]
    assignments: list[routing.Assignment]
    inputs: InputImages
    targets: dict[Modality, TargetOutput]
    seconds: float
    warnings: list[input_checks.InputWarning]

    def to_response(self) -> SynthesisResponse:
        """The JSON answer, as the schema that OpenAPI documents."""
        return SynthesisResponse(
            src=[m.value for m in self.src],
            dst=[m.value for m in self.dst],
            models=[
                ModelUse(
                    name=a.name,
                    src=[m.value for m in a.manifest.src],
                    dst=[m.value for m in a.manifest.dst],
                    targets=[t.value for t in a.targets],
                    exact=a.exact,
                )
                for a in self.assignments
            ],
            input=InputInfo(format=self.inputs.meta.format, shape=list(self.inputs.shape)),
            targets={t.value: out.to_result() for t, out in self.targets.items()},
            seconds=round(self.seconds, 4),
            warnings=[InputWarning(code=w.code, message=w.message) for w in self.warnings],
        )


async def synthesize(
    runtime: Runtime,
    src: Sequence[Modality] | None,
    dst: Sequence[Modality],
    parts: FormParts,
    requested_format: OutputFormat | None,
) -> SynthesisOutcome:
    """Serve one request (see the module docstring).

    Args:
        src: the sources asked for; None means the source parts that were sent, in their order.

    Raises:
        SynnetError: bad inputs (4xx), no model (404), too busy (503), too slow (504).
    """
    started = time.perf_counter()
    store = runtime.require_store()
    if src is None:
        src = tuple(parts.sources)
        if not src:
            raise MissingPartError("no source image was sent; add a file part named after its modality")
        check_disjoint(src, dst)
    check_parts(parts, src, dst)
    assignments = routing.plan(src, dst, store.manifests, store.evaluations)
    timeout = runtime.settings.request_timeout_s
    try:
        async with asyncio.timeout(timeout):
            inputs = await run_in_threadpool(decode_inputs, parts, src, ImageLimits())
            warnings = await run_in_threadpool(input_checks.check_inputs, inputs.sources, inputs.meta)
            fmt = output_format(requested_format, inputs.meta, inputs.shape)
            for assignment in assignments:
                check_size(inputs.shape, assignment.manifest)
            per_model = await asyncio.gather(*(_run(runtime, a, inputs) for a in assignments))
            targets = await run_in_threadpool(
                _finish_all, assignments, per_model, inputs, fmt, runtime.settings.nifti_gzip_level
            )
    except TimeoutError:
        raise SynthesisTimeoutError(
            f"synthesis did not finish within {timeout:g} s; the service may be overloaded, "
            "retry later or send a smaller image"
        ) from None
    ordered = {t: targets[t] for t in dst}
    seconds = time.perf_counter() - started
    return SynthesisOutcome(tuple(src), tuple(dst), assignments, inputs, ordered, seconds, warnings)


async def _run(runtime: Runtime, assignment: routing.Assignment, inputs: InputImages) -> tuple[np.ndarray, int, int]:
    manifest = assignment.manifest
    y, stats = await run_model(
        inputs.sources, inputs.mask, manifest, runtime.batchers[manifest.name],
        batch_size=runtime.batch_size, crop=runtime.settings.crop_to_brain,
    )
    counter = runtime.metrics.slices
    counter.labels(manifest.name, "run").inc(stats.run)
    counter.labels(manifest.name, "skipped").inc(stats.skipped)
    return y, stats.run, stats.skipped


def _finish_all(
    assignments: list[routing.Assignment],
    per_model: list[tuple[np.ndarray, int, int]],
    inputs: InputImages,
    fmt: OutputFormat,
    gzip_level: int,
) -> dict[Modality, TargetOutput]:
    targets: dict[Modality, TargetOutput] = {}
    for assignment, (y, run, skipped) in zip(assignments, per_model, strict=True):
        manifest = assignment.manifest
        for target in assignment.targets:
            channel = y[manifest.dst.index(target)].reshape(inputs.shape)
            targets[target] = finish_target(
                target, channel, manifest, meta=inputs.meta, mask=inputs.mask,
                truth=inputs.truths.get(target), fmt=fmt, slices_run=run, slices_skipped=skipped,
                gzip_level=gzip_level,
            )
    return targets
