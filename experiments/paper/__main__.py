"""Reproduce the SynNet paper's Tables 3 and 4, and retrain the bundled models from their recipes.

``python -m experiments.paper tables|train|export|report``; see :mod:`experiments.paper` for what each verb does.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from experiments.paper.export import export_checkpoints
from experiments.paper.plan import COMPARISON_RECIPE, Stores, plan, select
from experiments.paper.report import PAGE, RESULTS, report
from experiments.paper.train import TrainSettings, fit_command, train
from training.evaluate import run_evaluation
from training.fitting.recipe import load_recipe

logger = logging.getLogger(__name__)


def add_train_options(verb: argparse.ArgumentParser) -> None:
    verb.add_argument("--data", type=Path, help="the BraTS folder, if not the recipes' (e.g. a copy on a GPU machine)")
    verb.add_argument(
        "--extra-data",
        type=Path,
        help="the partially observed subjects, if not the recipes' folder (for the runs whose recipe has them)",
    )
    verb.add_argument("--runs-dir", type=Path, default=Path("runs/paper"))
    verb.add_argument(
        "--comparison-seconds", type=float, default=50.0, help="training time of a table run (default: %(default)s)"
    )
    verb.add_argument("--bundled-seconds", type=float, help="training time of a bundled model (default: its recipe's)")
    verb.add_argument("--jobs", type=int, default=1, help="fits at once (default: %(default)s)")
    verb.add_argument("--workers", type=int, default=2, help="DataLoader workers per fit")
    verb.add_argument(
        "--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
        help="training.fit --set for every run, over its recipe (repeatable)",
    )  # fmt: skip
    verb.add_argument("--dry-run", action="store_true", help="print the fit commands and stop")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments.paper", description=__doc__.split("\n\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    tables = verbs.add_parser("tables", help="train the tables' runs, evaluate them and write the page (resumable)")
    trainer = verbs.add_parser("train", help="train the planned runs (resumable)")
    trainer.add_argument("--only", choices=("all", "tables", "bundled"), default="all")
    trainer.add_argument("--recipe-device", choices=("cpu", "cuda"), help="only the runs whose recipe trains there")
    reporter = verbs.add_parser("report", help=f"write {PAGE} from the evaluation summary")
    exporter = verbs.add_parser("export", help="export checkpoints named after planned runs to their stores")
    exporter.add_argument("checkpoints", type=Path, help="folder of <run name>.pt checkpoints")
    exporter.add_argument("--source", help="what the manifests record as the training data's source")
    for verb in (tables, trainer):
        add_train_options(verb)
    for verb in (tables, reporter):
        verb.add_argument(
            "--evaluate", type=Path, metavar="DATA",
            help="first score the comparison store's models on their held-out cases of this BraTS folder "
            "(tables: the folder they trained on)",
        )  # fmt: skip
        verb.add_argument("--results", type=Path, default=RESULTS, help="evaluation folder (default: %(default)s)")
        verb.add_argument("--out", type=Path, default=PAGE, help="the page (default: %(default)s)")
    for verb in (tables, trainer, reporter, exporter):
        verb.add_argument("--comparison-store", type=Path, default=Path("runs/paper/store"))
        verb.add_argument("--bundled-store", type=Path, default=Path("model_store"))
    return parser


def evaluate_comparison_models(store: Path, data: Path, results: Path) -> None:
    """Score every comparison model in ``store`` on its held-out cases into ``results`` (rows already there kept)."""
    names = sorted(run.name for run in select(plan(), "tables") if (store / run.name / "manifest.json").is_file())
    if not names:
        logger.warning("no comparison model in %s to evaluate; the page reads %s as it is", store, results)
        return
    command = f"python -m training.evaluate --data {shlex.quote(str(data))} --store {store} --out {results}"
    run_evaluation(store, data, names, results, figures=False, command=command)


def main(argv: list[str] | None = None) -> int:
    """Run one verb; returns the process exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    stores = Stores(comparison=args.comparison_store, bundled=args.bundled_store)
    if args.verb == "export":
        return 0 if export_checkpoints(args.checkpoints, stores, args.source) else 1
    failed = 0
    if args.verb in ("tables", "train"):
        runs = select(plan(), "tables") if args.verb == "tables" else select(plan(), args.only, args.recipe_device)
        settings = TrainSettings(
            runs_dir=args.runs_dir, stores=stores, comparison_seconds=args.comparison_seconds,
            bundled_seconds=args.bundled_seconds, data=args.data, extra_data=args.extra_data, workers=args.workers,
            assignments=tuple(args.assignments),
        )  # fmt: skip
        if args.dry_run:
            print("\n".join(" ".join(fit_command(run, settings)) for run in runs))
            return 0
        failed = train(runs, settings, args.jobs)
    if args.verb in ("tables", "report"):
        data = args.evaluate
        if args.verb == "tables" and data is None:  # the folder the runs trained on holds their test cases
            data = args.data or Path(load_recipe(COMPARISON_RECIPE)[0]["data"])
        if data is not None:
            evaluate_comparison_models(args.comparison_store, data, args.results)
        report(args.comparison_store, args.results, args.out)
        logger.info("wrote %s", args.out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
