"""Checks on the real BraTS 2018 cases beside the checkout (``../shared/data/brats18``).

The project never depends on these files: every test here is skipped where they are absent (a
fresh machine), and ``SYNNET_BRATS_DIR`` points elsewhere. Where they exist, the loader, the
normalization and the metrics are held to real scanner data, not only to generated cases.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from synnet.manifest import ModelManifest
from synnet.metrics import psnr, ssim
from synnet.modalities import Modality
from synnet.normalization import brain_mask, normalize
from training.data.brats import find_cases, load_case, split_cases

REPO = Path(__file__).resolve().parents[2]
REAL = Path(os.environ.get("SYNNET_BRATS_DIR", REPO.parent / "shared" / "data" / "brats18"))

pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason=f"no real BraTS cases at {REAL}")

ALL = (Modality.T1, Modality.T1c, Modality.T2, Modality.FLAIR)


@pytest.fixture(scope="module")
def cases():
    return {case.case_id: case for case in find_cases(REAL)}


def test_every_case_has_four_modalities_and_a_segmentation(cases) -> None:
    assert len(cases) == 16
    for case in cases.values():
        assert case.lacks(ALL) == []
        assert case.seg is not None


def test_the_bundled_models_hold_out_the_split_the_loader_gives(cases) -> None:
    _, test = split_cases(sorted(cases), 4, seed=0)
    manifest = ModelManifest.load(REPO / "model_store" / "synnet_t1_to_t2")
    assert manifest.training_data.test_cases == test


def test_normalization_puts_differently_scaled_sites_on_one_scale(cases) -> None:
    """A 2013 case and a TCIA10 case scaled to 0-32767: raw T1 differs tenfold, model space does not."""
    medians, raw_tops = [], []
    for case_id in ("Brats18_2013_11_1", "Brats18_TCIA10_628_1"):
        loaded = load_case(cases[case_id], ALL)
        assert loaded.shape == (240, 240, 155)
        assert set(np.unique(loaded.seg)) <= {0, 1, 2, 4}
        mask = brain_mask(list(loaded.images.values()))
        normalized, value_range = normalize(loaded.images[Modality.T1], mask)
        raw_tops.append(value_range.hi)
        medians.append(float(np.median(normalized[mask])))
        assert normalized.min() == 0.0 and normalized.max() == 1.0
    assert max(raw_tops) / min(raw_tops) > 2.0
    assert abs(medians[0] - medians[1]) < 0.2


def test_metrics_agree_with_scikit_image_on_a_real_slice(cases) -> None:
    loaded = load_case(cases["Brats18_CBICA_ABM_1"], (Modality.T2,), load_seg=False)
    truth = loaded.images[Modality.T2][:, :, 77].astype(np.float64)
    rng = np.random.default_rng(0)
    pred = np.clip(truth + rng.normal(0, 0.05 * truth.max(), truth.shape), 0, None) * (truth > 0)
    data_range = float(truth.max() - truth.min())
    expected_ssim = structural_similarity(
        truth, pred, data_range=data_range, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert abs(ssim(pred, truth) - expected_ssim) < 1e-3
    assert abs(psnr(pred, truth) - peak_signal_noise_ratio(truth, pred, data_range=data_range)) < 1e-3


@pytest.mark.slow
def test_evaluation_reproduces_the_committed_per_case_scores(tmp_path: Path) -> None:
    """One model on one held-out case: the numbers behind its manifest come out again."""
    import csv

    from training.evaluate import run_evaluation

    committed = {
        (row["model"], row["case"], row["target"]): row
        for row in csv.DictReader((REPO / "docs" / "results" / "bundled" / "per_case.csv").open())
    }
    run_evaluation(
        REAL, REPO / "model_store", ["synnet_t1_to_t2"], tmp_path, cases=["Brats18_CBICA_ABM_1"], figures=False
    )
    (row,) = csv.DictReader((tmp_path / "per_case.csv").open())
    expected = committed[("synnet_t1_to_t2", "Brats18_CBICA_ABM_1", "T2")]
    for metric in ("psnr", "ssim", "psnr_brain", "ssim_brain", "psnr_wt", "ssim_et"):
        assert float(row[metric]) == pytest.approx(float(expected[metric]), abs=2e-4), metric
