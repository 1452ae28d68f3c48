"""``python -m training.cards``: every model's card and the results page, from what the store records.

python -m training.cards                          # model_store/<name>/README.md and docs/results.md
python -m training.cards --data ../shared/data    # also each card.png and docs/blurred_truth.json
python -m training.cards --check                  # write nothing; exit 1 naming what is stale
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from synnet.model_card import CARD_FILE, FIGURE_FILE
from training.cards.card import figure_configuration, render_card
from training.cards.figure import draw_figure
from training.cards.reference import REFERENCE_FILE, measure_reference, read_reference, write_reference
from training.cards.results_page import RESULTS_PAGE, render_results
from training.cards.served import read_store, served

logger = logging.getLogger(__name__)


def generate(store: Path, results: Path | None, reference: Path) -> dict[Path, str]:
    """Every file's text as the generator makes it now, by path: each model's card, and the page unless ``results``
    is None. Figures are referenced when present; nothing is written."""
    models = read_store(store)
    routes = served(models)
    texts: dict[Path, str] = {}
    for model in models:
        figure = FIGURE_FILE if (model.folder / FIGURE_FILE).is_file() else None
        texts[model.folder / CARD_FILE] = render_card(model, routes, figure)
    if results is not None:
        texts[results] = render_results(models, routes, read_reference(reference))
    return texts


def stale(texts: dict[Path, str]) -> list[Path]:
    """The paths whose file is missing or differs from what the generator makes."""
    return [path for path, text in texts.items() if not path.is_file() or path.read_text() != text]


def draw(store: Path, data: Path, reference: Path) -> None:
    """The figures (from ``data``/brats23) and the blurred-truth reference (from ``data``/brats18), where present."""
    models = read_store(store)
    routes = served(models)
    if (data / "brats23").is_dir():
        for model in models:
            src, targets = figure_configuration(model, [r for r in routes if r.model.name == model.name])
            logger.info("figure of %s: %s", model.name, draw_figure(model.folder, data / "brats23", src, targets))
    if (data / "brats18").is_dir():
        cases = sorted({c for m in models for c in m.manifest.training_data.test_cases})
        write_reference(reference, measure_reference(data / "brats18", cases))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.cards", description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=Path("model_store"), help="model store (default: %(default)s)")
    parser.add_argument("--results", type=Path, default=RESULTS_PAGE, help="results page (default: %(default)s)")
    parser.add_argument("--no-results", dest="results", action="store_const", const=None, help="cards only")
    parser.add_argument(
        "--reference", type=Path, default=REFERENCE_FILE, help="blurred-truth reference (default: %(default)s)"
    )
    parser.add_argument(
        "--data", type=Path, help="folder holding brats23/ and brats18/: draw the figures, measure the reference"
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a file is stale")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for name, folder in (("model store", args.store), ("--data", args.data)):
        if folder is not None and not folder.is_dir():
            print(f"error: {name} {folder} is not a folder", file=sys.stderr)
            return 2
    if args.check:
        outdated = stale(generate(args.store, args.results, args.reference))
        for path in outdated:
            print(f"stale: {path}", file=sys.stderr)
        if outdated:
            print("run: python -m training.cards", file=sys.stderr)
        return 1 if outdated else 0
    if args.data is not None:
        draw(args.store, args.data, args.reference)
    for path, text in generate(args.store, args.results, args.reference).items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
