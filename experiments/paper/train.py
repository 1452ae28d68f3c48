"""Train the planned runs, several ``python -m training.fit`` processes at once.

Each run trains its recipe (:mod:`experiments.paper.plan`). What the machine at hand changes goes on top, for every
run alike: where the cases are (``--data``, and ``--extra-data`` for the runs whose recipe has partially observed
subjects), the comparison runs' training time (the tables were made at equal time per run, not equal steps: runs
share one accelerator at once), optionally the bundled runs' time, and any ``--set KEY=VALUE``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from experiments.paper.plan import BUNDLED, PlannedRun, Stores, is_exported

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
    """What every run shares on this machine; None keeps the recipe's own value."""

    runs_dir: Path
    stores: Stores
    comparison_seconds: float
    bundled_seconds: float | None = None
    data: Path | None = None
    extra_data: Path | None = None  # replaces the partially observed subjects' folder of the recipes that have one
    workers: int = 2
    assignments: tuple[str, ...] = ()  # KEY=VALUE: training.fit --set for every run


def fit_command(run: PlannedRun, settings: TrainSettings) -> list[str]:
    """The ``python -m training.fit`` command line of one run: its recipe, or a resume from its last checkpoint."""
    run_dir = settings.runs_dir / run.name
    seconds = settings.comparison_seconds if run.kind != BUNDLED else settings.bundled_seconds
    session = [
        *(["--data", str(settings.data)] if settings.data is not None else []),
        *(["--time-limit", f"{seconds:g}"] if seconds is not None else []),
        "--workers", str(settings.workers),
        "--out", str(settings.stores.of(run)), "--name", run.name, "--run-dir", str(run_dir),
    ]  # fmt: skip
    session += [word for assignment in settings.assignments for word in ("--set", assignment)]
    fit = [sys.executable, "-m", "training.fit"]
    if (run_dir / "last.pt").exists():  # a resumed run keeps its checkpoint's settings but these
        return [*fit, "--resume", str(run_dir / "last.pt"), *session]
    command = [*fit, "--recipe", str(run.recipe), *run.overrides, *session]
    if run.extra_data and settings.extra_data is not None:
        command += ["--extra-data", str(settings.extra_data)]
    return command


def train(runs: Sequence[PlannedRun], settings: TrainSettings, jobs: int) -> int:
    """Run the fits ``jobs`` at a time; the number of runs that failed (their logs say why)."""
    pending = [run for run in runs if not is_exported(run, settings.stores)]
    logger.info("%d runs planned, %d already exported, %d to train", len(runs), len(runs) - len(pending), len(pending))
    settings.runs_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"}
    active: list[tuple[PlannedRun, subprocess.Popen, float]] = []
    failed = 0
    while pending or active:
        while pending and len(active) < jobs:
            run = pending.pop(0)
            log = (settings.runs_dir / f"{run.name}.log").open("a")
            process = subprocess.Popen(fit_command(run, settings), stdout=log, stderr=subprocess.STDOUT, env=env)
            active.append((run, process, time.monotonic()))
            logger.info("started %s (%s %s, %s loss)", run.name, run.arch, run.config_label, run.loss)
        time.sleep(1.0)
        for entry in list(active):
            run, process, started = entry
            if process.poll() is None:
                continue
            active.remove(entry)
            took = time.monotonic() - started
            if process.returncode:
                failed += 1
                logger.error("%s failed (exit %d) after %.0f s; see its log", run.name, process.returncode, took)
            else:
                logger.info("%s done in %.0f s", run.name, took)
    return failed
