"""Why is in-brain PSNR low? Predicted against true intensity per tissue class, and oracles.

``python -m training.diagnose --data ../shared/data/brats18 --model synnet_t1_to_t2
--case Brats18_CBICA_ABM_1 --out docs/intensity_by_tissue.png``

For one model and one or more held-out cases (comma-separated ``--case``), each target is
synthesized through the service's code path (:func:`training.evaluate.predict_case`) and compared
with its truth after the in-brain scaling of :func:`synnet.metrics.brain_scaled`:

* per tissue class, median and interquartile range of prediction and truth. Classes: necrosis
  (label 1), oedema (2), enhancing tumour (4), CSF and healthy brain. BraTS has no CSF label:
  CSF here is the brightest :data:`CSF_FRACTION` of the non-tumour brain voxels of the case's
  real T2 (ventricles and sulci are the brightest healthy tissue on T2), and healthy brain is
  the rest of the non-tumour brain. A case without ``seg`` has no tumour classes; one whose seg is
  a whole-tumour mask (``<case>_wholetumour``) has a single ``tumour`` class, since its labels say
  nothing about oedema or core; one without a T2 has no CSF class;
* oracles that isolate the intensity distribution from structure: PSNR/SSIM after the best
  affine map of the prediction onto the truth (least squares inside the brain), and after
  histogram matching (each predicted voxel takes the truth's value of the same rank);
* Pearson correlation of prediction and truth in the tumour and in non-tumour brain;
* the prediction's model-space percentiles against the truth's, and the score without the
  prediction's own-percentile rescaling, to see whether a few outliers set its scale;
* calibration references: the truth blurred (sigma 2 voxels, in 3D and in-plane) and the truth
  with gamma 0.7 (on raw units, and on the brain-scaled truth), scored like a prediction;
* the BraSyn challenge's scores (:func:`synnet.metrics.brasyn_scores`) for comparison.

``--scales`` adds, over every case of ``--data`` with a seg, where the target's healthy tissue
lands in model space and how its 99.5th percentile relates to the healthy median, for the
target and the sources: whether the target's scale is predictable from the sources.

The figure (first case, first target): violins of predicted and true intensity per class, and a
2D histogram of predicted against true intensity inside the brain.
"""

from __future__ import annotations

import argparse
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from synnet.dataset_layout import CaseFiles
from synnet.metrics import brain_scaled, brasyn_scores, psnr, ssim
from synnet.modalities import Modality
from synnet.normalization import brain_mask, denormalize, intensity_range
from synnet.store import LoadedModel, ModelStore
from training.data.brats import find_cases, load_case
from training.evaluate import EvaluationError, predict_case

logger = logging.getLogger(__name__)

CSF_FRACTION = 0.10
TUMOUR_LABELS = {"necrosis": 1, "oedema": 2, "enhancing": 4}
PERCENTILES = (0.5, 50.0, 99.5)


def tissue_classes(
    mask: np.ndarray, seg: np.ndarray | None, t2: np.ndarray | None, *, whole_tumour_only: bool = False
) -> dict[str, np.ndarray]:
    """Bool masks of healthy brain, CSF (brightest non-tumour T2, see module docstring) and tumour labels.

    ``whole_tumour_only``: ``seg`` came from a binary whole-tumour mask, so its label is not oedema.
    """
    non_tumour = mask & (seg == 0) if seg is not None else mask.copy()
    if t2 is None:
        classes = {"brain": non_tumour}
    else:
        csf = non_tumour & (t2 > np.percentile(t2[non_tumour], 100 * (1 - CSF_FRACTION)))
        classes = {"brain": non_tumour & ~csf, "CSF": csf}
    if seg is not None and whole_tumour_only:
        classes["tumour"] = mask & (seg > 0)
    elif seg is not None:
        classes |= {name: mask & (seg == label) for name, label in TUMOUR_LABELS.items()}
    return {name: region for name, region in classes.items() if region.any()}


def affine_oracle(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``a * pred + b`` with (a, b) the least-squares fit to ``truth`` inside ``mask``; zero outside."""
    slope, intercept = np.polyfit(pred[mask], truth[mask], 1)
    return np.where(mask, slope * pred + intercept, 0.0)


def histogram_oracle(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``pred`` with its brain voxels replaced, rank for rank, by the truth's sorted brain values."""
    matched = np.zeros_like(truth)
    values = np.empty(int(mask.sum()))
    values[np.argsort(pred[mask], kind="stable")] = np.sort(truth[mask])
    matched[mask] = values
    return matched


def _scores(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray, *, rescale: bool = False) -> tuple[float, float]:
    """In-brain PSNR/SSIM against a brain-scaled truth; ``rescale``: scale ``pred`` by its own percentiles first."""
    pred = brain_scaled(pred, mask) if rescale else np.asarray(pred, dtype=np.float64)
    return psnr(pred, truth, data_range=1.0, mask=mask), ssim(pred, truth, data_range=1.0, mask=mask)


def _corr(pred: np.ndarray, truth: np.ndarray, region: np.ndarray) -> float:
    return float(np.corrcoef(pred[region], truth[region])[0, 1]) if region.sum() > 2 else math.nan


@dataclass
class Diagnosis:
    """Numbers for one model, case and target; ``quartiles[class] = (pred q25, q50, q75, truth q25, q50, q75)``."""

    model: str
    case: str
    target: str
    numbers: dict[str, float] = field(default_factory=dict)
    quartiles: dict[str, tuple[float, ...]] = field(default_factory=dict)
    # kept for the figure
    pred_b: np.ndarray | None = None
    truth_b: np.ndarray | None = None
    classes: dict[str, np.ndarray] | None = None


def diagnose_case(model: LoadedModel, case: CaseFiles, batch_size: int = 4) -> list[Diagnosis]:
    """Diagnose every target of ``model`` on ``case``."""
    manifest = model.manifest
    prediction = predict_case(model, case, batch_size)
    loaded, mask, seg = prediction.loaded, prediction.mask, prediction.loaded.seg
    t2 = loaded.images.get(Modality.T2)
    if t2 is None and Modality.T2 in case.files:
        t2 = load_case(case, [Modality.T2], load_seg=False).images[Modality.T2]
    classes = tissue_classes(mask, seg, t2, whole_tumour_only=case.whole_tumour_only)
    tumour = mask & (seg > 0) if seg is not None else np.zeros_like(mask)
    healthy = mask & ~tumour
    results = []
    for channel, target in enumerate(manifest.dst):
        y, truth_raw = prediction.y[channel], loaded.images[target]
        pred_b, truth_b = brain_scaled(y, mask), brain_scaled(truth_raw, mask)
        n: dict[str, float] = {}
        n["psnr_brain"], n["ssim_brain"] = _scores(pred_b, truth_b, mask)  # = synnet.metrics.evaluate's in-brain
        n["psnr_affine"], n["ssim_affine"] = _scores(affine_oracle(pred_b, truth_b, mask), truth_b, mask)
        n["psnr_histmatch"], n["ssim_histmatch"] = _scores(histogram_oracle(pred_b, truth_b, mask), truth_b, mask)
        n["psnr_no_rescale"], n["ssim_no_rescale"] = _scores(y, truth_b, mask)
        n["corr_tumour"], n["corr_healthy"] = _corr(pred_b, truth_b, tumour), _corr(pred_b, truth_b, healthy)
        for q, pv, tv in zip(
            PERCENTILES, np.percentile(y[mask], PERCENTILES), np.percentile(truth_b[mask], PERCENTILES), strict=True
        ):
            n[f"pred_model_p{q:g}"], n[f"truth_model_p{q:g}"] = float(pv), float(tv)
        n["pred_at_0"], n["pred_at_1"] = float(np.mean(y[mask] <= 0.0)), float(np.mean(y[mask] >= 1.0))
        n["truth_zero_in_mask"] = float(np.mean(truth_raw[mask] == 0))
        case_range = intensity_range(truth_raw, mask, manifest.normalization)
        n["truth_lo_raw"], n["truth_hi_raw"] = case_range.lo, case_range.hi
        reference = manifest.output_reference[target]
        n["ref_lo_raw"], n["ref_hi_raw"] = reference.lo, reference.hi
        raw = denormalize(y, mask, reference)
        n["denorm_max_diff"] = float(np.abs(brain_scaled(raw, mask) - pred_b)[mask].max())
        # calibration: blurred truths (3D, and in-plane only) and gamma 0.7 (on raw units, and on the scaled truth)
        for name, sigma in (("blur2", 2.0), ("blur2_2d", (2.0, 2.0, 0.0))):
            n[f"psnr_{name}"], n[f"ssim_{name}"] = _scores(
                gaussian_filter(truth_raw, sigma), truth_b, mask, rescale=True
            )
        gamma_raw = np.maximum(truth_raw, 0.0) ** 0.7
        n["psnr_gamma07"], n["ssim_gamma07"] = _scores(gamma_raw, truth_b, mask, rescale=True)
        n["psnr_gamma07_scaled"], n["ssim_gamma07_scaled"] = _scores(truth_b**0.7, truth_b, mask)
        n |= brasyn_scores(y, truth_raw, seg)
        quartiles = {
            name: (*np.percentile(pred_b[region], (25, 50, 75)), *np.percentile(truth_b[region], (25, 50, 75)))
            for name, region in classes.items()
        }
        results.append(Diagnosis(manifest.name, case.case_id, target.value, n, quartiles, pred_b, truth_b, classes))
    return results


def target_scales(data: Path, src: tuple[Modality, ...], dst: Modality) -> list[dict[str, float | str]]:
    """Per case with a seg: the target's and sources' healthy median in model space and p99.5 / healthy median."""
    rows: list[dict[str, float | str]] = []
    for case in find_cases(data):
        if case.seg is None or case.lacks((*src, dst)):
            continue
        loaded = load_case(case, (*src, dst))
        mask = brain_mask([loaded.images[m] for m in src])
        healthy = mask & (loaded.seg == 0)
        row: dict[str, float | str] = {"case": case.case_id}
        for modality in (*src, dst):
            image = loaded.images[modality]
            value_range = intensity_range(image, mask)
            median = float(np.median(image[healthy]))
            row[f"{modality.value}_healthy_model"] = (median - value_range.lo) / (value_range.hi - value_range.lo)
            row[f"{modality.value}_hi_over_healthy"] = value_range.hi / median
        row["target_zero_in_mask"] = float(np.mean(loaded.images[dst][mask] == 0))
        rows.append(row)
    return rows


def figure(diagnosis: Diagnosis, path: Path, max_points: int = 20000) -> None:
    """Violins of predicted vs true brain-scaled intensity per class, and a 2D histogram inside the brain."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    assert diagnosis.pred_b is not None and diagnosis.truth_b is not None and diagnosis.classes is not None
    rng = np.random.default_rng(0)
    names = list(diagnosis.classes)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [1.6, 1]})
    for i, name in enumerate(names):
        region = np.flatnonzero(diagnosis.classes[name])
        pick = rng.choice(region, size=min(max_points, region.size), replace=False)
        for offset, volume, colour in ((-0.2, diagnosis.pred_b, "tab:orange"), (0.2, diagnosis.truth_b, "tab:blue")):
            parts = left.violinplot(volume.ravel()[pick], positions=[i + offset], widths=0.36, showmedians=True)
            for body in parts["bodies"]:  # type: ignore[union-attr]
                body.set_facecolor(colour)
                body.set_alpha(0.6)
            for line in ("cbars", "cmins", "cmaxes", "cmedians"):
                parts[line].set_color(colour)
    left.set_xticks(range(len(names)), [f"{n}\n({diagnosis.classes[n].sum()} vox)" for n in names], fontsize=8)
    left.set_ylabel("brain-scaled intensity")
    left.legend(
        [plt.Rectangle((0, 0), 1, 1, color=c, alpha=0.6) for c in ("tab:orange", "tab:blue")],
        ["synthesized", "true"],
        loc="upper left",
        fontsize=8,
    )
    left.set_title(f"{diagnosis.target} per tissue class (CSF: brightest {CSF_FRACTION:.0%} of healthy T2)", fontsize=9)
    brain = np.zeros(diagnosis.truth_b.shape, dtype=bool)
    for region in diagnosis.classes.values():
        brain |= region
    counts, _, _ = np.histogram2d(diagnosis.truth_b[brain], diagnosis.pred_b[brain], bins=100, range=[[0, 1], [0, 1]])
    right.imshow(
        np.log1p(counts.T), origin="lower", extent=(0, 1, 0, 1), cmap="viridis", aspect="equal", interpolation="nearest"
    )
    right.plot([0, 1], [0, 1], color="white", lw=0.8, ls="--")
    right.set_xlabel(f"true {diagnosis.target}")
    right.set_ylabel(f"synthesized {diagnosis.target}")
    n = diagnosis.numbers
    right.set_title(
        f"in brain: {n['psnr_brain']:.1f} dB; affine {n['psnr_affine']:.1f}, hist-matched {n['psnr_histmatch']:.1f}",
        fontsize=9,
    )
    fig.suptitle(f"{diagnosis.model} on {diagnosis.case} (held out): log voxel counts right", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def markdown(results: list[Diagnosis]) -> str:
    """Every number, one row each and one column per case and target; then the class quartiles."""
    header = [f"{d.case} {d.target}" for d in results]
    lines = ["| " + " | ".join(["number", *header]) + " |", "|" + " --- |" * (1 + len(results))]
    for key in results[0].numbers:
        lines.append(f"| {key} | " + " | ".join(f"{d.numbers.get(key, math.nan):.4g}" for d in results) + " |")
    lines += [
        "",
        "| case | target | class | pred median [IQR] | truth median [IQR] |",
        "| --- | --- | --- | --- | --- |",
    ]
    for d in results:
        for name, (p25, p50, p75, t25, t50, t75) in d.quartiles.items():
            pred, truth = f"{p50:.3f} [{p25:.3f}-{p75:.3f}]", f"{t50:.3f} [{t25:.3f}-{t75:.3f}]"
            lines.append(f"| {d.case} | {d.target} | {name} | {pred} | {truth} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="BraTS-layout folder")
    parser.add_argument("--store", type=Path, default=Path("model_store"))
    parser.add_argument("--model", required=True)
    parser.add_argument("--case", required=True, help="case id, or several separated by commas")
    parser.add_argument("--out", type=Path, help="figure path (first case, first target)")
    parser.add_argument("--scales", action="store_true", help="also the target-scale table over all cases")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(min(torch.get_num_threads(), 2))
    model = ModelStore.load(args.store, "cpu", names=[args.model]).get(args.model)
    available = {case.case_id: case for case in find_cases(args.data)}
    wanted = args.case.split(",")
    absent = [case_id for case_id in wanted if case_id not in available]
    if absent:
        raise EvaluationError(f"cases {', '.join(absent)} are not in {args.data}", code="missing_case")
    results: list[Diagnosis] = []
    for case_id in wanted:
        for d in diagnose_case(model, available[case_id]):
            if results:  # only the figure's volumes are kept: a case's arrays take ~0.3 GB
                d.pred_b = d.truth_b = d.classes = None
            results.append(d)
    print(markdown(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        figure(results[0], args.out)
    if args.scales:
        rows = target_scales(args.data, tuple(model.manifest.src), model.manifest.dst[0])
        print("| " + " | ".join(rows[0]) + " |\n|" + " --- |" * len(rows[0]))
        for row in rows:
            print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else v for v in row.values()) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
