"""The one stop rule: epochs, --max-steps and --time-limit, whichever comes first; schedule progress."""

from __future__ import annotations

import pytest

from training.fitting.budget import Budget
from training.fitting.config import BudgetConfig


def test_steps_per_epoch_caps_a_pass_and_max_steps_caps_the_total() -> None:
    budget = Budget(BudgetConfig(epochs=3, steps_per_epoch=4, max_steps=10), batches_per_epoch=6)
    assert (budget.steps_per_epoch, budget.total_steps) == (4, 10)
    assert Budget(BudgetConfig(epochs=3, steps_per_epoch=9), batches_per_epoch=6).total_steps == 18


@pytest.mark.parametrize(
    ("config", "epoch", "step", "seconds", "reason"),
    [
        (BudgetConfig(epochs=2), 1, 100, 1e6, None),
        (BudgetConfig(epochs=2), 2, 0, 0.0, "--epochs 2 done"),
        (BudgetConfig(epochs=9, max_steps=5), 1, 5, 0.0, "--max-steps 5 reached"),
        (BudgetConfig(epochs=9, max_steps=5), 1, 4, 0.0, None),
        (BudgetConfig(epochs=9, time_limit=2.5), 1, 4, 2.5, "--time-limit 2.5 s spent"),
        (BudgetConfig(epochs=9, time_limit=2.5), 1, 4, 2.4, None),
    ],
)
def test_whichever_limit_comes_first_stops_the_run(config, epoch, step, seconds, reason) -> None:
    assert Budget(config, batches_per_epoch=10).stop_reason(epoch, step, seconds) == reason


def test_progress_follows_the_clock_when_it_is_further_along() -> None:
    budget = Budget(BudgetConfig(epochs=1, time_limit=10.0), batches_per_epoch=100)
    assert budget.progress(10, 0.0) == pytest.approx(0.1)
    assert budget.progress(10, 5.0) == pytest.approx(0.5)
    assert budget.progress(100, 20.0) == 1.0
    assert Budget(BudgetConfig(epochs=1), batches_per_epoch=100).progress(50, 1e6) == pytest.approx(0.5)
