"""The output calibration: the map the model file applies, the rule that adopts it, and the re-export."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from synnet.evaluation import EVALUATION_FILE
from synnet.inference import synthesize
from synnet.manifest import ModelManifest
from synnet.modalities import Modality
from synnet.normalization import brain_mask
from synnet.store import load_model
from training.calibrate import main
from training.data.brats import find_cases, load_case
from training.export import export_torchscript
from training.models import create_model
from training.models.output_calibration import CalibratedAnyToAny, CalibratedDedicated, QuantileMap, availability_rows
from training.output_check import SSIM_TOLERANCE, TUMOUR_SSIM, Check
from unified_model import UNIFIED_NAME, fit_unified

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


def random_map(rows: int, channels: int, knots: int = 9, seed: int = 0) -> QuantileMap:
    generator = torch.Generator().manual_seed(seed)
    knots_in = torch.rand(rows, channels, knots, generator=generator).add(0.05).cumsum(dim=2) / knots
    knots_out = torch.rand(rows, channels, knots, generator=generator).cumsum(dim=2) / knots
    active = torch.rand(rows, channels, generator=generator) > 0.4
    return QuantileMap(knots_in, knots_out, active)


def test_the_map_interpolates_between_knots_is_flat_beyond_them_and_skips_inactive_channels() -> None:
    mapping = random_map(3, 2)
    y = torch.rand(4, 2, 6, 5) * 1.6 - 0.3  # reaches past both ends of every map
    rows = torch.tensor([0, 2, 1, 2])
    out = mapping(y, rows)
    for b, row in enumerate(rows.tolist()):
        for c in range(2):
            if mapping.active[row, c]:
                expected = np.interp(
                    y[b, c].numpy(), mapping.knots_in[row, c].numpy(), mapping.knots_out[row, c].numpy()
                )
                np.testing.assert_allclose(out[b, c].numpy(), expected, atol=1e-6)
            else:
                assert torch.equal(out[b, c], y[b, c])


def test_the_map_refuses_knots_that_would_reorder_intensities() -> None:
    rising = torch.linspace(0, 1, 5).repeat(1, 1, 1)
    with pytest.raises(ValueError, match="rise strictly"):
        QuantileMap(rising.flip(2), rising, torch.ones(1, 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="must not fall"):
        QuantileMap(rising, rising.flip(2), torch.ones(1, 1, dtype=torch.bool))


def test_the_availability_code_names_the_source_set() -> None:
    present = torch.tensor([[1.0, 0, 0, 0], [0, 1, 1, 0], [1, 1, 1, 1], [0, 0, 0, 1]])
    assert availability_rows(present).tolist() == [1, 6, 15, 8]


def test_calibrated_networks_export_and_verify_like_any_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    unified = CalibratedAnyToAny(create_model("unified", 4, 4, features=4, depth=2).eval(), random_map(16, 4))
    present = torch.tensor([[1.0, 0, 0, 0], [0, 1, 1, 0]])
    x = torch.rand(2, 4, 16, 16) * present[:, :, None, None]
    reloaded = export_torchscript(unified, (x, present), tmp_path / "unified.pt")
    with torch.no_grad():  # a (4,) availability vector is broadcast, as the bare network does
        one = reloaded(x[:1], present[0])
        assert torch.allclose(one, reloaded(x[:1], present[:1]))
    dedicated = CalibratedDedicated(create_model("synnet", 2, 1, features=4, depth=2).eval(), random_map(1, 1, seed=1))
    export_torchscript(dedicated, torch.rand(2, 2, 16, 16), tmp_path / "dedicated.pt")


@pytest.mark.parametrize(
    ("after_psnr", "after_ssim", "after_tumour", "adopted"),
    [
        (12.0, 0.50, 0.70, True),
        (12.0, 0.50 - SSIM_TOLERANCE + 0.001, 0.70, True),
        (12.0, 0.45, 0.70, False),  # the brain's structure suffered
        (12.0, 0.50, 0.65, False),  # the tumour's did
        (9.9, 0.60, 0.80, False),  # no PSNR gain
    ],
)
def test_the_rule_wants_more_psnr_and_at_most_a_small_ssim_loss_in_the_brain_and_the_tumour(
    after_psnr: float, after_ssim: float, after_tumour: float, adopted: bool
) -> None:
    partial = {"psnr_brain": 10.0, "ssim_brain": 0.5}  # a case without segmentation: no tumour score
    check = Check(
        before=[{"psnr_brain": 10.0, "ssim_brain": 0.5, TUMOUR_SSIM: 0.7}, partial],
        after=[{"psnr_brain": after_psnr, "ssim_brain": after_ssim, TUMOUR_SSIM: after_tumour}, partial],
    )
    record = check.record(((Modality.T1,), Modality.FLAIR))
    assert record.adopted is adopted and record.check_cases == 2
    assert record.ssim_tumour_before == 0.7 and record.ssim_tumour_after == after_tumour  # one case had it


@pytest.mark.slow
def test_calibrate_rebuilds_the_model_with_its_adopted_maps_and_records_every_check(
    tmp_path: Path, write_cases: Callable[..., Path]
) -> None:
    data = write_cases(tmp_path / "data", n_cases=6)
    store = tmp_path / "store"
    raw_folder = fit_unified(data, store, tmp_path / "run")
    raw_copy = tmp_path / "raw"
    shutil.copytree(raw_folder, raw_copy / UNIFIED_NAME)
    (raw_folder / EVALUATION_FILE).write_text("{}")  # stale after calibration: must go

    assert main(["--model", UNIFIED_NAME, "--data", str(data), "--store", str(store)]) == 0

    manifest = ModelManifest.load(raw_folder)
    calibration = manifest.output_calibration
    assert calibration is not None and not (raw_folder / EVALUATION_FILE).exists()
    train = set(manifest.training_data.train_cases)
    assert set(calibration.fit_cases) | set(calibration.check_cases) == train
    assert not set(calibration.fit_cases) & set(calibration.check_cases)
    assert len(calibration.configurations) == 28  # every case has all four: every configuration is checked
    calibrated, raw = load_model(raw_folder, "cpu"), load_model(raw_copy / UNIFIED_NAME, "cpu")  # digests verified
    case = next(c for c in find_cases(data) if c.case_id in train)
    images = load_case(case, list(Modality), load_seg=False).images
    for check in calibration.configurations:
        given = {m: images[m] for m in check.sources}
        mask = brain_mask(list(given.values()))
        channel = manifest.dst.index(check.target)
        before = synthesize(raw.forward, given, mask, manifest)[0][channel][mask]
        after = synthesize(calibrated.forward, given, mask, manifest)[0][channel][mask]
        if not check.adopted:
            np.testing.assert_array_equal(after, before)
        else:  # a monotone map of the same output: the order of intensities is kept
            order = np.argsort(before, kind="stable")
            assert np.all(np.diff(after[order]) >= -1e-6)
    assert main(["--model", UNIFIED_NAME, "--data", str(data), "--store", str(store)]) == 2  # never twice
