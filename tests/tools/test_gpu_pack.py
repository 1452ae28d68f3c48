"""synnet_tools.gpu_pack: a packed and unpacked case normalizes to within one 7-bit step of the original."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synnet.modalities import Modality
from synnet.normalization import brain_mask, normalize
from synnet_tools.gpu_pack import LEVELS, main
from training.data.brats import find_cases, load_case


def test_pack_round_trip_keeps_model_space_within_one_step(phantom_root: Path, tmp_path: Path) -> None:
    case = find_cases(phantom_root)[0]
    packed = tmp_path / "cases.pack"
    assert main(["pack", "--data", str(phantom_root), "--cases", case.case_id, "--out", str(packed)]) == 0
    assert main(["unpack", str(packed), "--out", str(tmp_path / "out")]) == 0
    modalities = [Modality.T1, Modality.T2, Modality.FLAIR, Modality.T1c]
    original = load_case(case, modalities, load_seg=False)
    copy = load_case(find_cases(tmp_path / "out")[0], modalities, load_seg=False)
    mask = brain_mask(list(original.images.values()))
    assert np.array_equal(mask, brain_mask(list(copy.images.values())))
    np.testing.assert_allclose(copy.affine, original.affine)
    for modality in modalities:
        before, range_before = normalize(original.images[modality], mask)
        after, range_after = normalize(copy.images[modality], mask)
        step = 1.0 / LEVELS
        assert abs(range_after.hi - range_before.hi) <= step * (range_before.hi - range_before.lo)
        assert float(np.abs(after - before)[mask].max()) <= 1.5 * step
    assert packed.stat().st_size < 0.5 * sum(p.stat().st_size for p in case.files.values())


def test_pack_names_missing_cases(phantom_root: Path, tmp_path: Path, capsys) -> None:
    assert main(["pack", "--data", str(phantom_root), "--cases", "nobody", "--out", str(tmp_path / "x")]) == 2
    assert "nobody" in capsys.readouterr().err
