"""The reference the results page quotes for reading in-brain scores: each true contrast blurred by a Gaussian
of 2 voxels (3D), scored against itself in our convention. A synthesis that scores like it is as close to the
truth as the truth two voxels out of focus.

Computed on the validation subjects where the data are at hand (``python -m training.cards --data``) and kept
in ``docs/blurred_truth.json``, so the page is made without the data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from synnet.metrics import brain_scores
from synnet.modalities import Modality
from synnet.normalization import brain_mask
from training.data.brats import find_cases, load_case

REFERENCE_FILE = Path("docs/blurred_truth.json")
SIGMA_VOXELS = 2.0


def measure_reference(data: Path, cases: Sequence[str]) -> dict[str, object]:
    """Mean in-brain PSNR and SSIM of each contrast blurred against itself, over ``cases`` of ``data``."""
    found = {case.case_id: case for case in find_cases(data)}
    scores: dict[str, list[dict[str, float]]] = {m.value: [] for m in Modality}
    for case_id in cases:
        loaded = load_case(found[case_id], list(Modality), load_seg=False)
        mask = brain_mask(list(loaded.images.values()))
        for modality, truth in loaded.images.items():
            scores[modality.value].append(brain_scores(gaussian_filter(truth, SIGMA_VOXELS), truth, mask))
    means = {
        target: {name: round(float(np.mean([row[name] for row in rows])), 4) for name in ("psnr_brain", "ssim_brain")}
        for target, rows in scores.items()
    }
    return {"sigma_voxels": SIGMA_VOXELS, "data": str(data), "cases": list(cases), "targets": means}


def read_reference(path: Path) -> dict[str, object] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def write_reference(path: Path, reference: dict[str, object]) -> None:
    path.write_text(json.dumps(reference, indent=2) + "\n")
