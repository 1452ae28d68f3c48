"""What every card says about intended use and limits, and which configurations it names as the weakest."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from synnet.scores import HeldOutMetrics
from training.cards.served import BRATS23, Served

INTENDED_USE = [
    "- **For research and education**: completing BraTS-like datasets whose contrasts are missing or corrupt "
    "for method development, and teaching what cross-contrast synthesis can and cannot recover.",
    "- **Not for diagnosis or treatment decisions.** A synthetic image is an estimate from the other contrasts, "
    "not a measurement: tissue the sources do not show (oedema on FLAIR, enhancement on T1c) can be missed, "
    "weakened or misplaced.",
    "- **Inputs must look like BraTS**: skull-stripped, co-registered, resampled to 1 mm isotropic voxels "
    "(the BraTS template's LPS orientation), with the same intensity handling: raw scanner intensities, or "
    "already-normalized data sent with its brain mask. The service, the CLI and the API warn when inputs are "
    "not (docs/own_scans.md).",
    "- **What it learnt from**: pre-operative gliomas of a few BraTS subjects; other pathologies, ages, "
    "scanners and protocols were never seen. The BraTS 2023 case, prepared by another pipeline, shows how "
    "much scores drop on data from elsewhere; one or five test subjects are little evidence.",
]
WEAKEST = 3


def limits(serving: Sequence[Served], served: Sequence[Served]) -> list[str]:
    """The weakest configurations: of those this model serves, and of the whole store (in-brain SSIM)."""
    lines = []
    if serving:
        lines.append(f"- **Weakest of what it serves** (validation, in-brain): {_listed(weakest(serving))}.")
    lines.append(f"- **Weakest configurations of the store** (validation, as served): {_listed(weakest(served))}.")
    on_test = weakest(served, brats23)
    if on_test:
        lines.append(f"- **Weakest on the BraTS 2023 test case** (as served): {_listed(on_test)}.")
    return lines


def validation(row: Served) -> HeldOutMetrics | None:
    return row.validation


def brats23(row: Served) -> HeldOutMetrics | None:
    return row.test.get(BRATS23)


def weakest(
    rows: Sequence[Served], metrics_of: Callable[[Served], HeldOutMetrics | None] = validation
) -> list[tuple[Served, HeldOutMetrics]]:
    """The :data:`WEAKEST` rows with the lowest in-brain SSIM (then PSNR), among those scored."""
    scored = [(row, m) for row in rows if (m := metrics_of(row)) is not None and _finite(m)]
    return sorted(scored, key=lambda pair: (pair[1].ssim_brain, pair[1].psnr_brain, pair[0].label))[:WEAKEST]


def _listed(pairs: Sequence[tuple[Served, HeldOutMetrics]]) -> str:
    return "; ".join(f"{row.label} {m.psnr_brain:.2f} dB / {m.ssim_brain:.3f}" for row, m in pairs)


def _finite(metrics: HeldOutMetrics) -> bool:
    return math.isfinite(metrics.ssim_brain) and math.isfinite(metrics.psnr_brain)
