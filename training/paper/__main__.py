"""Reproduce the SynNet paper's two experiment sets and train the bundled models.

``python -m training.paper train|export|report``; see :mod:`training.paper` for what each verb does.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from synnet.modalities import parse_modalities
from training.paper.export import export_checkpoints
from training.paper.plan import Stores, plan, select
from training.paper.report import report
from training.paper.train import TrainSettings, fit_command, train

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.paper", description=__doc__.split("\n\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    trainer = verbs.add_parser("train", help="train the planned runs (resumable)")
    trainer.add_argument("--data", type=Path, required=True, help="BraTS folder (e.g. ../shared/data/brats18)")
    trainer.add_argument(
        "--test-cases", default="4", help="held-out cases: a count or explicit ids (default: %(default)s)"
    )
    trainer.add_argument(
        "--extra-data",
        type=Path,
        help="the subjects with only some modalities, for the runs whose recipe trains on them "
        "(e.g. ../shared/data/brats18_t1_flair)",
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
    reporter = verbs.add_parser("report", help="write docs/results/paper.md from the evaluation summaries")
    reporter.add_argument("--comparison-summary", type=Path, default=Path("docs/results/paper/summary.csv"))
    reporter.add_argument("--bundled-summary", type=Path, default=Path("docs/results/bundled/summary.csv"))
    reporter.add_argument("--out", type=Path, default=Path("docs/results/paper.md"))
    exporter = verbs.add_parser("export", help="export checkpoints named after planned runs to their stores")
    exporter.add_argument("checkpoints", type=Path, help="folder of <run name>.pt checkpoints")
    exporter.add_argument("--source", help="what the manifests record as the training data's source")
    for verb in (trainer, reporter, exporter):
        verb.add_argument("--comparison-store", type=Path, default=Path("runs/paper/store"))
        verb.add_argument("--bundled-store", type=Path, default=Path("model_store"))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one verb; returns the process exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for run in plan():  # the plan is code: a typo in a modality name must fail here, not in a fit
        parse_modalities(run.src), parse_modalities(run.dst)
    if args.verb == "report":
        report(args.comparison_summary, args.bundled_summary, args.comparison_store, args.bundled_store, args.out)
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
        extra_data=args.extra_data,
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
