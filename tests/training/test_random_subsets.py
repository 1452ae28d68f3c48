"""Random source subsets, per-target loss weighting, partial cases and the --arch unified options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synnet.modalities import Modality
from training.data.brats import LoadedCase
from training.data.slices import extract_available_slices
from training.fitting.cli import make_config
from training.fitting.config import ConfigError
from training.fitting.subsets import available_modalities, draw_sources, per_target_loss


def test_sources_are_a_non_empty_proper_subset_of_what_each_sample_has() -> None:
    available = torch.tensor([[True, True, True, True], [True, False, False, True], [False, False, True, False]])
    generator = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(200):
        sources = draw_sources(available, generator)
        assert not (sources & ~available).any()
        for row in (0, 1):
            assert 1 <= int(sources[row].sum()) < int(available[row].sum())
        assert torch.equal(sources[2], available[2])  # one modality: a source, no target
        seen.add(tuple(sources[0].tolist()))
    assert len(seen) == 14  # every non-empty proper subset of four


def test_each_target_weighs_the_same_however_often_it_is_drawn() -> None:
    def criterion(pred: torch.Tensor, truth: torch.Tensor, mask: object) -> torch.Tensor:
        return (pred - truth).abs().mean()

    pred, truth = torch.zeros(4, 4, 2, 2), torch.zeros(4, 4, 2, 2)
    truth[:, 0] = 1.0  # T1 off by 1 everywhere, the others exact
    targets = torch.zeros(4, 4, dtype=torch.bool)
    targets[0, 0] = True  # T1 a target once
    targets[:, 2] = True  # T2 a target four times
    # mean over targets: (1 + 0) / 2, not the per-sample mean 1/5
    assert float(per_target_loss(criterion, pred, truth, targets, None)) == pytest.approx(0.5)
    assert float(per_target_loss(criterion, pred, truth, torch.zeros_like(targets), None)) == 0.0


def test_a_partial_case_becomes_four_channels_with_nan_for_what_it_lacks() -> None:
    rng = np.random.default_rng(0)
    volume = np.zeros((24, 24, 6), dtype=np.float32)
    volume[4:20, 4:20, 1:5] = rng.random((16, 16, 4)) + 1
    case = LoadedCase("c1", {Modality.T1: volume, Modality.FLAIR: volume * 2}, np.eye(4))
    stack = extract_available_slices(case, min_brain_fraction=0.1)
    assert stack.src == tuple(Modality) and stack.sources.shape == (4, 4, 24, 24)
    assert np.isnan(stack.sources[:, 1:3]).all() and np.isfinite(stack.sources[:, [0, 3]]).all()
    assert set(stack.target_ranges) == {Modality.T1, Modality.FLAIR}
    available = available_modalities(torch.from_numpy(stack.sources))
    assert available.tolist() == [[True, False, False, True]] * 4


def test_arch_unified_takes_all_four_and_fusion_needs_it() -> None:
    config = make_config({"arch": "unified", "extra_data": "more"})
    assert config.src == config.dst == ("T1", "T1c", "T2", "FLAIR")
    assert config.output.name == "synnet_unified"
    with pytest.raises(ConfigError, match="all of T1,T1c,T2,FLAIR"):
        make_config({"arch": "unified", "src": "T1", "dst": "T2"})
    assert make_config({"arch": "unified", "fusion": "mean_max"}).model.fusion == "mean_max"
    with pytest.raises(ConfigError, match="--fusion needs --arch unified"):
        make_config({"src": "T1", "dst": "T2", "fusion": "mean_max"})
