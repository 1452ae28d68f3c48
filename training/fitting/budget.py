"""When training stops: the one rule over ``--epochs``, ``--max-steps`` and ``--time-limit``.

The loop asks :meth:`Budget.stop_reason` before every epoch and before every step, and the cosine
schedule asks :meth:`Budget.progress` how far along the run is; nothing else reads the limits.
The clock is the time spent in optimizer steps (data loading and validation not counted), so a
run resumed on another machine continues the same budget.
"""

from __future__ import annotations

from training.fitting.config import BudgetConfig


class Budget:
    """The limits of one run on a loader of ``batches_per_epoch`` batches.

    Args:
        config: ``--epochs``, ``--steps-per-epoch``, ``--max-steps`` and ``--time-limit``.
        batches_per_epoch: batches of one pass over the training windows (per process).
    """

    def __init__(self, config: BudgetConfig, batches_per_epoch: int) -> None:
        self.config = config
        self.steps_per_epoch = min(batches_per_epoch, config.steps_per_epoch or batches_per_epoch)
        total = config.epochs * self.steps_per_epoch
        self.total_steps = min(total, config.max_steps) if config.max_steps else total

    @property
    def uses_clock(self) -> bool:
        """True with ``--time-limit``: processes may disagree, so one of them must decide."""
        return self.config.time_limit is not None

    def stop_reason(self, epoch: int, step: int, seconds: float) -> str | None:
        """Why training must stop after ``epoch`` epochs, ``step`` steps and ``seconds`` of steps; None: go on."""
        if epoch >= self.config.epochs:
            return f"--epochs {self.config.epochs} done"
        if self.config.max_steps is not None and step >= self.config.max_steps:
            return f"--max-steps {self.config.max_steps} reached"
        if self.config.time_limit is not None and seconds >= self.config.time_limit:
            return f"--time-limit {self.config.time_limit:g} s spent"
        return None

    def progress(self, step: int, seconds: float) -> float:
        """How far along the run is, in [0, 1]: by steps, or by the clock when that is further along."""
        done = step / max(self.total_steps, 1)
        if self.config.time_limit:
            done = max(done, seconds / self.config.time_limit)
        return min(done, 1.0)
