"""``python -m training.prepare --data DIR``: fill the training cache of a BraTS folder ahead of training.

``training.fit`` prepares the cases it trains on by itself; this command does it for a whole release at
once, before any run (on a node's local disk, say, so that the ranks of an 8-GPU run start at once), and
tells what the cache holds. It can be interrupted and run again: what is done stays done. One
``error: ...`` line and exit status 2 for a bad folder, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from synnet.errors import SynnetError
from synnet.settings.training import DEFAULT_TRAINING_CACHE
from training.data.brats import find_cases
from training.data.cache import cache_root, prepare_cache
from training.fitting.config import DataConfig, training_cache_dir


def build_parser() -> argparse.ArgumentParser:
    summary = "Decode every case of BraTS-layout folders once into the training cache training.fit streams from."
    parser = argparse.ArgumentParser(prog="python -m training.prepare", description=summary)
    parser.add_argument("--data", required=True, action="append", metavar="DIR", help="a BraTS folder (repeatable)")
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        help=f"where the cache goes (default: $SYNNET_TRAINING_CACHE, else {DEFAULT_TRAINING_CACHE})",
    )
    parser.add_argument("--workers", type=int, metavar="N", help="decoding processes (default: every core)")
    parser.add_argument("--strict-data", action="store_true", help="exit with an error if a case cannot be read")
    return parser


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    cache_dir = training_cache_dir(DataConfig(cache_dir=args.cache_dir))
    try:
        if args.workers is not None and args.workers < 1:
            raise SynnetError(f"--workers must be at least 1, got {args.workers}", code="invalid_option")
        for folder in args.data:
            started = time.perf_counter()
            summary = prepare_cache(
                find_cases(folder), cache_root(cache_dir, folder), workers=args.workers, strict=args.strict_data
            )
            seconds = time.perf_counter() - started
            size = folder_bytes(summary.root) / 2**20
            print(
                f"{folder}: {len(summary.entries)} cases in {summary.root} ({size:.0f} MiB), "
                f"{summary.written} prepared and {summary.reused} reused in {seconds:.0f} s"
                + (f"; skipped: {summary.failures()}" if summary.failed else "")
            )
    except (SynnetError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
