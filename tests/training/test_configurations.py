"""``training.evaluate --all-configurations`` on a tiny unified model, and the scores it computes."""

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
from training.configurations import CONFIGURATIONS
from training.evaluate import main
from unified_model import UNIFIED_NAME, fit_unified

T1, T1c, T2, FLAIR = Modality.T1, Modality.T1c, Modality.T2, Modality.FLAIR


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
def test_every_configuration_is_scored_and_recorded_for_routing(
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
    assert {r["model"] for r in rows} == {UNIFIED_NAME} and len(rows) == 28 * n_cases
    assert {(r["sources"], r["target"]) for r in rows} == {
        (",".join(m.value for m in s), t.value) for s, t in CONFIGURATIONS
    }
    assert all(math.isfinite(float(r["ssim_brain"])) and r["psnr_brasyn"] != "" for r in rows)
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

    # a changed model: its rows of one case are deleted, so that case alone is scored again; another model's rows
    # in the same file are kept as they are
    kept = [r for r in rows if r["case"] != "Other0"]
    other = {**rows[0], "model": "another_model", "ssim_brain": "0.123"}
    with (out / UNIFIED_NAME / "per_configuration.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows([*kept, other])
    assert main(argv) == 0
    again = list(csv.DictReader((out / UNIFIED_NAME / "per_configuration.csv").open()))
    key = ("model", "dataset", "case", "sources", "target")
    assert sorted(tuple(r[k] for k in key) for r in again if r["model"] == UNIFIED_NAME) == sorted(
        tuple(r[k] for k in key) for r in rows
    )
    assert [float(r["ssim_brain"]) for r in again if r["model"] == "another_model"] == [0.123]
