"""The PSNR/SSIM record, defined once: what the service sends, the API and the CLI return, manifests keep.

In memory the scores are floats as :mod:`synnet.metrics` computes them: the PSNR of identical
images is ``inf``, and a score that was not measured is NaN. JSON has neither, so a score that is
not finite is written ``null`` (a finite one rounded to 6 decimals) and read back as NaN.

* :class:`Scores`: the four numbers, whole image (model space) and inside the brain;
* :class:`MetricReport`: one synthesized image against its truth (``POST /synthesize``,
  :class:`synnet.Synthesizer`, ``synnet synthesize|evaluate``, locally or with ``--server``); it adds
  ``identical``, so that a ``null`` PSNR read back from JSON is infinite again;
* :class:`TargetMetrics`: a mean over cases with its spread (the manifest's validation scores,
  held-out scores in ``evaluation.json``);
* :class:`HeldOutMetrics`: the same with the BraSyn challenge's scores beside ours
  (``evaluation.json``, :mod:`synnet.evaluation`).

This module needs pydantic only, so the manifest can use it without importing torch.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, computed_field, model_validator

JSON_DECIMALS = 6


def _nan_if_not_measured(value: object) -> object:
    # One NaN object for all: records then compare equal (NaN != NaN, but dict equality checks `is` first).
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    return value


def _null_if_not_finite(value: float) -> float | None:
    return round(value, JSON_DECIMALS) if math.isfinite(value) else None


# A float in memory; in JSON a number, or null for inf and NaN.
Score = Annotated[
    float,
    BeforeValidator(_nan_if_not_measured),
    PlainSerializer(_null_if_not_finite, return_type=float | None, when_used="json"),
]


class Scores(BaseModel):
    """PSNR (dB) and SSIM over the whole image in model space, and inside the brain (:mod:`synnet.metrics`)."""

    # Every field is always sent, so the response schema lists them as required despite the defaults.
    model_config = ConfigDict(frozen=True, json_schema_serialization_defaults_required=True)

    psnr: Score = math.nan
    ssim: Score = math.nan
    psnr_brain: Score = math.nan
    ssim_brain: Score = math.nan


class MetricReport(Scores):
    """PSNR (dB) and SSIM of the synthesized image against its truth.

    Whole-image numbers are computed in model space. ``*_brain`` ones follow this project's own,
    strict convention, not BraSyn's: each image clipped to its own 0.5/99.5 percentiles inside the
    brain mask and scored inside the brain only. PSNR of identical images is infinite: it is null and
    ``identical`` is true.
    """

    @computed_field
    @property
    def identical(self) -> bool:
        return math.isinf(self.psnr) or math.isinf(self.psnr_brain)

    @model_validator(mode="before")
    @classmethod
    def _infinite_when_identical(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("identical"):
            return {k: math.inf if k.startswith("psnr") and v is None else v for k, v in data.items()}
        return data


class TargetMetrics(Scores):
    """Means over cases of one target's scores and their spread (population std; only held-out scores have it)."""

    psnr_std: Score = math.nan
    ssim_std: Score = math.nan
    psnr_brain_std: Score = math.nan
    ssim_brain_std: Score = math.nan


class HeldOutMetrics(TargetMetrics):
    """Means over held-out cases in both conventions: ours (whole image, in-brain) and the BraSyn challenge's.

    BraSyn's (:func:`synnet.metrics.brasyn_scores`): each volume clipped to its whole-volume percentiles,
    background included, PSNR over the volume, 3D SSIM over the tumour and over the rest. Cases without a
    tumour label (the BraTS 2023 case) have no tumour SSIM, so its mean is over the others, or NaN.
    A :class:`TargetMetrics` given where this is expected is read as one without BraSyn's scores.
    """

    model_config = ConfigDict(frozen=True, json_schema_serialization_defaults_required=True, from_attributes=True)

    psnr_brasyn: Score = math.nan
    ssim_brasyn_tumour: Score = math.nan
    ssim_brasyn_rest: Score = math.nan
    psnr_brasyn_std: Score = math.nan
    ssim_brasyn_tumour_std: Score = math.nan
    ssim_brasyn_rest_std: Score = math.nan
