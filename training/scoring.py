"""How one synthesized volume is scored, and how per-case scores are written and averaged.

One place for the metric columns, so ``training.evaluate`` (a model on its own configuration) and
``training.configurations`` (an any-to-any model and the lookup-table baseline on every
configuration) report the same numbers under the same names.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synnet.metrics import WINDOW_SIZE, brain_scaled, brasyn_scores, evaluate, psnr, ssim_in_regions
from synnet.scores import HeldOutMetrics

# BraTS tumour regions by label: 1 necrotic/non-enhancing core, 2 oedema, 4 enhancing tumour
REGIONS = {"wt": (1, 2, 4), "tc": (1, 4), "et": (4,)}
BASE_METRICS = ("psnr", "ssim", "psnr_brain", "ssim_brain")
REGION_METRICS = tuple(f"{metric}_{region}" for region in REGIONS for metric in ("psnr", "ssim"))
BRASYN_METRICS = ("psnr_brasyn", "ssim_brasyn_tumour", "ssim_brasyn_rest")
METRICS = BASE_METRICS + REGION_METRICS + BRASYN_METRICS
# what evaluation.json keeps of a summary: both conventions (synnet.scores.HeldOutMetrics)
RECORDED_METRICS = BASE_METRICS + BRASYN_METRICS


def score(
    pred: np.ndarray, truth: np.ndarray, mask: np.ndarray, seg: np.ndarray | None, raw_truth: np.ndarray
) -> dict[str, float]:
    """Whole, brain, (with ``seg``) tumour-region and BraSyn scores of one model-space target volume.

    ``raw_truth`` is the truth as stored, which BraSyn scales itself; ``truth`` is it in model space.
    """
    report = evaluate(pred, truth, mask)
    scores = {name: getattr(report, name) for name in BASE_METRICS}
    if min(pred.shape) >= WINDOW_SIZE:  # BraSyn's 3D SSIM needs the whole window inside the volume
        scores |= brasyn_scores(pred, raw_truth, seg)
    else:
        scores |= {name: math.nan for name in BRASYN_METRICS}
    if seg is None:
        return scores | {name: math.nan for name in REGION_METRICS}
    regions = {name: np.isin(seg, labels) & mask for name, labels in REGIONS.items()}
    pred_b, truth_b = brain_scaled(pred, mask), brain_scaled(truth, mask)
    region_ssim = ssim_in_regions(pred_b, truth_b, regions)
    for name, region in regions.items():
        scores[f"psnr_{name}"] = psnr(pred_b, truth_b, data_range=1.0, mask=region) if region.any() else math.nan
        scores[f"ssim_{name}"] = region_ssim[name]
    return scores


def brasyn_truth(stored: np.ndarray, brain_from_file: np.ndarray | None) -> np.ndarray:
    """The truth BraSyn's scaling is given: the image as stored, as a raw scan is.

    Data normalized before (a case whose brain comes from a mask file: z-scored, the background one
    negative constant) is shifted so that the brain starts at 0 and the background is 0, as in a raw
    scan; BraSyn's clip at 0 would otherwise cut away every brain voxel below the mean.
    """
    if brain_from_file is None:
        return stored
    return np.where(brain_from_file, stored - stored[brain_from_file].min(), 0.0).astype(np.float32)


@dataclass
class Summary:
    """Mean and (population) std over one dataset's cases of each metric for one model and target."""

    model: str
    dataset: str
    target: str
    n_cases: int
    mean: dict[str, float]
    std: dict[str, float]
    sources: str = ""  # an any-to-any model's rows: the configuration's sources, e.g. "T1,FLAIR"


def held_out_metrics(summary: Summary) -> HeldOutMetrics:
    """A summary's means and spreads as ``evaluation.json`` keeps them (4 decimals; not measured: null)."""
    values = {name: _rounded(summary.mean[name]) for name in RECORDED_METRICS}
    values |= {f"{name}_std": _rounded(summary.std[name]) for name in RECORDED_METRICS}
    return HeldOutMetrics(**values)


def _rounded(value: float) -> float | None:
    return round(value, 4) if math.isfinite(value) else None


def summarize(rows: Sequence[dict[str, object]]) -> list[Summary]:
    """One :class:`Summary` per model, dataset, target (and sources, where rows have them)."""
    groups: dict[tuple[str, str, str, str], list[dict[str, object]]] = {}
    for row in rows:
        key = (str(row["model"]), str(row["dataset"]), str(row["target"]), str(row.get("sources", "")))
        groups.setdefault(key, []).append(row)
    return [
        Summary(model, dataset, target, len(group), *mean_and_std(group), sources=sources)
        for (model, dataset, target, sources), group in groups.items()
    ]


def mean_and_std(rows: Sequence[dict[str, object]]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and (population) std of each metric over ``rows``, ignoring non-finite values."""
    mean, std = {}, {}
    for metric in METRICS:
        values = np.array([float(row[metric]) for row in rows], dtype=np.float64)  # type: ignore[arg-type]
        values = values[np.isfinite(values)]
        mean[metric] = float(values.mean()) if values.size else math.nan
        std[metric] = float(values.std()) if values.size else math.nan
    return mean, std


def read_rows(path: Path) -> list[dict[str, object]]:
    """The rows of a per-case CSV as written (strings); none when it does not exist yet."""
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [dict(row) for row in csv.DictReader(handle)]


def write_rows(path: Path, rows: Sequence[dict[str, object]], key_fields: Sequence[str]) -> None:
    """A per-case CSV: the key columns, every metric, then the synthesis time."""
    fields = [*key_fields, *METRICS, "seconds"]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: cell(row[key]) for key in fields})


def cell(value: object) -> object:
    """A CSV cell: floats with 6 decimals, NaN empty, infinity as ``inf``."""
    if isinstance(value, float):
        return "" if math.isnan(value) else ("inf" if math.isinf(value) else f"{value:.6f}")
    return value


def as_float(value: object) -> float:
    """A CSV cell read back: empty is NaN."""
    return math.nan if value in ("", None) else float(value)  # type: ignore[arg-type]


def pm(mean: float, std: float, digits: int) -> str:
    """``mean ± std`` for a report, ``–`` when nothing was measured."""
    return "–" if math.isnan(mean) else f"{mean:.{digits}f} ± {std:.{digits}f}"
