"""--target-anchor median: targets scaled so the brain's median sits at one level in every case."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from synnet.manifest import ModelManifest, model_digest
from synnet.metrics import compute_metrics
from synnet.normalization import (
    MEDIAN_LEVEL,
    NormalizationParams,
    brain_mask,
    denormalize,
    intensity_range,
    median_anchored_range,
    normalize,
    normalize_target,
)
from training.data.brats import find_cases, load_case
from training.data.slices import extract_slices
from training.data.streaming import validation_stacks
from training.fitting.cli import build_parser, make_config
from training.fitting.config import ConfigError
from training.fitting.data import prepare_data
from training.fitting.run import run


def test_the_median_lands_on_the_level_and_the_bright_tail_is_clipped() -> None:
    rng = np.random.default_rng(0)
    image = np.concatenate([rng.normal(400, 40, 9000), rng.normal(2000, 100, 1000)]).astype(np.float32)
    mask = np.ones_like(image, dtype=bool)
    value_range = median_anchored_range(image, mask)
    scaled, used = normalize(image, mask, value_range=value_range)
    assert used == value_range and value_range.lo == intensity_range(image, mask).lo
    assert np.median(scaled) == pytest.approx(MEDIAN_LEVEL, abs=1e-3)
    assert (scaled[9000:] == 1.0).mean() > 0.9  # the bright tissue is past lo + (median - lo) / level
    inside = (scaled > 0.0) & (scaled < 1.0)
    np.testing.assert_allclose(denormalize(scaled, mask, value_range)[inside], image[inside], rtol=1e-4)


def test_a_brain_whose_median_is_its_floor_falls_back_to_the_percentiles() -> None:
    image = np.zeros(100, np.float32)
    image[90:] = 50.0
    mask = np.ones(100, bool)
    assert median_anchored_range(image, mask) == intensity_range(image, mask)
    with pytest.raises(ValueError, match="level"):
        median_anchored_range(image, mask, level=1.0)


def test_only_the_targets_move_and_their_range_is_recorded(tiny_root: Path) -> None:
    case = load_case(find_cases(tiny_root)[0], ["T1", "T2"])
    plain = extract_slices(case, ["T1"], ["T2"], min_brain_fraction=0.1)
    median = NormalizationParams(target_anchor="median")
    anchored = extract_slices(case, ["T1"], ["T2"], median, min_brain_fraction=0.1)
    np.testing.assert_array_equal(plain.sources, anchored.sources)
    brain = anchored.masks
    assert np.median(anchored.targets[:, 0][brain]) == pytest.approx(MEDIAN_LEVEL, abs=0.02)
    assert abs(np.median(plain.targets[:, 0][brain]) - MEDIAN_LEVEL) > 0.05  # the anchor changed something
    assert anchored.ranges["T2"] != plain.ranges["T2"] and anchored.ranges["T1"] == plain.ranges["T1"]


def test_a_truth_is_scored_in_the_space_the_model_was_trained_in(tiny_root: Path) -> None:
    """A prediction equal to the anchored target scores perfectly only if the truth is anchored too."""
    case = load_case(find_cases(tiny_root)[0], ["T1", "T2"])
    truth = case.images["T2"]
    mask = brain_mask([case.images["T1"]])
    manifest = SimpleNamespace(normalization=NormalizationParams(target_anchor="median"))
    perfect = normalize_target(truth, mask, manifest.normalization)[0]
    assert compute_metrics(perfect, truth, mask, manifest).psnr == math.inf
    plain = SimpleNamespace(normalization=NormalizationParams())
    assert compute_metrics(perfect, truth, mask, plain).psnr < 40


def test_the_anchor_is_sealed_by_the_digest(tmp_path: Path) -> None:
    model_file = tmp_path / "model.pt"
    model_file.write_bytes(b"weights")
    fields = {
        "name": "m", "src": ["T1"], "dst": ["T2"], "architecture": {"name": "synnet"}, "loss": {"name": "joint"},
        "training_data": {"source": "test", "n_cases": 0}, "sha256": "", "created": datetime.now(UTC),
    }  # fmt: skip
    plain = ModelManifest(**fields)
    anchored = ModelManifest(**fields, normalization=NormalizationParams(target_anchor="median"))
    assert model_digest(model_file, plain) != model_digest(model_file, anchored)
    # the bundled models, exported before the field, still verify: tests/bundled load every one


def test_the_unified_model_refuses_an_anchor() -> None:
    args = build_parser().parse_args(["--arch", "unified", "--target-anchor", "median"])
    with pytest.raises(ConfigError, match="--target-anchor is not available with --arch unified"):
        make_config(vars(args))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_a_fit_trains_on_anchored_targets_and_its_manifest_says_so(phantom_root: Path, tmp_path: Path) -> None:
    argv = [
        "--src", "T1", "--dst", "T2", "--target-anchor", "median",
        "--features", "8", "--depth", "2", "--slice-size", "48", "--batch-size", "4", "--epochs", "1",
        "--steps-per-epoch", "2", "--val-max-slices", "4", "--val-cases", "1", "--test-cases", "1",
        "--data", str(phantom_root), "--out", str(tmp_path / "store"), "--run-dir", str(tmp_path / "run"),
    ]  # fmt: skip
    config = make_config(vars(build_parser().parse_args(argv)))
    data = prepare_data(config)
    case = next(validation_stacks(data.train[:1], max_slices=1000, seed=0))  # every slice of the first case
    assert np.median(case.targets[:, 0][case.masks]) == pytest.approx(MEDIAN_LEVEL, abs=0.02)
    manifest = run(config).manifest
    assert manifest.normalization.target_anchor == "median"
    assert ModelManifest.load(tmp_path / "store" / manifest.name).sha256 == manifest.sha256
