"""Reproduce the SynNet paper's two experiment sets and train the bundled models.

``python -m training.paper train`` runs every planned ``training.fit`` (several at once: on a GPU
the small 64-channel networks leave it idle between kernels when trained one at a time), and
``python -m training.paper report`` evaluates the exported models on the held-out cases and writes
``docs/results.md``. Both are resumable: ``train`` skips runs whose model is already exported and
resumes runs that have a checkpoint; ``report`` reuses evaluation CSVs already written.

The plan (:func:`plan`):

* Table 3 of the paper: CM-1 (cnn), CM-2 (deconvnet), CM-3 (unet) and SynNet, L2 loss,
  for T1→T2 and T2→T1.
* Table 4: SynNet with L2, weighted L2 and the joint loss for the SISO, MISO and MIMO
  configurations of the paper (the SynNet/L2/SISO runs are shared with Table 3).
* The bundled models: the paper's six configurations and the four "three to the missing one"
  models, SynNet with the joint loss, trained longer, exported to ``model_store``.

Every run of one kind gets the same training time (``--time-limit``), not the same number of steps:
runs share one accelerator at once, and equal time is the budget a user of this project has.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from synnet.modalities import parse_modalities
from training.fitting.config import default_name

logger = logging.getLogger(__name__)

SISO = (("T1",), ("T2",)), (("T2",), ("T1",))
MISO = (("T1", "T1c"), ("T2",)), (("T2", "FLAIR"), ("T1",))
MIMO = (("T1", "T1c"), ("T2", "FLAIR")), (("T2", "FLAIR"), ("T1", "T1c"))
THREE_TO_ONE = (
    (("T1", "T1c", "T2"), ("FLAIR",)),
    (("T1", "T1c", "FLAIR"), ("T2",)),
    (("T1", "T2", "FLAIR"), ("T1c",)),
    (("T1c", "T2", "FLAIR"), ("T1",)),
)
TABLE3_ARCHS = ("cnn", "deconvnet", "unet", "synnet")
TABLE4_LOSSES = ("l2", "wl2", "joint")
BUNDLED_LOSS = "joint"
BUNDLED_EXAMPLE = "synnet_t1_to_t2"  # whose manifest states the split in the report
COMPARISON, BUNDLED = "comparison", "bundled"


@dataclass(frozen=True)
class PlannedRun:
    """One ``training.fit`` of the plan and the tables it appears in."""

    name: str
    arch: str
    src: tuple[str, ...]
    dst: tuple[str, ...]
    loss: str
    kind: str
    tables: tuple[str, ...] = ()

    @property
    def config_label(self) -> str:
        return f"{','.join(self.src)}→{','.join(self.dst)}"


def comparison_name(arch: str, loss: str, src: Sequence[str], dst: Sequence[str]) -> str:
    return f"paper_{loss}_{default_name(arch, tuple(src), tuple(dst))}"


def plan() -> list[PlannedRun]:
    """Table 3, Table 4 (sharing SynNet/L2/SISO with Table 3), then the bundled models."""
    runs: dict[str, PlannedRun] = {}

    def add(arch: str, loss: str, src: tuple[str, ...], dst: tuple[str, ...], table: str) -> None:
        name = comparison_name(arch, loss, src, dst)
        known = runs.get(name)
        tables = (*known.tables, table) if known else (table,)
        runs[name] = PlannedRun(name, arch, src, dst, loss, COMPARISON, tables)

    for src, dst in SISO:
        for arch in TABLE3_ARCHS:
            add(arch, "l2", src, dst, "table3")
    for src, dst in (*SISO, *MISO, *MIMO):
        for loss in TABLE4_LOSSES:
            add("synnet", loss, src, dst, "table4")
    bundled = [
        PlannedRun(default_name("synnet", src, dst), "synnet", src, dst, BUNDLED_LOSS, BUNDLED)
        for src, dst in (*SISO, *MISO, *MIMO, *THREE_TO_ONE)
    ]
    return [*runs.values(), *bundled]


@dataclass(frozen=True)
class Stores:
    """Where each kind of run is exported: the comparison models apart from the bundled ones."""

    comparison: Path
    bundled: Path

    def of(self, run: PlannedRun) -> Path:
        return self.bundled if run.kind == BUNDLED else self.comparison


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
    ]  # fmt: skip
    if (run_dir / "last.pt").exists():
        command += ["--resume", str(run_dir / "last.pt")]
    return command


def is_exported(run: PlannedRun, stores: Stores) -> bool:
    return (stores.of(run) / run.name / "manifest.json").exists()


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


def export_checkpoints(folder: Path, stores: Stores, source: str | None) -> int:
    """Export ``<folder>/<run name>.pt`` checkpoints (e.g. slim ones from a remote GPU) to their stores.

    ``source`` replaces the manifest's ``training_data.source``: the path the remote machine saw
    means nothing here. Returns the number of models exported.
    """
    from training.checkpoint import load_checkpoint
    from training.export import export_checkpoint

    runs = {run.name: run for run in plan()}
    exported = 0
    for path in sorted(folder.glob("*.pt")):
        run = runs.get(path.stem)
        if run is None:
            logger.warning("%s is not a run of the plan; skipped", path.name)
            continue
        checkpoint = load_checkpoint(path)
        if source:
            checkpoint["meta"]["manifest"]["training_data"]["source"] = source
        manifest = export_checkpoint(checkpoint, stores.of(run), run.name)
        logger.info("exported %s (sha256 %s) to %s", run.name, manifest.sha256[:12], stores.of(run))
        exported += 1
    return exported


# The paper's Tables 3 and 4 (PSNR dB, SSIM), keyed by (arch or loss, src, dst, target).
PAPER_TABLE3 = {
    ("cnn", "T1", "T2", "T2"): (13.89, 0.63), ("cnn", "T2", "T1", "T1"): (15.82, 0.74),
    ("deconvnet", "T1", "T2", "T2"): (19.93, 0.54), ("deconvnet", "T2", "T1", "T1"): (17.95, 0.54),
    ("unet", "T1", "T2", "T2"): (16.45, 0.52), ("unet", "T2", "T1", "T1"): (18.93, 0.50),
    ("synnet", "T1", "T2", "T2"): (20.75, 0.65), ("synnet", "T2", "T1", "T1"): (19.80, 0.64),
}  # fmt: skip
PAPER_TABLE4 = {
    ("l2", "T1", "T2", "T2"): (20.75, 0.65), ("l2", "T2", "T1", "T1"): (19.80, 0.64),
    ("wl2", "T1", "T2", "T2"): (21.80, 0.77), ("wl2", "T2", "T1", "T1"): (20.61, 0.69),
    ("joint", "T1", "T2", "T2"): (22.80, 0.86), ("joint", "T2", "T1", "T1"): (21.65, 0.70),
    ("l2", "T1,T1c", "T2", "T2"): (20.44, 0.71), ("l2", "T2,FLAIR", "T1", "T1"): (18.91, 0.74),
    ("wl2", "T1,T1c", "T2", "T2"): (22.56, 0.70), ("wl2", "T2,FLAIR", "T1", "T1"): (22.53, 0.74),
    ("joint", "T1,T1c", "T2", "T2"): (16.82, 0.80), ("joint", "T2,FLAIR", "T1", "T1"): (20.35, 0.81),
    ("l2", "T1,T1c", "T2,FLAIR", "T2"): (19.95, 0.70), ("l2", "T1,T1c", "T2,FLAIR", "FLAIR"): (17.73, 0.60),
    ("l2", "T2,FLAIR", "T1,T1c", "T1"): (18.33, 0.67), ("l2", "T2,FLAIR", "T1,T1c", "T1c"): (18.03, 0.62),
    ("wl2", "T1,T1c", "T2,FLAIR", "T2"): (21.05, 0.79), ("wl2", "T1,T1c", "T2,FLAIR", "FLAIR"): (20.91, 0.72),
    ("wl2", "T2,FLAIR", "T1,T1c", "T1"): (20.07, 0.75), ("wl2", "T2,FLAIR", "T1,T1c", "T1c"): (19.73, 0.73),
    ("joint", "T1,T1c", "T2,FLAIR", "T2"): (21.05, 0.79), ("joint", "T1,T1c", "T2,FLAIR", "FLAIR"): (20.91, 0.81),
    ("joint", "T2,FLAIR", "T1,T1c", "T1"): (20.55, 0.81), ("joint", "T2,FLAIR", "T1,T1c", "T1c"): (19.78, 0.76),
}  # fmt: skip
ARCH_LABELS = {"cnn": "CM-1 CNN", "deconvnet": "CM-2 Deconv-net", "unet": "CM-3 U-Net", "synnet": "SynNet"}
LOSS_LABELS = {"l2": "L2", "wl2": "weighted L2", "joint": "joint"}


def select(runs: Sequence[PlannedRun], only: str) -> list[PlannedRun]:
    if only == "all":
        return list(runs)
    kind = {"tables": COMPARISON, "bundled": BUNDLED}[only]
    return [run for run in runs if run.kind == kind]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.paper", description=__doc__.split("\n\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    trainer = verbs.add_parser("train", help="train the planned runs (resumable)")
    trainer.add_argument("--data", type=Path, required=True, help="BraTS folder (e.g. ../shared/data/brats18)")
    trainer.add_argument(
        "--test-cases", default="4", help="held-out cases: a count or explicit ids (default: %(default)s)"
    )
    trainer.add_argument("--runs-dir", type=Path, default=Path("runs/paper"))
    trainer.add_argument("--comparison-seconds", type=float, default=3600.0, help="training time of a table run")
    trainer.add_argument("--bundled-seconds", type=float, default=7200.0, help="training time of a bundled model")
    trainer.add_argument("--jobs", type=int, default=1, help="fits at once (default: %(default)s)")
    trainer.add_argument("--only", choices=("all", "tables", "bundled"), default="all")
    trainer.add_argument("--slice-size", type=int, default=160)
    trainer.add_argument("--batch-size", type=int, default=32)
    trainer.add_argument("--workers", type=int, default=2, help="DataLoader workers per fit")
    trainer.add_argument("--dry-run", action="store_true", help="print the fit commands and stop")
    reporter = verbs.add_parser("report", help="write docs/results.md from the evaluation summaries")
    reporter.add_argument("--comparison-summary", type=Path, default=Path("docs/results/paper/summary.csv"))
    reporter.add_argument("--bundled-summary", type=Path, default=Path("docs/results/bundled/summary.csv"))
    reporter.add_argument("--out", type=Path, default=Path("docs/results.md"))
    exporter = verbs.add_parser("export", help="export checkpoints named after planned runs to their stores")
    exporter.add_argument("checkpoints", type=Path, help="folder of <run name>.pt checkpoints")
    exporter.add_argument("--source", help="what the manifests record as the training data's source")
    for verb in (trainer, reporter, exporter):
        verb.add_argument("--comparison-store", type=Path, default=Path("runs/paper/store"))
        verb.add_argument("--bundled-store", type=Path, default=Path("model_store"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for run in plan():  # the plan is code: a typo in a modality name must fail here, not in a fit
        parse_modalities(run.src), parse_modalities(run.dst)
    if args.verb == "report":
        from synnet.manifest import ModelManifest
        from training.paper_report import preamble, write_results

        split = ModelManifest.load(args.bundled_store / BUNDLED_EXAMPLE).training_data
        write_results(
            args.comparison_summary, args.bundled_summary, args.comparison_store, args.bundled_store, args.out,
            preamble(split.train_cases, split.test_cases),
        )  # fmt: skip
        logger.info("wrote %s", args.out)
        return 0
    stores = Stores(comparison=args.comparison_store, bundled=args.bundled_store)
    if args.verb == "export":
        return 0 if export_checkpoints(args.checkpoints, stores, args.source) else 1
    settings = TrainSettings(
        data=args.data,
        test_cases=args.test_cases,
        runs_dir=args.runs_dir,
        stores=stores,
        comparison_seconds=args.comparison_seconds,
        bundled_seconds=args.bundled_seconds,
        slice_size=args.slice_size,
        batch_size=args.batch_size,
        workers=args.workers,
    )
    runs = select(plan(), args.only)
    if args.dry_run:
        for run in runs:
            print(" ".join(fit_command(run, settings)))
        return 0
    failed = train(runs, settings, args.jobs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
