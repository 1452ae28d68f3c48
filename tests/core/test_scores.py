"""The one PSNR/SSIM record: its JSON form, and reading it back (service answers, evaluation.json)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from synnet.evaluation import EVALUATION_FILE, EvaluationRecord
from synnet.scores import MetricReport, Scores, TargetMetrics

BUNDLED = Path(__file__).resolve().parents[2] / "model_store"


def test_identical_images_are_null_in_json_and_infinite_again_when_read_back() -> None:
    report = MetricReport(psnr=math.inf, ssim=1.0, psnr_brain=math.inf, ssim_brain=float("nan"))
    payload = report.model_dump(mode="json")
    assert payload == {"psnr": None, "ssim": 1.0, "psnr_brain": None, "ssim_brain": None, "identical": True}
    back = MetricReport.model_validate_json(json.dumps(payload, allow_nan=False))
    assert back.psnr == back.psnr_brain == math.inf and back.identical
    assert math.isnan(back.ssim_brain)  # null without identical: not measured, not infinite
    assert back == report


def test_a_null_psnr_of_different_images_reads_back_as_nan() -> None:
    back = MetricReport.model_validate({"psnr": None, "ssim": 0.5, "psnr_brain": 20.0, "ssim_brain": 0.4,
                                        "identical": False})  # fmt: skip
    assert math.isnan(back.psnr) and not back.identical


def test_a_finite_report_round_trips_equal() -> None:
    report = MetricReport(psnr=25.123457, ssim=0.912, psnr_brain=14.75, ssim_brain=0.5268)
    assert MetricReport.model_validate_json(report.model_dump_json()) == report
    assert MetricReport.model_validate(report.model_dump(mode="json")) == report


def test_every_record_has_the_four_scores_of_one_definition() -> None:
    four = ["psnr", "ssim", "psnr_brain", "ssim_brain"]
    assert list(Scores.model_fields) == four
    assert list(MetricReport.model_fields) == four
    assert list(TargetMetrics.model_fields)[:4] == four and len(TargetMetrics.model_fields) == 8


def test_the_response_schema_lists_every_field_as_sent() -> None:
    schema = MetricReport.model_json_schema(mode="serialization")
    assert schema["required"] == ["psnr", "ssim", "psnr_brain", "ssim_brain", "identical"]
    assert schema["properties"]["psnr"]["anyOf"] == [{"type": "number"}, {"type": "null"}]


def test_held_out_scores_carry_no_identical_flag_and_absent_ones_are_null() -> None:
    payload = TargetMetrics(psnr=21.5, ssim_brain=0.61).model_dump(mode="json")
    assert "identical" not in payload
    assert payload["psnr"] == 21.5 and payload["ssim"] is None and payload["ssim_brain_std"] is None


@pytest.mark.parametrize("folder", sorted(p.parent for p in BUNDLED.glob(f"*/{EVALUATION_FILE}")), ids=lambda p: p.name)
def test_bundled_evaluation_files_load_and_dump_back_unchanged(folder: Path) -> None:
    stored = json.loads((folder / EVALUATION_FILE).read_text())
    record = EvaluationRecord.load_if_present(folder)
    assert record is not None and (record.targets or record.configurations)  # dedicated: targets; unified: both
    dumped = record.model_dump(mode="json")
    assert dumped["targets"] == stored["targets"]
    assert dumped["configurations"] == stored.get("configurations", [])
