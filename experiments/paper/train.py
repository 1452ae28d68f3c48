"""Train the planned runs, several ``python -m training.fit`` processes at once.

Every run of one kind gets the same training time (``--time-limit``), not the same number of steps:
runs share one accelerator at once, and equal time is the budget a user of this project has.
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
    """What every run shares; the time budgets differ by kind."""

    data: Path
    test_cases: str
    runs_dir: Path
    stores: Stores
    comparison_seconds: float
    bundled_seconds: float
    slice_size: int = 160
    batch_size: int = 32
    workers: int = 2
    split_seed: int = 0
    extra_data: Path | None = None  # the partially observed subjects (runs with partial_subjects train on them)


def fit_command(run: PlannedRun, settings: TrainSettings) -> list[str]:
    """The ``python -m training.fit`` command line of one run (resuming from its last checkpoint)."""
    seconds = settings.bundled_seconds if run.kind == BUNDLED else settings.comparison_seconds
    run_dir = settings.runs_dir / run.name
    command = [
        sys.executable, "-m", "training.fit",
        "--data", str(settings.data),
        "--src", ",".join(run.src), "--dst", ",".join(run.dst),
        "--arch", run.arch, "--loss", run.loss,
        "--test-cases", settings.test_cases, "--val-cases", "0", "--split-seed", str(settings.split_seed),
        "--optimizer", "adam", "--lr", "0.001", "--schedule", "cosine",
        "--epochs", "100000", "--time-limit", f"{seconds:g}",
        "--batch-size", str(settings.batch_size), "--slice-size", str(settings.slice_size),
        "--workers", str(settings.workers),
        "--out", str(settings.stores.of(run)), "--name", run.name, "--run-dir", str(run_dir),
        *run.options,
    ]  # fmt: skip
    if run.partial_subjects and settings.extra_data is not None:
        command += ["--extra-data", str(settings.extra_data)]
    if (run_dir / "last.pt").exists():
        command += ["--resume", str(run_dir / "last.pt")]
    return command


def train(runs: Sequence[PlannedRun], settings: TrainSettings, jobs: int) -> int:
    """Run the fits ``jobs`` at a time; the number of runs that failed (their logs say why)."""
    pending = [run for run in runs if not is_exported(run, settings.stores)]
    if settings.extra_data is None and any(run.partial_subjects for run in pending):
        names = ", ".join(run.name for run in pending if run.partial_subjects)
        logger.warning("no --extra-data: %s train without the partially observed subjects of their recipe", names)
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
