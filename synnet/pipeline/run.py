"""The stages of one request (:class:`Pipeline`) and the two loops that run them: :func:`run`, :func:`run_async`.

The loops call the same stage methods in the same order and differ only in the awaiting (see
:mod:`synnet.pipeline`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from synnet.imageio import ImageLimits, ImageMeta
from synnet.imageio.write import DEFAULT_GZIP_LEVEL
from synnet.inference import Forward, SliceStack, check_size, prepare
from synnet.input_checks import InputWarning, check_inputs
from synnet.manifest import ModelManifest
from synnet.modalities import Modality
from synnet.pipeline.inputs import Inputs, decode_inputs
from synnet.pipeline.outputs import Encoding, SynthesizedTarget, finish_model, output_format
from synnet.pipeline.request import SynthesisRequest
from synnet.routing import Assignment

AsyncForward = Callable[[torch.Tensor], Awaitable[torch.Tensor]]
Router = Callable[[SynthesisRequest], Sequence[Assignment]]
Offload = Callable[..., Awaitable[Any]]  # offload(function, *args) runs it in a worker thread


@dataclass(frozen=True)
class Decoded:
    """Stage 1's result: the inputs, what is unusual about them, and how results will be encoded."""

    inputs: Inputs
    warnings: list[InputWarning]
    encoding: Encoding


@dataclass
class Synthesis:
    """A finished request.

    Attributes:
        plan: the models that ran and the targets each produced.
        targets: every target, finished, in ``dst`` order.
        warnings: what makes the inputs unlike the training data (:mod:`synnet.input_checks`).
        meta: the first source's metadata (None for an array); shape: the input's shape.
    """

    plan: list[Assignment]
    targets: dict[Modality, SynthesizedTarget]
    warnings: list[InputWarning]
    meta: ImageMeta | None
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Pipeline:
    """One request's stages: decode → plan → prepare → (the caller's forward) → finish.

    Attributes:
        request: what is asked for.
        route: the routing stage, called once the inputs are decoded (:func:`synnet.routing.plan`
            over the caller's models).
        batch_size: slices per forward chunk.
        crop: run the brain's bounding box only (False: whole slices).
        gzip_level, compress: NIfTI compression (:class:`synnet.pipeline.outputs.Encoding`).
        limits: size bounds for decoded files (None: :class:`synnet.imageio.ImageLimits`' defaults).
    """

    request: SynthesisRequest
    route: Router
    batch_size: int
    crop: bool = True
    gzip_level: int = DEFAULT_GZIP_LEVEL
    compress: bool | None = None
    limits: ImageLimits | None = None

    def decode(self) -> Decoded:
        """Stage 1 (CPU work): read and cross-check the images, note warnings, settle the output format."""
        inputs = decode_inputs(self.request, self.limits)
        warnings = check_inputs(inputs.sources, inputs.meta)
        fmt = output_format(self.request.format, inputs.meta, inputs.shape)
        return Decoded(inputs, warnings, Encoding(fmt, self.gzip_level, self.compress))

    def plan(self, decoded: Decoded) -> list[Assignment]:
        """Stage 2: the models that serve the request, each checked to accept the input's size."""
        plan = list(self.route(self.request))
        for assignment in plan:
            check_size(decoded.inputs.shape, assignment.manifest)
        return plan

    def prepare(self, decoded: Decoded, assignment: Assignment) -> SliceStack:
        """Stage 3 (CPU work): what one model's network runs (:func:`synnet.inference.prepare`)."""
        inputs = decoded.inputs
        return prepare(inputs.sources, inputs.mask, assignment.manifest, crop=self.crop)

    def chunks(self, stack: SliceStack) -> list[torch.Tensor]:
        """Stage 4's work items: (n ≤ batch_size, C, h, w) slices each, for the caller's forward."""
        return stack.chunks(self.batch_size)

    def finish(
        self, decoded: Decoded, assignment: Assignment, stack: SliceStack, outputs: Sequence[torch.Tensor]
    ) -> dict[Modality, SynthesizedTarget]:
        """Stage 5 (CPU work): the forward's outputs → the model's targets in raw units, scored, encoded."""
        manifest = assignment.manifest
        return finish_model(decoded.inputs, manifest, assignment.targets, stack, outputs, decoded.encoding)

    def result(
        self, decoded: Decoded, plan: list[Assignment], finished: Sequence[Mapping[Modality, SynthesizedTarget]]
    ) -> Synthesis:
        targets = {target: done for by_model in finished for target, done in by_model.items()}
        inputs = decoded.inputs
        ordered = {target: targets[target] for target in self.request.dst}
        return Synthesis(plan, ordered, decoded.warnings, inputs.meta, inputs.shape)


def run(pipeline: Pipeline, forward: Callable[[ModelManifest], Forward]) -> Synthesis:
    """Every stage in this thread; ``forward(manifest)`` gives the model's ``(B, C, H, W) -> (B, D, H, W)``."""
    decoded = pipeline.decode()
    plan = pipeline.plan(decoded)
    finished = []
    for assignment in plan:
        stack = pipeline.prepare(decoded, assignment)
        model = forward(assignment.manifest)
        finished.append(pipeline.finish(decoded, assignment, stack, [model(x) for x in pipeline.chunks(stack)]))
    return pipeline.result(decoded, plan, finished)


async def run_async(pipeline: Pipeline, submit: Callable[[ModelManifest], AsyncForward], offload: Offload) -> Synthesis:
    """Every stage, the models concurrently; ``submit(manifest)`` gives an awaitable forward per chunk.

    Cancelling it (a timeout, a client gone) cancels every chunk not yet run.
    """
    decoded = await offload(pipeline.decode)
    plan = pipeline.plan(decoded)

    async def one_model(assignment: Assignment) -> dict[Modality, SynthesizedTarget]:
        stack = await offload(pipeline.prepare, decoded, assignment)
        model = submit(assignment.manifest)
        outputs = await asyncio.gather(*(model(x) for x in pipeline.chunks(stack)))
        return await offload(pipeline.finish, decoded, assignment, stack, outputs)

    finished = await asyncio.gather(*(one_model(a) for a in plan))
    return pipeline.result(decoded, plan, finished)
