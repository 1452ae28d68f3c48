"""--target-anchor median: targets scaled so the brain's median sits at one level in every case."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from synnet.normalization import MEDIAN_LEVEL, denormalize, intensity_range, median_anchored_range, normalize
from training.data.brats import find_cases, load_case
from training.data.errors import DataError
from training.data.slices import extract_slices
from training.fitting.cli import build_parser, make_config
from training.fitting.config import ConfigError


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
    anchored = extract_slices(case, ["T1"], ["T2"], min_brain_fraction=0.1, target_anchor="median")
    np.testing.assert_array_equal(plain.sources, anchored.sources)
    brain = anchored.masks
    assert np.median(anchored.targets[:, 0][brain]) == pytest.approx(MEDIAN_LEVEL, abs=0.02)
    assert abs(np.median(plain.targets[:, 0][brain]) - MEDIAN_LEVEL) > 0.05  # the anchor changed something
    assert anchored.ranges["T2"] != plain.ranges["T2"] and anchored.ranges["T1"] == plain.ranges["T1"]
    with pytest.raises(DataError, match="target_anchor must be one of percentile, median"):
        extract_slices(case, ["T1"], ["T2"], target_anchor="mean")


def test_the_unified_model_refuses_an_anchor() -> None:
    args = build_parser().parse_args(["--arch", "unified", "--target-anchor", "median"])
    with pytest.raises(ConfigError, match="--target-anchor is not available with --arch unified"):
        make_config(vars(args))
