"""Print, per BraTS case, how its T1 and T2 relate inside the brain (experiments/results/data_curve.md).

    python experiments/scripts/subject_stats.py ../shared/data/brats18

Each image is scaled to model space (its own 0.5/99.5 in-brain percentiles, synnet.normalization;
the brain is where T1 or T2 is nonzero); the row gives the T2 and T1 brain medians there, the share
of the brain inside the tumour label, and the voxelwise correlation of T1 with T2 in the brain: how
much the mapping a T1 -> T2 model must learn changes from subject to subject. Reads only the
files; no model.
"""

from __future__ import annotations

import sys

import numpy as np

from synnet.modalities import Modality
from synnet.normalization import brain_mask, normalize
from training.data.brats import find_cases, load_case


def main(folder: str) -> None:
    print("| case | T2 brain median | T1 brain median | tumour share of brain | corr(T1, T2) in brain |")
    print("| --- | --- | --- | --- | --- |")
    for case in find_cases(folder):
        loaded = load_case(case, [Modality.T1, Modality.T2])
        t1, t2 = loaded.images[Modality.T1], loaded.images[Modality.T2]
        mask = brain_mask([t1, t2])
        scaled_t1, _ = normalize(t1, mask)
        scaled_t2, _ = normalize(t2, mask)
        tumour = "–" if loaded.seg is None else f"{((loaded.seg > 0) & mask).sum() / mask.sum():.3f}"
        correlation = np.corrcoef(scaled_t1[mask], scaled_t2[mask])[0, 1]
        print(
            f"| {case.case_id} | {np.median(scaled_t2[mask]):.3f} | {np.median(scaled_t1[mask]):.3f} "
            f"| {tumour} | {correlation:+.3f} |"
        )


if __name__ == "__main__":
    main(sys.argv[1])
