"""One model over one volume inside the service: the core's pipeline, with the batcher awaited in between.

:func:`synnet.inference.prepare` and :func:`~synnet.inference.assemble` are the same functions
evaluation, the CLI and the Python API call; only the forward differs: here each chunk of slices
goes through the model's :class:`~service.batcher.Batcher`, which may run it together with other
requests' chunks. CPU-heavy preparation runs in a worker thread so the event loop keeps batching.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import numpy as np
from starlette.concurrency import run_in_threadpool

from service.batcher import Batcher
from synnet.inference import SliceStats, assemble, prepare
from synnet.manifest import ModelManifest
from synnet.modalities import Modality


async def run_model(
    sources: Mapping[Modality, np.ndarray],
    mask: np.ndarray,
    manifest: ModelManifest,
    batcher: Batcher,
    *,
    batch_size: int,
    crop: bool = True,
) -> tuple[np.ndarray, SliceStats]:
    """Every target of one model in model space: ``(y (D, X, Y, Z) in [0, 1], stats)``."""
    stack = await run_in_threadpool(prepare, sources, mask, manifest, crop=crop)
    outputs = await asyncio.gather(*(batcher.submit(chunk) for chunk in stack.chunks(batch_size)))
    return assemble(stack, outputs), stack.stats
