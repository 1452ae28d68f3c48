"""Checkpoints: atomic round trip, clear errors, warm start of the matching tensors, slim copies."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    restore_rng_state,
    rng_state,
    save_checkpoint,
    slim_checkpoint,
    warm_start,
)
from training.models import create_model


def test_round_trip_keeps_weights_and_rng(tmp_path) -> None:
    model = create_model("synnet", 1, 1, features=4, depth=2)
    state = {"config": {"name": "x"}, "model": model.state_dict(), "epoch": 3, "rng": rng_state()}
    path = save_checkpoint(state, tmp_path / "run" / "last.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1))
    loaded = load_checkpoint(path)
    assert loaded["epoch"] == 3 and loaded["format"] == 1
    assert all(torch.equal(loaded["model"][k], v) for k, v in model.state_dict().items())
    restore_rng_state(loaded["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]  # no temporary left behind


def test_bad_files_raise_checkpoint_errors(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_warm_start_copies_what_matches_and_keeps_the_rest() -> None:
    torch.manual_seed(0)
    donor = create_model("synnet", 2, 1, features=4, depth=2)
    torch.manual_seed(1)
    model = create_model("synnet", 1, 1, features=4, depth=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loaded, skipped = warm_start(model, donor.state_dict())
    assert loaded and skipped
    for name in loaded:
        assert torch.equal(model.state_dict()[name], donor.state_dict()[name])
    for name in skipped:
        assert torch.equal(model.state_dict()[name], before[name])


def test_slim_checkpoint_drops_optimizer_state_and_halves_weights() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4))
    checkpoint = {"format": 1, "config": {}, "model": model.state_dict(), "optimizer": {"x": 1}, "meta": {}}
    slim = slim_checkpoint(checkpoint, half=True)
    assert "optimizer" not in slim
    assert slim["model"]["0.weight"].dtype == torch.float16
    assert slim["model"]["1.num_batches_tracked"].dtype == torch.int64
    restored = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4))
    restored.load_state_dict(slim["model"])
    assert restored[0].weight.dtype == torch.float32
    torch.testing.assert_close(restored[0].weight, model[0].weight, rtol=1e-3, atol=1e-4)
