"""The per-intensity lookup-table baseline, and an any-to-any model compared with it on every configuration."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from experiments.lookup_table.__main__ import main
from experiments.lookup_table.compare import LOOKUP_TABLE
from experiments.lookup_table.table import BINS_PER_SOURCE, LookupTableFit
from synnet.modalities import Modality
from synnet.normalization import NormalizationParams, brain_mask, normalize
from training.configurations import CONFIGURATIONS
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


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_the_model_and_the_table_are_scored_on_the_same_cases_and_compared(tiny_root: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_root, data)
    store = tmp_path / "store"
    fit_unified(data, store, tmp_path / "run")
    out = tmp_path / "report"
    argv = ["--data", str(data), "--store", str(store), "--cases", "Case2", "--out", str(out)]
    assert main(argv) == 0

    rows = list(csv.DictReader((out / "per_configuration.csv").open()))
    every = {(",".join(m.value for m in s), t.value) for s, t in CONFIGURATIONS}
    for model in (UNIFIED_NAME, LOOKUP_TABLE):
        mine = [r for r in rows if r["model"] == model]
        assert len(mine) == 28 and {(r["sources"], r["target"]) for r in mine} == every, model
        # BraSyn's whole-volume SSIM for the network only: the table is compared inside the brain
        assert all((r["psnr_brasyn"] != "") == (model == UNIFIED_NAME) for r in mine)
    report = (out / "configurations.md").read_text()
    assert "| lookup table: brain PSNR / SSIM | beats the table (SSIM) |" in report
    assert report.count(" yes |") + report.count(" no |") == 28

    def rewrite(kept: list[dict[str, str]]) -> list[dict[str, str]]:
        with (out / "per_configuration.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(kept)
        assert main(argv) == 0
        return list(csv.DictReader((out / "per_configuration.csv").open()))

    marked = [{**r, "seconds": "7"} if r["model"] == LOOKUP_TABLE else r for r in rows]
    again = rewrite(marked)  # the model's rows are there: the table's are kept as they are
    assert {float(r["seconds"]) for r in again if r["model"] == LOOKUP_TABLE} == {7.0}
    again = rewrite([r for r in marked if r["model"] != UNIFIED_NAME])  # scored again: the table's rows with it
    assert len(again) == len(rows) and {float(r["seconds"]) for r in again if r["model"] == LOOKUP_TABLE} == {0.0}
