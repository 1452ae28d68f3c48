"""End to end: tiny fits on generated phantoms → export → reload; resume; DDP; CLI errors.

Every fit here is tiny (8 features, depth 2, 48 px windows, a few steps) so the module runs in
well under a minute on two CPU cores; what is checked is plumbing and exactness, not quality.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from float_tolerance import assert_close_to_scale
from synnet.manifest import ModelManifest, model_digest
from training.checkpoint import BEST, LAST, load_checkpoint
from training.data.cache import cache_root
from training.data.dataset import TUMOUR
from training.data.streaming import StreamedSliceDataset
from training.export import model_from_checkpoint
from training.fitting.cli import build_parser, make_config
from training.fitting.config import FitConfig
from training.fitting.data import ensure_phantoms, phantom_root, prepare_data
from training.fitting.run import DIGEST_FILE, run

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")]

TINY = [
    "--src", "T1,T1c", "--dst", "T2",
    "--features", "8", "--depth", "2", "--slice-size", "48", "--batch-size", "4",
    "--steps-per-epoch", "3", "--val-max-slices", "4", "--val-cases", "1", "--test-cases", "1",
]  # fmt: skip
REPO = Path(__file__).resolve().parents[2]


def _config(tmp: Path, data: Path, *extra: str, run_dir: str = "run"):
    argv = [*TINY, "--data", str(data), "--out", str(tmp / "store"), "--run-dir", str(tmp / run_dir), *extra]
    return make_config(vars(build_parser().parse_args(argv)))


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def _cli(*argv: str, cwd: Path, launcher: tuple[str, ...] = (sys.executable, "-m")) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [*launcher, "training.fit", *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )


@pytest.fixture(scope="module")
def fitted(phantom_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    tmp = tmp_path_factory.mktemp("fit")
    config = _config(tmp, phantom_root, "--epochs", "2")
    return tmp, run(config)


def test_fit_exports_a_model_that_reproduces_eager(fitted) -> None:
    tmp, result = fitted
    folder = tmp / "store" / result.manifest.name
    checkpoint = load_checkpoint(result.run_dir / BEST)
    eager = model_from_checkpoint(checkpoint).eval()
    scripted = torch.jit.load(str(folder / "model.pt"))
    torch.manual_seed(0)
    for shape in ((2, 2, 240, 240), (1, 2, 37, 50)):
        x = torch.rand(shape)
        with torch.no_grad():
            assert_close_to_scale(scripted(x), eager(x))  # the same ops: no index flip


def test_manifest_records_the_run(fitted) -> None:
    tmp, result = fitted
    folder = tmp / "store" / "synnet_t1-t1c_to_t2"
    manifest = ModelManifest.load(folder)
    assert manifest == result.manifest
    assert manifest.sha256 == model_digest(folder / "model.pt", manifest)
    assert [m.value for m in manifest.src] == ["T1", "T1c"] and [m.value for m in manifest.dst] == ["T2"]
    assert manifest.architecture.name == "synnet" and manifest.architecture.params["features"] == 8
    assert manifest.loss.lambdas == {"wl2": 10.0, "wssim": 5.0, "tv": 0.5}
    assert (manifest.input.multiple_of, manifest.input.trained_slice_size) == (4, 48)
    data = manifest.training_data
    assert (data.n_cases, len(data.train_cases), len(data.val_cases), len(data.test_cases)) == (3, 1, 1, 1)
    assert not set(data.test_cases) & set(data.train_cases + data.val_cases)
    assert math.isfinite(manifest.validation["T2"].psnr) and 0 < manifest.validation["T2"].ssim <= 1
    reference = manifest.output_reference["T2"]
    assert reference.hi > reference.lo
    assert manifest.training["epochs_completed"] == 2 and manifest.training["optimizer"] == "sgd"
    assert {"torch", "python", "numpy"} <= set(manifest.frameworks)


def test_resume_reproduces_the_uninterrupted_run(fitted, phantom_root: Path) -> None:
    tmp, result = fitted
    run(_config(tmp, phantom_root, "--epochs", "1", "--no-export", run_dir="interrupted"))
    checkpoint = load_checkpoint(tmp / "interrupted" / LAST)
    resumed_config = make_config({"epochs": 2}, FitConfig.from_json(checkpoint["config"]))
    run(resumed_config, checkpoint)
    uninterrupted, resumed = _weights(result.run_dir / LAST), _weights(tmp / "interrupted" / LAST)
    assert uninterrupted.keys() == resumed.keys()
    assert all(torch.equal(uninterrupted[k], resumed[k]) for k in uninterrupted)


def test_test_cases_are_never_loaded(phantom_root: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, phantom_root).with_options(cache_dir=str(tmp_path / "cache"))
    data = prepare_data(config)
    decoded = [folder.name for folder in cache_root(tmp_path / "cache", phantom_root).iterdir() if folder.is_dir()]
    assert sorted(decoded) == sorted(data.split.train + data.split.val)
    assert data.split.test and not set(data.split.test) & set(decoded)


def test_phantoms_are_generated_once_and_cached(tmp_path: Path, monkeypatch) -> None:
    calls: list[int] = []

    def fake_write_cases(out_dir, n_cases, seed=0):
        calls.append(n_cases)
        return []

    monkeypatch.setattr("training.phantom.write_cases", fake_write_cases)
    config = make_config({"src": "T1", "dst": "T2", "phantom_dir": str(tmp_path), "phantom_cases": 2})
    assert ensure_phantoms(config.data, True, lambda: None) == phantom_root(config.data)
    ensure_phantoms(config.data, True, lambda: None)
    assert calls == [2]


def test_two_process_ddp_ends_with_identical_replicas(phantom_root: Path, tmp_path: Path) -> None:
    """Two gloo ranks on a cache neither finds ready: one prepares it, both stream from it, replicas agree."""
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    args = [*TINY, "--data", str(phantom_root), "--out", "store", "--run-dir", "run", "--epochs", "1"]
    args += ["--cache-dir", str(tmp_path / "cache")]
    done = _cli(*args, cwd=tmp_path, launcher=(torchrun, "--standalone", "--nproc_per_node=2", "-m"))
    assert done.returncode == 0, done.stderr[-2000:]
    entries = sorted(p.name for p in cache_root(tmp_path / "cache", phantom_root).iterdir() if p.is_dir())
    manifest = ModelManifest.load(tmp_path / "store" / "synnet_t1-t1c_to_t2")
    assert entries == sorted(manifest.training_data.train_cases + manifest.training_data.val_cases)
    digests = json.loads((tmp_path / "run" / DIGEST_FILE).read_text())
    assert len(digests) == 2 and digests[0] == digests[1]
    assert (tmp_path / "store" / "synnet_t1-t1c_to_t2" / "model.pt").is_file()
    assert load_checkpoint(tmp_path / "run" / LAST)["meta"]["manifest"]["training"]["world_size"] == 2


def _broken_copy(tiny_root: Path, tmp_path: Path, how: str) -> Path:
    root = tmp_path / how
    shutil.copytree(tiny_root, root)
    for t2 in root.glob("*/*_t2.nii.gz"):
        if how == "no_t2":
            t2.unlink()
        else:  # mismatched: one case's T2 on another grid
            nib.save(nib.Nifti1Image(np.ones((32, 40, 12), np.float32), np.eye(4)), t2)
            break
    return root


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--src", "T1,T7", "--dst", "T2"), "unknown modality 'T7'"),
        (("--src", "T1,FLAIR", "--dst", "flair"), "overlap on FLAIR"),
        (("--src", "T1", "--dst", "T2", "--data", "{no_t2}"), "has all of T1,T2"),
        (("--src", "T1", "--dst", "T2", "--data", "{mismatched}", "--strict-data"), "must have the same shape"),
    ],
)
def test_bad_input_is_one_line_and_a_nonzero_exit(argv, message, tiny_root: Path, tmp_path: Path) -> None:
    folders = {how: _broken_copy(tiny_root, tmp_path, how) for how in ("no_t2", "mismatched") if f"{{{how}}}" in argv}
    argv = [a.format(**{k: str(v) for k, v in folders.items()}) for a in argv]
    done = _cli(*argv, "--out", "store", cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("error: ") and message in done.stderr


def test_help_reads_well(tmp_path: Path) -> None:
    done = _cli("--help", cwd=tmp_path)
    assert done.returncode == 0
    for text in ("what to synthesize", "--src", "--resume", "--init", "--test-cases", "examples:", "torchrun"):
        assert text in done.stdout


def test_tumour_weight_reads_the_training_segmentations_only(tmp_path: Path, phantom_root: Path) -> None:
    """The segmentation is loaded for the training cases when the loss weighs the tumour, never otherwise."""
    weighted = prepare_data(_config(tmp_path, phantom_root, "--mask-loss", "--tumour-weight", "4"))
    assert all(case.labels for case in weighted.train) and not any(case.labels for case in weighted.val)
    regions = StreamedSliceDataset(weighted.train)  # whole slices: uint8 region maps, the tumour marked
    assert regions.regions and any((regions[i][2] == TUMOUR).any() for i in range(0, len(regions), 5))
    plain = prepare_data(_config(tmp_path, phantom_root, "--mask-loss"))
    assert not any(case.labels for case in plain.train)
    assert StreamedSliceDataset(plain.train)[0][2].dtype == torch.bool
