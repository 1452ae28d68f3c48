"""What the client receives for a finished target: its JSON entry, or the file with ``X-Synnet-*`` headers."""

from __future__ import annotations

import base64
import math

from fastapi.responses import Response

from service.schemas import TargetResult
from synnet.pipeline import SynthesizedTarget
from synnet.scores import MetricReport


def target_result(output: SynthesizedTarget) -> TargetResult:
    """One target of the JSON answer, the file base64-encoded."""
    return TargetResult(
        model=output.model,
        shape=list(output.shape),
        format=output.format,
        media_type=output.file.media_type,
        filename=output.filename,
        data=base64.b64encode(output.file.payload).decode("ascii"),
        metrics=output.metrics,
        slices_run=output.stats.run,
        slices_skipped=output.stats.skipped,
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


def download_response(output: SynthesizedTarget) -> Response:
    """The file itself, with what the JSON form would say about it in ``X-Synnet-*`` headers."""
    headers = {
        "Content-Disposition": f'attachment; filename="{output.filename}"',
        "X-Synnet-Model": output.model,
        "X-Synnet-Target": output.target.value,
        "X-Synnet-Shape": ",".join(str(s) for s in output.shape),
        **metric_headers(output.metrics),
    }
    return Response(content=output.file.payload, media_type=output.file.media_type, headers=headers)
