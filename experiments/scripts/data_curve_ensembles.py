"""Score the mean output of several data-curve models (experiments/results/data_curve.md, "Averaging the runs").

    python experiments/scripts/data_curve_ensembles.py runs/data_curve/store

Bagging asks whether models trained on different halves of the subjects, or at different seeds,
make a better T1 -> T2 together than one model on all 12: each set's outputs are averaged in model
space and scored like ``training.evaluate`` scores one model, on the 4 held-out test cases and the
BraTS 2023 case. Prints brain PSNR / SSIM per set.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

from synnet.store import load_model
from training.data.brats import find_cases
from training.evaluate import predict_case, score_prediction

SETS = {
    "n12 (one model)": ("t1_to_t2_n12",),
    "n12 at seeds 0 and 1": ("t1_to_t2_n12", "t1_to_t2_n12_seed1"),
    "the two halves": ("t1_to_t2_n06a", "t1_to_t2_n06b"),
    "the two halves at both seeds": ("t1_to_t2_n06a", "t1_to_t2_n06b", "t1_to_t2_n06a_seed1", "t1_to_t2_n06b_seed1"),
}


def main(store: Path) -> None:
    names = sorted({name for members in SETS.values() for name in members})
    models = {name: load_model(store / name, "cpu") for name in names}
    test_cases = set(models[names[0]].manifest.training_data.test_cases)  # held out by every run of the curve
    cases = [c for c in find_cases("../shared/data/brats18") if c.case_id in test_cases]
    cases += find_cases("../shared/data/brats23")
    scores: dict[str, list[tuple[str, float, float]]] = {key: [] for key in SETS}
    for case in cases:
        predictions = {name: predict_case(models[name], case, batch_size=8) for name in names}
        for key, members in SETS.items():
            prediction = predictions[members[0]]
            averaged = dataclasses.replace(prediction, y=np.mean([predictions[m].y for m in members], axis=0))
            row = score_prediction(models[members[0]].manifest, averaged)[0]
            scores[key].append((case.case_id, row["psnr_brain"], row["ssim_brain"]))
    print("| models averaged | test cases: brain PSNR / SSIM | BraTS 2023 case |")
    print("| --- | --- | --- |")
    for key, rows in scores.items():
        held = [r for r in rows if r[0] in test_cases]
        other = [r for r in rows if r[0] not in test_cases]
        mean_psnr, mean_ssim = np.mean([r[1] for r in held]), np.mean([r[2] for r in held])
        print(f"| {key} | {mean_psnr:.2f} / {mean_ssim:.3f} | {other[0][1]:.2f} / {other[0][2]:.3f} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
