"""The lookup-table baseline, and ``training.evaluate --all-configurations`` on a tiny unified model."""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from synnet.evaluation import EvaluationRecord
from synnet.manifest import ModelManifest
from synnet.metrics import brain_scaled, brain_scores, psnr, ssim, ssim_window_box
from synnet.modalities import Modality
from synnet.normalization import NormalizationParams, brain_mask, normalize
from training.configurations import CONFIGURATIONS, LOOKUP_TABLE
from training.evaluate import main
from training.lookup_table import BINS_PER_SOURCE, LookupTableFit
from unified_model import UNIFIED_NAME, fit_unified

T1, T1c, T2, FLAIR = Modality.T1, Modality.T1c, Modality.T2, Modality.FLAIR


def ball_case(seed: int) -> dict[Modality, np.ndarray]:
    """A brain ball whose T2 is a known decreasing function of T1 and whose FLAIR is noise."""
    rng = np.random.default_rng(seed)
    x, y, z = np.mgrid[:24, :24, :16]
    brain = (x - 12) ** 2 + (y - 12) ** 2 + (z - 8) ** 2 < 70
    t1 = np.where(brain, 100 + 400 * rng.random(brain.shape), 0.0)
    t2 = np.where(brain, 900 - 1.5 * t1, 0.0)
    flair = np.where(brain, 50 + 200 * rng.random(brain.shape), 0.0)
    return {T1: t1, T2: t2, FLAIR: flair}


def test_the_table_learns_a_pure_intensity_mapping_and_skips_cases_without_the_modalities() -> None:
    params = NormalizationParams()
    fit = LookupTableFit([((T1,), T2), ((T1c,), T2)], params)
    for seed in range(3):
        fit.add_case(ball_case(seed))
    tables = fit.tables()
    assert set(tables) == {((T1,), T2)}  # no case has T1c
    case = ball_case(7)
    mask = brain_mask(case[T1])
    model_space = {m: normalize(image, mask, params)[0] for m, image in case.items()}
    guess = tables[((T1,), T2)].predict(model_space, mask)
    error = np.abs(guess - model_space[T2])[mask]
    # a decreasing linear map, learnt per bin: off by about a bin's width, never by the contrast
    assert np.median(error) < 2.0 / BINS_PER_SOURCE[1] and error.max() < 0.1
    assert np.all(guess[~mask] == 0)
    # noise as the target: the table can only learn its mean
    fit = LookupTableFit([((T1,), FLAIR)], params)
    fit.add_case(ball_case(0))
    flat = fit.tables()[((T1,), FLAIR)].predict(model_space, mask)
    assert np.corrcoef(flat[mask], normalize(case[FLAIR], mask, params)[0][mask])[0, 1] < 0.3


@pytest.mark.parametrize("depth", [16, 8])  # 8: thinner than the window, scored slice by slice
def test_brain_scores_on_the_brain_box_equal_the_whole_volume_ones(depth: int) -> None:
    rng = np.random.default_rng(1)
    x, y, _ = np.mgrid[:48, :40, :depth]
    mask = (x - 20) ** 2 + (y - 18) ** 2 < 80  # off centre: the box is cut on some sides only
    truth = np.where(mask, rng.random(mask.shape), 0.0)
    pred = np.where(mask, 0.7 * truth + 0.3 * rng.random(mask.shape), 0.0)
    pred_b, truth_b = brain_scaled(pred, mask), brain_scaled(truth, mask)  # the whole volume, uncropped
    boxed = brain_scores(pred, truth, mask)
    assert boxed["psnr_brain"] == pytest.approx(psnr(pred_b, truth_b, data_range=1.0, mask=mask), rel=1e-12)
    assert boxed["ssim_brain"] == pytest.approx(ssim(pred_b, truth_b, data_range=1.0, mask=mask), rel=1e-12)
    assert [s.stop - s.start for s in ssim_window_box(mask)] < list(mask.shape)  # it did crop


def test_the_28_single_target_configurations() -> None:
    assert len(CONFIGURATIONS) == 28 and len(set(CONFIGURATIONS)) == 28
    assert all(target not in sources and 1 <= len(sources) <= 3 for sources, target in CONFIGURATIONS)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_every_configuration_is_scored_beside_the_table_and_recorded_for_routing(
    tiny_root: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_root, data)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(tiny_root / "Case0", elsewhere / "Other0")  # a training case's images under another id
    for path in (elsewhere / "Other0").iterdir():
        path.rename(path.with_name(path.name.replace("Case0", "Other0")))
    store = tmp_path / "store"
    fit_unified(data, store, tmp_path / "run")
    manifest = ModelManifest.load(store / UNIFIED_NAME)
    test_cases = manifest.training_data.test_cases or ["Case2"]
    out = tmp_path / "report"
    argv = ["--data", str(data), "--store", str(store), "--models", UNIFIED_NAME, "--cases", ",".join(test_cases),
            "--also", str(elsewhere), "--out", str(out), "--all-configurations", "--write-evaluation", "--no-figures"]
    assert main(argv) == 0

    rows = list(csv.DictReader((out / UNIFIED_NAME / "per_configuration.csv").open()))
    n_cases = len(test_cases) + 1
    for model in (UNIFIED_NAME, LOOKUP_TABLE):
        mine = [r for r in rows if r["model"] == model]
        assert len(mine) == 28 * n_cases, model
        assert {(r["sources"], r["target"]) for r in mine} == {
            (",".join(m.value for m in s), t.value) for s, t in CONFIGURATIONS
        }
        assert all(math.isfinite(float(r["ssim_brain"])) for r in mine)
        # BraSyn's whole-volume SSIM for the network only: the table is compared inside the brain
        assert all((r["psnr_brasyn"] != "") == (model == UNIFIED_NAME) for r in mine)
    assert {r["dataset"] for r in rows} == {data.name, elsewhere.name}

    record = EvaluationRecord.load_if_present(store / UNIFIED_NAME)
    assert record is not None and len(record.configurations) == 28
    score = record.score([T1c], T2)
    assert score is not None and score.src == [T1c] and score.metrics.ssim_brain is not None
    assert record.data["cases"] == test_cases  # the validation subjects of the main dataset
    tested = record.test[elsewhere.name]  # every other dataset: test data, in both conventions
    assert tested.cases == ["Other0"] and len(tested.configurations) == 28
    scored = tested.metrics([T1c], T2)
    assert scored is not None and math.isfinite(scored.ssim_brain) and math.isfinite(scored.ssim_brasyn_rest)

    report = (out / UNIFIED_NAME / "configurations.md").read_text()
    assert f"## {data.name}" in report and f"## {elsewhere.name}" in report
    assert report.count("| T1c,T2,FLAIR | T1 |") == 2

    # a changed model: its rows of one case are deleted, so that case alone is scored again, the table's with it
    kept = [r for r in rows if not (r["model"] == UNIFIED_NAME and r["case"] == "Other0")]
    with (out / UNIFIED_NAME / "per_configuration.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)
    assert main(argv) == 0
    again = list(csv.DictReader((out / UNIFIED_NAME / "per_configuration.csv").open()))
    key = ("model", "dataset", "case", "sources", "target")
    assert sorted(tuple(r[k] for k in key) for r in again) == sorted(tuple(r[k] for k in key) for r in rows)
