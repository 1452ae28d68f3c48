"""``--extra-data`` for a dedicated model: the partial cases that hold its sources and targets train, the
others are left out, and a folder with none of them is an error naming what is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from synnet.dataset_layout import BRATS_2021
from synnet.modalities import Modality
from training.data.errors import DataError
from training.fitting.cli import build_parser, make_config
from training.fitting.data import prepare_data


def _partial(tiny_root: Path, extra: Path, case_id: str, modalities: tuple[Modality, ...]) -> None:
    """A case of ``tiny_root`` copied under a new id with only ``modalities``."""
    source = tiny_root / "Case0"
    (extra / case_id).mkdir(parents=True)
    for modality in modalities:
        shutil.copy(
            source / BRATS_2021.file_name("Case0", modality), extra / case_id / BRATS_2021.file_name(case_id, modality)
        )


def _config(tiny_root: Path, extra: Path, src: str, dst: str):
    argv = ["--src", src, "--dst", dst, "--data", str(tiny_root), "--extra-data", str(extra),
            "--val-cases", "0", "--test-cases", "1"]  # fmt: skip
    return make_config(vars(build_parser().parse_args(argv)))


def test_a_dedicated_model_trains_on_the_extra_cases_that_hold_its_modalities(tiny_root: Path, tmp_path: Path) -> None:
    _partial(tiny_root, tmp_path, "Extra_T1_FLAIR", (Modality.T1, Modality.FLAIR))
    _partial(tiny_root, tmp_path, "Extra_T1_T2", (Modality.T1, Modality.T2))
    data = prepare_data(_config(tiny_root, tmp_path, "T1", "FLAIR"))
    assert "Extra_T1_FLAIR" in data.split.train and "Extra_T1_T2" not in data.split.train
    assert all(case not in data.split.test for case in ("Extra_T1_FLAIR", "Extra_T1_T2"))
    trained = {case.case_id for case in data.train}
    assert "Extra_T1_FLAIR" in trained and len(trained) == 3  # two of --data (one is the test case) and one extra


def test_extra_data_without_the_models_modalities_is_an_error(tiny_root: Path, tmp_path: Path) -> None:
    _partial(tiny_root, tmp_path, "Extra_T1_FLAIR", (Modality.T1, Modality.FLAIR))
    with pytest.raises(DataError, match=r"no case in --extra-data .* has all of T1,T1c"):
        prepare_data(_config(tiny_root, tmp_path, "T1", "T1c"))


def test_an_extra_case_named_as_a_test_case_is_refused(tiny_root: Path, tmp_path: Path) -> None:
    """Even when --data lacks it: training on it would make its test scores not held out."""
    _partial(tiny_root, tmp_path, "Held_Out", (Modality.T1, Modality.FLAIR))
    argv = ["--src", "T1", "--dst", "FLAIR", "--data", str(tiny_root), "--extra-data", str(tmp_path),
            "--val-cases", "0", "--test-cases", "Case0,Held_Out"]  # fmt: skip
    with pytest.raises(DataError, match=r"repeats case ids .*Held_Out"):
        prepare_data(make_config(vars(build_parser().parse_args(argv))))


def test_training_cases_the_tumour_weight_cannot_reach_are_named(tiny_root: Path, tmp_path: Path, caplog) -> None:
    """A case without _seg or _wholetumour trains with weight 1 in its tumour: the fit says which ones."""
    import nibabel as nib
    import numpy as np

    _partial(tiny_root, tmp_path, "Extra_Masked", (Modality.T1, Modality.FLAIR))
    t1 = nib.load(tmp_path / "Extra_Masked" / BRATS_2021.file_name("Extra_Masked", Modality.T1))
    lesion = (np.asarray(t1.dataobj) > np.percentile(np.asarray(t1.dataobj), 95)).astype(np.uint8)
    nib.save(nib.Nifti1Image(lesion, t1.affine), tmp_path / "Extra_Masked" / "Extra_Masked_wholetumour.nii.gz")
    argv = ["--src", "T1", "--dst", "FLAIR", "--data", str(tiny_root), "--extra-data", str(tmp_path),
            "--val-cases", "0", "--test-cases", "1", "--mask-loss", "--tumour-weight", "5"]  # fmt: skip
    with caplog.at_level("WARNING", logger="training.fitting.data"):
        data = prepare_data(make_config(vars(build_parser().parse_args(argv))))
    warnings = [r.getMessage() for r in caplog.records if "--tumour-weight does not apply" in r.getMessage()]
    unlabelled = sorted(case.case_id for case in data.train if not case.labels)
    assert len(unlabelled) == 2 and "Extra_Masked" not in unlabelled
    assert len(warnings) == 1 and "2 of 3" in warnings[0] and all(case in warnings[0] for case in unlabelled)
