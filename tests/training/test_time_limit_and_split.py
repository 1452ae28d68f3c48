"""--time-limit ends a run by the clock (and the cosine decay with it); absent test ids are recorded."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from synnet.manifest import ModelManifest
from training.data.errors import DataError
from training.fitting.budget import Budget
from training.fitting.cli import build_parser, make_config
from training.fitting.config import BudgetConfig, DataConfig, OptimConfig
from training.fitting.data import choose_split
from training.fitting.optim import build_scheduler
from training.fitting.run import run

TINY = [
    "--src", "T1", "--dst", "T2", "--features", "8", "--depth", "2", "--slice-size", "48",
    "--batch-size", "4", "--val-cases", "0", "--test-cases", "1",
]  # fmt: skip


@pytest.mark.slow
def test_time_limit_stops_a_long_run_and_is_recorded(phantom_root: Path, tmp_path: Path) -> None:
    argv = [*TINY, "--data", str(phantom_root), "--epochs", "1000", "--time-limit", "2", "--schedule", "cosine",
            "--out", str(tmp_path / "store"), "--run-dir", str(tmp_path / "run")]  # fmt: skip
    result = run(make_config(vars(build_parser().parse_args(argv))))
    manifest = ModelManifest.load(tmp_path / "store" / result.manifest.name)
    training = manifest.training
    assert 2.0 <= training["train_seconds"] < 30.0
    assert training["epochs_completed"] < 1000
    assert training["steps"] >= 1
    # the schedule was driven to its end by the clock: the last learning rate is the floor
    assert result.history[-1]["lr"] == pytest.approx(0.01 * 0.01, rel=0.05)  # 1 % of the default lr 0.01


def test_cosine_follows_time_when_it_is_further_along() -> None:
    import torch

    budget = Budget(BudgetConfig(epochs=1, time_limit=10.0), batches_per_epoch=1000)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    clock = {"t": 0.0}
    scheduler = build_scheduler(OptimConfig(schedule="cosine", lr=1.0), optimizer, budget, elapsed=lambda: clock["t"])
    clock["t"] = 5.0  # half the time, 1 step of 1000
    optimizer.step()
    scheduler.step()
    expected = 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 0.5))
    assert scheduler.get_last_lr()[0] == pytest.approx(expected)


def _split(ids: list[str], test: str, val: str = "0"):
    return choose_split(ids, DataConfig(test_cases=test, val_cases=val))


def test_explicit_test_ids_absent_from_the_data_are_recorded_as_held_out() -> None:
    split = _split(["a", "b", "c"], "a,elsewhere")
    assert split.test == ["a", "elsewhere"]
    assert split.train == ["b", "c"]


def test_explicit_validation_ids_must_exist() -> None:
    with pytest.raises(DataError, match="--val-cases nowhere not among"):
        _split(["a", "b", "c"], "0", val="nowhere")


def test_a_split_must_leave_a_training_case() -> None:
    with pytest.raises(DataError, match="leave one to train on"):
        _split(["a", "b"], "a,b")


def test_a_repeated_test_id_is_held_out_once() -> None:
    split = _split(["a", "b", "c"], "b, a,b")
    assert split.test == ["a", "b"] and split.train == ["c"]
