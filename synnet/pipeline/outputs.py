"""Stage 5, finish: a model's outputs → each target in raw units, scored, encoded in the input's space.

NIfTI and npy carry raw units (``manifest.output_reference[target]``, the median training range)
in the source's voxel grid, with its affine and header; PNG carries model space [0, 1] mapped onto
the full 8- or 16-bit range. Metrics are :func:`synnet.metrics.compute_metrics` (the model-space
prediction against the truth normalized like a training target).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from synnet.errors import SynnetError
from synnet.imageio import EncodedImage, ImageMeta, OutputFormat, encode_image
from synnet.imageio.write import DEFAULT_GZIP_LEVEL
from synnet.inference import SliceStack, SliceStats, assemble, synthetic_description, to_raw_units
from synnet.manifest import ModelManifest
from synnet.metrics import compute_metrics
from synnet.modalities import Modality
from synnet.pipeline.inputs import Inputs
from synnet.scores import MetricReport


@dataclass(frozen=True)
class Encoding:
    """How results are written: the format, and for NIfTI the compression.

    Attributes:
        format: nifti, png or npy.
        gzip_level: zlib level of a compressed NIfTI (:func:`synnet.imageio.gzip_bytes`).
        compress: gzip a NIfTI; None: as the input was (gzip for an input that was not a NIfTI file).
    """

    format: OutputFormat
    gzip_level: int = DEFAULT_GZIP_LEVEL
    compress: bool | None = None


@dataclass(frozen=True)
class SynthesizedTarget:
    """One target, finished: its file and what is known about it.

    Attributes:
        file: the target encoded (:class:`Encoding`).
        shape: the input's shape, (H, W) or (X, Y, Z).
        metrics: the target scored against its truth, when one was given.
        stats: the slices its model ran and skipped.
    """

    target: Modality
    model: str
    format: OutputFormat
    file: EncodedImage
    shape: tuple[int, ...]
    metrics: MetricReport | None
    stats: SliceStats

    @property
    def filename(self) -> str:
        return f"synthetic_{self.target.value}{self.file.extension}"


def output_format(requested: OutputFormat | None, meta: ImageMeta | None, shape: tuple[int, ...]) -> OutputFormat:
    """The requested format, else the input's (NIfTI for an array); PNG only for 2D images."""
    fmt: OutputFormat = requested or (meta.format if meta is not None else "nifti")
    if fmt == "png" and len(shape) != 2:
        raise SynnetError(
            f"PNG output needs a 2D image, the input is a volume of shape {shape}; ask for format=nifti or npy",
            code="unsupported_output_format",
        )
    return fmt


def finish_model(
    inputs: Inputs,
    manifest: ModelManifest,
    targets: Sequence[Modality],
    stack: SliceStack,
    outputs: Sequence[torch.Tensor],
    encoding: Encoding,
) -> dict[Modality, SynthesizedTarget]:
    """The model's outputs for ``stack.chunks()`` → each of ``targets`` finished (CPU work).

    Args:
        outputs: (n, len(manifest.dst), h, w) per chunk, in model space.
    """
    y = assemble(stack, outputs)  # (D, X, Y, Z) in [0, 1], zero outside the brain
    return {
        target: finish_target(
            target, y[manifest.dst.index(target)].reshape(inputs.shape), manifest, inputs, encoding, stack.stats
        )
        for target in targets
    }


def finish_target(
    target: Modality,
    pred_model_space: np.ndarray,
    manifest: ModelManifest,
    inputs: Inputs,
    encoding: Encoding,
    stats: SliceStats,
) -> SynthesizedTarget:
    """Score one target against its truth if any, map it to raw units and encode it.

    Args:
        pred_model_space: the model's output for ``target`` in the input's shape, in [0, 1].
    """
    truth = inputs.truths.get(target)
    metrics = compute_metrics(pred_model_space, truth, inputs.mask, manifest) if truth is not None else None
    description = synthetic_description(target, manifest)
    if encoding.format == "png":  # model space onto the PNG's integer range
        file = encode_image(pred_model_space, "png", inputs.meta, description=description, value_range=(0.0, 1.0))
    else:
        raw = to_raw_units(pred_model_space, inputs.mask, manifest, target)
        file = encode_image(
            raw, encoding.format, inputs.meta, description=description,
            gzip_level=encoding.gzip_level, compress=encoding.compress,
        )  # fmt: skip
    return SynthesizedTarget(
        target, manifest.name, encoding.format, file, tuple(pred_model_space.shape), metrics, stats
    )
