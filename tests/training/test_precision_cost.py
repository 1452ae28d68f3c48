"""training.precision_cost: bf16 against fp32 on held-out cases, recorded where the store's bf16 rule reads it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from synnet.evaluation import EvaluationRecord
from synnet.manifest import ModelManifest
from synnet.modalities import Modality
from training.export import example_input, write_model
from training.models import create_model, model_config
from training.precision_cost import main

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


def test_the_cost_of_every_configuration_is_measured_on_the_test_cases_and_the_extra_ones_and_recorded(
    tiny_root: Path, write_cases, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    hyper = {"features": 4, "depth": 2}
    write_model(
        tmp_path / "store", "tiny", create_model("synnet", 2, 1, **hyper), example_input(2, 24), src=["T1", "T2"],
        dst=["FLAIR"], architecture={"name": "synnet", "params": model_config("synnet", 2, 1, **hyper)},
        loss={"name": "l2"}, input={"multiple_of": 4, "min_size": 16},
        output_reference={"FLAIR": {"lo": 0.0, "hi": 300.0}},
        training_data={"source": "generated", "n_cases": 3, "test_cases": ["Case0", "Case2"]},
    )  # fmt: skip
    EvaluationRecord(data={"cases": ["Case0", "Case2"]}).save(tmp_path / "store" / "tiny")
    also = write_cases(tmp_path / "also", n_cases=1)

    assert main(["--data", str(tiny_root), "--also", str(also), "--store", str(tmp_path / "store"), "--write"]) == 0

    record = EvaluationRecord.load_if_present(tmp_path / "store" / "tiny")
    assert record is not None and record.data == {"cases": ["Case0", "Case2"]}  # the held-out scores are kept
    cost = record.bf16
    assert cost is not None and cost.sha256 == ModelManifest.load(tmp_path / "store" / "tiny").sha256
    assert cost.cases == [f"{tiny_root.name}/Case0", f"{tiny_root.name}/Case2", "also/Case0"]
    (check,) = cost.configurations
    assert (check.src, check.target) == ([Modality.T1, Modality.T2], Modality.FLAIR)
    assert check.psnr_brain_loss == pytest.approx(check.psnr_brain_fp32 - check.psnr_brain_bf16, abs=2e-4)
    assert check.worst_case_psnr_brain_loss >= check.psnr_brain_loss
    assert 0.0 < check.ssim_brain_fp32 <= 1.0 and 0.0 < check.ssim_brain_bf16 <= 1.0
