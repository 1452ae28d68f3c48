"""How scores are shown on the cards and the results page: one set of columns and number formats."""

from __future__ import annotations

import math

from synnet.scores import HeldOutMetrics

# the datasets' names in the tables (by folder name); any other is shown by its folder name
DATASET_LABELS = {
    "brats18": "BraTS 2018",
    "brats23": "BraTS 2023",
    "brats18_t1_flair": "BraTS 2018, T1 + FLAIR only",
    "brats13_flair_t1c": "BRATS 2013, FLAIR + T1c only",
}
IN_BRAIN_HEADER = "in-brain PSNR | in-brain SSIM"
BRASYN_HEADER = "BraSyn PSNR | BraSyn SSIM tumour / rest"


def dataset_label(name: str) -> str:
    return DATASET_LABELS.get(name, name)


def value(number: float, digits: int) -> str:
    """A score, or ``–`` when it was not measured."""
    return f"{number:.{digits}f}" if math.isfinite(number) else "–"


def spread(mean: float, std: float, digits: int, n_cases: int) -> str:
    """``mean ± std`` over several cases; one case has no spread."""
    if n_cases > 1 and math.isfinite(mean) and math.isfinite(std):
        return f"{mean:.{digits}f} ± {std:.{digits}f}"
    return value(mean, digits)


def in_brain(metrics: HeldOutMetrics | None, n_cases: int) -> str:
    """The two in-brain cells (our convention)."""
    if metrics is None:
        return "– | –"
    psnr = spread(metrics.psnr_brain, metrics.psnr_brain_std, 2, n_cases)
    return f"{psnr} | {spread(metrics.ssim_brain, metrics.ssim_brain_std, 3, n_cases)}"


def brasyn(metrics: HeldOutMetrics | None) -> str:
    """The two BraSyn cells: PSNR, and SSIM over the tumour / the rest (no tumour label: –)."""
    if metrics is None:
        return "– | –"
    ssim = f"{value(metrics.ssim_brasyn_tumour, 3)} / {value(metrics.ssim_brasyn_rest, 3)}"
    return f"{value(metrics.psnr_brasyn, 2)} | {ssim}"


def whole(metrics: HeldOutMetrics | None) -> str:
    """The two whole-volume cells (model space, background included)."""
    if metrics is None:
        return "– | –"
    return f"{value(metrics.psnr, 2)} | {value(metrics.ssim, 3)}"
