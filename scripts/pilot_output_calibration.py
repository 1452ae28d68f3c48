"""Pilot (not in the product): a monotone output calibration for the unified model, on the held-out cases.

Per configuration, the mean in-brain quantile curve of the model's output and of the truth over 4 of
its training cases gives a monotone map (output quantile -> truth quantile); it is applied to the
outputs on the 4 held-out cases and both are scored in-brain. Axial slices 50-99 only, to fit a
session on 2 cores, so the numbers compare with each other, not with the whole-volume table.

    python scripts/pilot_output_calibration.py      # from the repository root, with ../shared/data
"""

from __future__ import annotations

import numpy as np

from synnet.inference import synthesize
from synnet.metrics import evaluate
from synnet.modalities import Modality
from synnet.normalization import brain_mask, normalize
from synnet.store import load_model
from training.data.brats import find_cases, load_case

SLAB = slice(50, 100)
QUANTILES = np.linspace(0, 1, 201)
T1, T1c, T2, FLAIR = Modality.T1, Modality.T1c, Modality.T2, Modality.FLAIR
CONFIGURATIONS = [((T1, T1c, T2), FLAIR), ((T1,), FLAIR), ((T1,), T1c), ((T1, T2), T1c), ((T1,), T2)]


def predict(model, case, sources, target):
    """The model's target and the truth in model space on the slab, with the sources' brain mask."""
    loaded = load_case(case, [*sources, target], load_seg=False)
    given = {m: loaded.images[m][:, :, SLAB] for m in sources}
    mask = brain_mask(list(given.values()))
    y, _ = synthesize(model.forward, given, mask, model.manifest, batch_size=8)
    truth = normalize(loaded.images[target][:, :, SLAB], mask, model.manifest.normalization)[0]
    return y[model.manifest.dst.index(target)], truth, mask


def main() -> None:
    model = load_model("model_store/synnet_unified", "cpu")
    split = model.manifest.training_data
    cases = {c.case_id: c for c in find_cases("../shared/data/brats18")}
    train = [cases[c] for c in split.train_cases if c in cases][:4]
    for sources, target in CONFIGURATIONS:
        curves = [predict(model, case, sources, target) for case in train]
        out_q = np.mean([np.quantile(p[m], QUANTILES) for p, _, m in curves], axis=0)
        truth_q = np.mean([np.quantile(t[m], QUANTILES) for _, t, m in curves], axis=0)
        out_q = np.maximum.accumulate(out_q + np.arange(out_q.size) * 1e-9)  # strictly increasing for interp
        raw, calibrated = [], []
        for case_id in split.test_cases:
            pred, truth, mask = predict(model, cases[case_id], sources, target)
            mapped = np.where(mask, np.interp(pred, out_q, truth_q), 0.0)
            raw.append(evaluate(pred, truth, mask))
            calibrated.append(evaluate(mapped, truth, mask))
        label = f"{','.join(m.value for m in sources)} -> {target.value}"
        print(
            f"{label}: raw {np.mean([r.psnr_brain for r in raw]):.2f} dB / {np.mean([r.ssim_brain for r in raw]):.3f}"
            f"  calibrated {np.mean([r.psnr_brain for r in calibrated]):.2f} dB"
            f" / {np.mean([r.ssim_brain for r in calibrated]):.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
