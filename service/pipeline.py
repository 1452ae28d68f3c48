"""One synthesis request in the service: the form in, :func:`synnet.pipeline.run_async` with the batchers.

Routing happens first, before anything is decoded (a request no model serves costs no decoding);
then the pipeline runs under the request timeout with each model's
:class:`~service.batcher.Batcher` as its forward and its CPU-heavy stages in worker threads, so
the event loop keeps batching other requests meanwhile. The caller holds an admission slot throughout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from service.errors import MissingPartError, SynthesisTimeoutError
from service.inputs import check_parts, synthesis_request
from service.results import target_result
from service.runtime import Runtime
from service.schemas import InputInfo, InputWarning, ModelUse, OutputFormat, SynthesisResponse
from service.uploads import FormParts
from synnet import routing
from synnet.modalities import Modality, check_disjoint
from synnet.pipeline import Pipeline, Synthesis, run_async


@dataclass
class SynthesisOutcome:
    src: tuple[Modality, ...]
    dst: tuple[Modality, ...]
    synthesis: Synthesis
    seconds: float

    def to_response(self) -> SynthesisResponse:
        """The JSON answer, as the schema that OpenAPI documents."""
        synthesis = self.synthesis
        assert synthesis.meta is not None  # uploads are files, which always carry their format
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
                for a in synthesis.plan
            ],
            input=InputInfo(format=synthesis.meta.format, shape=list(synthesis.shape)),
            targets={t.value: target_result(out) for t, out in synthesis.targets.items()},
            seconds=round(self.seconds, 4),
            warnings=[InputWarning(code=w.code, message=w.message) for w in synthesis.warnings],
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
    check_parts(parts, src)
    request = synthesis_request(parts, src, dst, requested_format)
    assignments = routing.plan(request.src, request.dst, store.manifests, store.evaluations)
    pipeline = Pipeline(
        request, lambda _: assignments, batch_size=runtime.batch_size, crop=runtime.settings.crop_to_brain,
        gzip_level=runtime.settings.nifti_gzip_level,
    )  # fmt: skip
    timeout = runtime.settings.request_timeout_s
    try:
        async with asyncio.timeout(timeout):
            synthesis = await run_async(pipeline, lambda m: runtime.batchers[m.name].submit, run_in_threadpool)
    except TimeoutError:
        raise SynthesisTimeoutError(
            f"synthesis did not finish within {timeout:g} s; the service may be overloaded, "
            "retry later or send a smaller image"
        ) from None
    counter = runtime.metrics.slices
    for assignment in synthesis.plan:
        stats = synthesis.targets[assignment.targets[0]].stats
        counter.labels(assignment.name, "run").inc(stats.run)
        counter.labels(assignment.name, "skipped").inc(stats.skipped)
    return SynthesisOutcome(tuple(src), tuple(dst), synthesis, time.perf_counter() - started)
