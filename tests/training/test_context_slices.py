"""2.5D input (--context-slices): one neighbour stack for training and inference, end to end."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from synnet.api import Synthesizer
from synnet.inference import prepare
from synnet.manifest import ModelManifest, model_digest
from synnet.modalities import Modality
from synnet.neighbours import neighbour_stack
from synnet.normalization import brain_mask
from training.data.brats import find_cases, load_case
from training.data.intensity import IntensityParams, augment_intensity
from training.data.slices import extract_slices
from training.fitting.cli import build_parser, make_config
from training.fitting.config import ConfigError
from training.fitting.run import run
from training.models import create_model
from training.triton import config_pbtxt


def test_each_source_brings_its_neighbours_lowest_first_and_the_ends_repeat() -> None:
    volumes = np.zeros((2, 1, 1, 4), np.float32)
    volumes[:, 0, 0, :] = 10 * np.arange(2)[:, None] + np.arange(4)[None, :]  # value = 10·source + z
    stack = neighbour_stack(volumes, np.array([0, 3]), context=1)
    assert stack.shape == (2, 6, 1, 1) and stack.dtype == np.float32
    assert stack[0, :, 0, 0].tolist() == [0, 0, 1, 10, 10, 11]
    assert stack[1, :, 0, 0].tolist() == [2, 3, 3, 12, 13, 13]


def test_without_context_the_stack_is_the_slices_themselves() -> None:
    volumes = np.random.default_rng(0).random((3, 5, 6, 7)).astype(np.float32)
    z = np.array([1, 2, 6])
    assert np.array_equal(neighbour_stack(volumes, z, 0), np.moveaxis(volumes[..., z], -1, 0))


def _manifest(context: int) -> ModelManifest:
    return ModelManifest(
        name="m",
        src=["T1", "T1c"],
        dst=["T2"],
        architecture={"name": "synnet"},
        loss={"name": "joint"},
        input={"multiple_of": 4, "min_size": 16, "context_slices": context},
        training_data={"source": "test", "n_cases": 0},
        sha256="",
        created=datetime.now(UTC),
    )


def test_training_slices_are_what_inference_feeds_the_network(tiny_root: Path) -> None:
    case = load_case(find_cases(tiny_root)[0], ["T1", "T1c", "T2"])
    trained = extract_slices(case, ["T1", "T1c"], ["T2"], min_brain_fraction=0.1, context=2)
    sources = {m: case.images[m] for m in trained.src}
    served = prepare(sources, brain_mask(list(sources.values())), _manifest(2), crop=False)
    assert trained.sources.shape[1] == served.x.shape[1] == 10
    for i, z in enumerate(trained.slice_indices):
        np.testing.assert_array_equal(trained.sources[i], served.x[list(served.slices).index(z)])


def test_context_is_part_of_what_the_digest_seals(tmp_path: Path) -> None:
    model_file = tmp_path / "model.pt"
    model_file.write_bytes(b"weights")
    one, three = _manifest(0), _manifest(1)
    assert one.input_channels == 2 and three.input_channels == 6
    assert model_digest(model_file, one) != model_digest(model_file, three)


def test_a_sources_slices_share_its_rendering_and_sources_differ() -> None:
    image = torch.rand(1, 1, 24, 24, generator=torch.Generator().manual_seed(1))
    sources = image.repeat(2, 6, 1, 1)  # two sources of three slices each, all the same picture
    mask = torch.ones(2, 24, 24, dtype=torch.bool)
    params = IntensityParams(max_noise=0.0)
    out = augment_intensity(sources, mask, torch.Generator().manual_seed(0), params, slices_per_source=3)
    for first in (0, 3):
        assert torch.equal(out[:, first], out[:, first + 1]) and torch.equal(out[:, first], out[:, first + 2])
    assert not torch.allclose(out[:, 0], out[:, 3])
    noisy = augment_intensity(sources, mask, torch.Generator().manual_seed(0), slices_per_source=3)
    assert not torch.equal(noisy[:, 0], noisy[:, 1])  # noise is drawn per slice


def test_each_network_takes_its_sources_with_their_neighbours() -> None:
    x = torch.rand(1, 6, 32, 32)
    for arch in ("synnet", "unet", "cnn", "deconvnet"):
        model = create_model(arch, 2, 1, features=4, depth=2, slices_per_source=3).eval()
        assert model(x).shape == (1, 1, 32, 32)
        with pytest.raises(ValueError, match=r"\(B, 6, H, W\)"):
            model(x[:, :2])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--src", "T1", "--dst", "T2", "--context-slices", "-1"], "--context-slices must be from 0 to 8"),
        (["--src", "T1", "--dst", "T2", "--context-slices", "9"], "--context-slices must be from 0 to 8"),
        (["--arch", "unified", "--context-slices", "1"], "--context-slices is not available with --arch unified"),
    ],
)
def test_unusable_context_is_refused_by_name(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_config(vars(build_parser().parse_args(argv)))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_a_25d_model_trains_exports_and_serves(phantom_root: Path, tmp_path: Path) -> None:
    argv = [
        "--src", "T1,T1c", "--dst", "T2", "--context-slices", "1", "--intensity-augment",
        "--features", "8", "--depth", "2", "--slice-size", "48", "--batch-size", "4", "--epochs", "1",
        "--steps-per-epoch", "3", "--val-max-slices", "4", "--val-cases", "1", "--test-cases", "1",
        "--data", str(phantom_root), "--out", str(tmp_path / "store"), "--run-dir", str(tmp_path / "run"),
    ]  # fmt: skip
    manifest = run(make_config(vars(build_parser().parse_args(argv)))).manifest
    assert manifest.input.context_slices == 1 and manifest.input_channels == 6
    assert manifest.architecture.params["slices_per_source"] == 3
    assert "INPUT__0" in config_pbtxt(manifest) and "dims: [ 6, -1, -1 ]" in config_pbtxt(manifest)

    case = sorted(p for p in phantom_root.iterdir() if p.is_dir())[0]
    files = {m: next(case.glob(f"*_{suffix}.nii.gz")) for m, suffix in (("T1", "t1"), ("T1c", "t1ce"))}
    result = Synthesizer(tmp_path / "store", device="cpu").synthesize(files, "T2")
    out = np.asarray(result.images[Modality.T2].dataobj)
    assert out.shape == nib.load(files["T1"]).shape and np.isfinite(out).all() and out.any()


def test_a_neighbour_keeps_its_own_brain_through_the_re_rendering() -> None:
    """Inference shows a neighbour slice as it is; training must not cut it to the centre slice's brain."""
    sources = torch.zeros(1, 3, 16, 16)
    sources[:, 0, 2:10] = 0.5  # the slice below: brain in rows 2-9
    sources[:, 1, 4:12] = 0.5  # the centre slice: rows 4-11
    sources[:, 2, 6:14] = 0.5  # the slice above: rows 6-13
    mask = sources[:, 1] > 0
    out = augment_intensity(sources, mask, torch.Generator().manual_seed(0), slices_per_source=3)
    assert torch.equal(out > 0, sources > 0)


def test_synnet_gives_each_arm_its_own_sources_slices() -> None:
    model = create_model("synnet", 2, 1, features=4, depth=2, slices_per_source=3).eval()
    seen: dict[int, torch.Tensor] = {}
    for arm, encoder in enumerate(model.encoders):
        encoder.register_forward_pre_hook(lambda _, args, arm=arm: seen.__setitem__(arm, args[0]))
    x = torch.rand(1, 6, 16, 16)
    with torch.no_grad():
        model(x)
    assert torch.equal(seen[0], x[:, :3]) and torch.equal(seen[1], x[:, 3:])
