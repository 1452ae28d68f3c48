"""How the store serves a model: TorchScript or the exported program, compiled or not, fp32 or bf16 (and when not)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from float_tolerance import assert_close_to_scale
from synnet.compiled import WARMUP_SHAPES
from synnet.evaluation import EvaluationRecord, PrecisionCheck, PrecisionCost
from synnet.manifest import ModelManifest
from synnet.modalities import Modality
from synnet.precision import BF16_MAX_PSNR_LOSS_DB, BF16_MAX_SSIM_LOSS, PrecisionError, check_precision, cpu_bf16_units
from synnet.store import ModelStore, StoreError, check_serving, load_model
from training.export import example_input, write_model
from training.models import create_model, model_config

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
CPU = torch.device("cpu")
NATIVE_BF16 = bool(cpu_bf16_units())


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny T1 → T2 SynNet, exported with its program."""
    root = tmp_path_factory.mktemp("modes")
    torch.manual_seed(0)
    hyper = {"features": 4, "depth": 2}
    write_model(
        root, "tiny", create_model("synnet", 1, 1, **hyper), example_input(1, 24), src=["T1"], dst=["T2"],
        architecture={"name": "synnet", "params": model_config("synnet", 1, 1, **hyper)}, loss={"name": "l2"},
        input={"multiple_of": 4, "min_size": 16}, output_reference={"T2": {"lo": 0.0, "hi": 1.0}},
        training_data={"source": "generated", "n_cases": 0},
    )  # fmt: skip
    return root


def test_the_exported_program_serves_torchscript_s_voxels(store: Path) -> None:
    scripted, exported = (load_model(store / "tiny", CPU, model_format=f) for f in ("torchscript", "export"))
    assert (scripted.serving.model_format, exported.serving.model_format) == ("torchscript", "export")
    x = torch.rand(3, 1, 37, 53)  # channels_last on CPU, off the 4-pixel grid
    assert_close_to_scale(exported.forward(x), scripted.forward(x))


def test_a_model_without_a_program_is_unavailable_for_the_export_format_and_says_how_to_add_one(
    store: Path, tmp_path: Path
) -> None:
    older = tmp_path / "older"
    shutil.copytree(store / "tiny", older / "tiny")
    (older / "tiny" / "model.pt2").unlink()
    manifest = ModelManifest.load(older / "tiny").model_copy(update={"exported_program": None})
    manifest.sealed(older / "tiny" / "model.pt").save(older / "tiny")
    loaded = ModelStore.load(older, CPU, model_format="export")
    assert not loaded.models and "python -m training.export --programs" in loaded.unavailable[0].reason
    assert ModelStore.load(older, CPU).models  # TorchScript still serves it


def test_settings_no_model_could_serve_with_are_refused_by_name(store: Path) -> None:
    with pytest.raises(StoreError, match=r"torch\.compile cannot trace TorchScript") as compiled:
        check_serving(CPU, "torchscript", "fp32", True)
    with pytest.raises(StoreError, match="'onnx' is not one of torchscript, export") as unknown:
        check_serving(CPU, "onnx", "fp32", False)
    with pytest.raises(StoreError, match="bf16 serves from the exported programs"):
        check_serving(CPU, "torchscript", "bf16", False)
    with pytest.raises(StoreError, match=r"asked to compile nope, which the store .* does not hold; it holds tiny"):
        check_serving(CPU, "export", "fp32", ["tiny", "nope"], store=store)
    assert compiled.value.code == unknown.value.code == "bad_setting"
    check_serving(CPU, "export", "fp32", ["tiny"], store=store)


def test_bf16_is_refused_where_onednn_may_not_use_the_cpu_s_bf16_units(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    with pytest.raises(PrecisionError, match="cannot compute it natively") as refused:
        check_precision("bf16", CPU)
    assert refused.value.code == "bad_precision" and "SYNNET_PRECISION=fp32" in str(refused.value)
    check_precision("fp32", CPU)  # fp32 is always served


def test_the_service_does_not_start_in_bf16_without_native_bf16(store: Path) -> None:
    env = {**os.environ, "SYNNET_PRECISION": "bf16", "SYNNET_MODEL_FORMAT": "export", "ONEDNN_MAX_CPU_ISA": "AVX2",
           "SYNNET_MODEL_STORE": str(store)}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "service", "--port", "0"], env=env, capture_output=True, timeout=120)
    assert done.returncode == 2, done.stderr.decode()[-500:]
    assert "bf16 was asked for but this CPU" in done.stderr.decode() and "AVX512-BF16" in done.stderr.decode()


def bf16_cost(psnr_loss: float, ssim_loss: float, sha256: str) -> PrecisionCost:
    check = PrecisionCheck(
        src=[Modality.T1], target=Modality.T2, psnr_brain_fp32=20.0, psnr_brain_bf16=20.0 - psnr_loss,
        ssim_brain_fp32=0.6, ssim_brain_bf16=0.6 - ssim_loss, psnr_brain_loss=psnr_loss, ssim_brain_loss=ssim_loss,
        worst_case_psnr_brain_loss=psnr_loss, worst_case_ssim_brain_loss=ssim_loss,
    )  # fmt: skip
    return PrecisionCost(cases=["a/b"], cpu="test", torch=torch.__version__, sha256=sha256, command="test",
                         configurations=[check])  # fmt: skip


@pytest.mark.skipif(not NATIVE_BF16, reason="this CPU has neither AVX512-BF16 nor AMX")
@pytest.mark.parametrize(
    ("psnr_loss", "ssim_loss", "same_export", "served", "why"),
    [
        (0.01, 0.0005, True, "bf16", None),
        (BF16_MAX_PSNR_LOSS_DB + 0.01, 0.0, True, "fp32", "costs it"),
        (0.0, BF16_MAX_SSIM_LOSS + 0.001, True, "fp32", "costs it"),
        (0.0, 0.0, False, "fp32", "another export"),
        (None, None, True, "fp32", "no bf16 quality cost recorded"),
    ],
)
def test_a_model_serves_bf16_only_where_its_recorded_cost_allows(
    store: Path, tmp_path: Path, psnr_loss: float | None, ssim_loss: float | None, same_export: bool, served: str,
    why: str | None,
) -> None:  # fmt: skip
    folder = tmp_path / "tiny"
    shutil.copytree(store / "tiny", folder)
    if psnr_loss is not None:
        sha256 = ModelManifest.load(folder).sha256 if same_export else "0" * 64
        EvaluationRecord(bf16=bf16_cost(psnr_loss, ssim_loss, sha256)).save(folder)
    model = load_model(folder, CPU, model_format="export", precision="bf16")
    fp32 = load_model(folder, CPU, model_format="export")
    assert model.serving.precision == served
    assert (why is None) == (not model.serving.notes) and (why is None or why in model.serving.notes[0])
    x = torch.rand(2, 1, 32, 48)
    difference = float((model.forward(x) - fp32.forward(x)).abs().max())
    assert (difference > 0) == (served == "bf16")  # bf16 changes the outputs; a refused model's are fp32's


def test_a_compiled_program_serves_torchscript_s_outputs_over_a_mixed_run_without_recompiling(store: Path) -> None:
    """Warm-up compiles at load; chunks of 1 to 4 slices and brain boxes of any size on the grid reuse its graphs."""
    scripted = load_model(store / "tiny", CPU)
    compiled = load_model(store / "tiny", CPU, model_format="export", compile=True)
    report = compiled.serving.compiled
    assert report is not None and report.seconds > 0, compiled.serving.notes
    assert report.warmup_graphs == len(WARMUP_SHAPES)
    for batch, height, width in [(4, 144, 192), (3, 144, 192), (1, 160, 176), (2, 48, 64), (4, 240, 240), (1, 32, 32)]:
        x = torch.rand(batch, 1, height, width)
        torch.testing.assert_close(compiled.forward(x), scripted.forward(x), rtol=0, atol=1e-4)
    assert report.recompilations == 0
