"""Small pure pieces: the brain box, metric headers, download negotiation, admission."""

from __future__ import annotations

import math

import numpy as np
import pytest

from service.admission import AdmissionGate
from service.errors import QueueFullError
from service.results import metric_headers
from service.routes.synthesize import wants_download
from synnet.inference import brain_box
from synnet.scores import MetricReport


def test_brain_box_is_aligned_to_the_grid_and_inside_the_image() -> None:
    mask = np.zeros((240, 240), bool)
    mask[45:189, 41:219] = True
    rows, cols = brain_box(mask, multiple=16, min_size=16)
    assert (rows.start, rows.stop, cols.start, cols.stop) == (32, 192, 32, 224)
    rows, cols = brain_box(mask, multiple=4, min_size=16)
    assert (rows.start, rows.stop, cols.start, cols.stop) == (44, 192, 40, 220)


def test_brain_box_keeps_the_minimum_size_and_the_image_edge() -> None:
    mask = np.zeros((50, 40), bool)
    mask[48, 38] = True  # one pixel in the corner
    rows, cols = brain_box(mask, multiple=4, min_size=16)
    assert (rows.start, rows.stop) == (34, 50) and (cols.start, cols.stop) == (24, 40)
    empty = brain_box(np.zeros((20, 30), bool), multiple=4, min_size=16)
    assert empty == (slice(0, 20), slice(0, 30))


def test_metric_headers_write_an_infinite_psnr_as_inf_and_flag_identical() -> None:
    headers = metric_headers(MetricReport(psnr=math.inf, ssim=1.0, psnr_brain=math.inf, ssim_brain=1.0))
    assert headers["X-Synnet-PSNR"] == "inf" and headers["X-Synnet-SSIM"] == "1.000000"
    assert headers["X-Synnet-Identical"] == "true"
    headers = metric_headers(MetricReport(psnr=30.5, ssim=0.9, psnr_brain=25.25, ssim_brain=0.8))
    assert headers["X-Synnet-PSNR-Brain"] == "25.250000" and headers["X-Synnet-Identical"] == "false"
    assert metric_headers(None) == {}


@pytest.mark.parametrize(
    ("download", "accept", "expected"),
    [
        (False, None, False),
        (False, "*/*", False),
        (False, "application/octet-stream", True),
        (False, "application/octet-stream;q=0.9, */*", True),
        (False, "application/json, application/octet-stream", False),
        (True, "application/json", True),
    ],
)
def test_download_negotiation(download, accept, expected) -> None:
    assert wants_download(download, accept) is expected


@pytest.mark.anyio
async def test_admission_gate_refuses_past_its_limit_and_frees_slots() -> None:
    seen: list[int] = []
    gate = AdmissionGate(limit=1, retry_after_s=2, on_change=seen.append)
    async with gate.slot():
        with pytest.raises(QueueFullError) as refused:
            async with gate.slot():
                pass
        assert refused.value.retry_after_s == 2
    async with gate.slot():
        pass
    assert seen == [1, 0, 1, 0] and gate.in_flight == 0
