"""From model-space outputs to what the client receives: raw units, metrics, encoded files.

NIfTI and npy carry raw units (``manifest.output_reference[target]``, the median training range)
in the source's voxel grid; PNG carries model space [0, 1] mapped onto the full 8- or 16-bit range.
Metrics are :func:`synnet.metrics.compute_metrics` (the model-space prediction against the truth
normalized like a training target), the same numbers the Python API reports.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass

import numpy as np
from fastapi.responses import Response

from service.schemas import TargetResult
from synnet.errors import SynnetError
from synnet.imageio import ImageMeta, OutputFormat, encode_image
from synnet.imageio.write import DEFAULT_GZIP_LEVEL
from synnet.inference import synthetic_description, to_raw_units
from synnet.manifest import ModelManifest
from synnet.metrics import compute_metrics
from synnet.modalities import Modality
from synnet.scores import MetricReport


@dataclass
class TargetOutput:
    """One synthesized target, encoded."""

    target: Modality
    model: str
    shape: tuple[int, ...]
    fmt: OutputFormat
    payload: bytes
    media_type: str
    filename: str
    metrics: MetricReport | None
    slices_run: int
    slices_skipped: int

    def to_result(self) -> TargetResult:
        return TargetResult(
            model=self.model,
            shape=list(self.shape),
            format=self.fmt,
            media_type=self.media_type,
            filename=self.filename,
            data=base64.b64encode(self.payload).decode("ascii"),
            metrics=self.metrics,
            slices_run=self.slices_run,
            slices_skipped=self.slices_skipped,
        )


def output_format(requested: OutputFormat | None, meta: ImageMeta, shape: tuple[int, ...]) -> OutputFormat:
    """The requested format, else the input's; PNG only for 2D images."""
    fmt: OutputFormat = requested or meta.format
    if fmt == "png" and len(shape) != 2:
        raise SynnetError(
            f"PNG output needs a 2D image, the input is a volume of shape {shape}; ask for format=nifti or npy",
            code="unsupported_output_format",
        )
    return fmt


def finish_target(
    target: Modality,
    pred_model_space: np.ndarray,
    manifest: ModelManifest,
    *,
    meta: ImageMeta,
    mask: np.ndarray,
    truth: np.ndarray | None,
    fmt: OutputFormat,
    slices_run: int,
    slices_skipped: int,
    gzip_level: int = DEFAULT_GZIP_LEVEL,
) -> TargetOutput:
    """Denormalize, score against the truth if any, and encode one target (CPU work: run in a thread).

    Args:
        pred_model_space: the model's output for ``target`` in the input's shape, in [0, 1].
        gzip_level: zlib level of a compressed NIfTI (:func:`synnet.imageio.gzip_bytes`).
    """
    metrics = compute_metrics(pred_model_space, truth, mask, manifest) if truth is not None else None
    description = synthetic_description(target, manifest)
    if fmt == "png":  # model space onto the PNG's integer range
        encoded = encode_image(pred_model_space, fmt, meta, description=description, value_range=(0.0, 1.0))
    else:
        raw = to_raw_units(pred_model_space, mask, manifest, target)
        encoded = encode_image(raw, fmt, meta, description=description, gzip_level=gzip_level)
    return TargetOutput(
        target=target,
        model=manifest.name,
        shape=tuple(pred_model_space.shape),
        fmt=fmt,
        payload=encoded.payload,
        media_type=encoded.media_type,
        filename=f"synthetic_{target.value}{encoded.extension}",
        metrics=metrics,
        slices_run=slices_run,
        slices_skipped=slices_skipped,
    )


def metric_headers(metrics: MetricReport | None) -> dict[str, str]:
    """Metrics as response headers for the download form; an infinite PSNR is written ``inf``."""
    if metrics is None:
        return {}
    values = {
        "X-Synnet-PSNR": metrics.psnr,
        "X-Synnet-SSIM": metrics.ssim,
        "X-Synnet-PSNR-Brain": metrics.psnr_brain,
        "X-Synnet-SSIM-Brain": metrics.ssim_brain,
    }
    headers = {k: ("inf" if math.isinf(v) else f"{v:.6f}") for k, v in values.items()}
    headers["X-Synnet-Identical"] = "true" if metrics.identical else "false"
    return headers


def download_response(output: TargetOutput) -> Response:
    """The file itself, with what the JSON form would say about it in ``X-Synnet-*`` headers."""
    headers = {
        "Content-Disposition": f'attachment; filename="{output.filename}"',
        "X-Synnet-Model": output.model,
        "X-Synnet-Target": output.target.value,
        "X-Synnet-Shape": ",".join(str(s) for s in output.shape),
        **metric_headers(output.metrics),
    }
    return Response(content=output.payload, media_type=output.media_type, headers=headers)
