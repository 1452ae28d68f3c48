"""``python -m training.phantom --out DIR --cases N [--seed S]``: write generated BraTS-like cases."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from training.phantom.generate import generate_case
from training.phantom.write import CASE_PREFIX, case_seed, write_case


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.phantom",
        description=(
            "Generate BraTS-like brain MRI cases (T1, T1c, T2, FLAIR and a tumour segmentation) from the "
            "MNI152 template shipped with nilearn, in the BraTS 2021 layout: "
            f"DIR/{CASE_PREFIX}00000/{CASE_PREFIX}00000_t1.nii.gz, ..._seg.nii.gz. "
            "The same --seed always gives the same cases."
        ),
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="dataset folder to write into")
    parser.add_argument("--cases", type=int, default=4, metavar="N", help="number of cases (default: 4)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="dataset seed (default: 0)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.cases < 1:
        print(f"error: --cases must be at least 1, got {args.cases}", file=sys.stderr)
        return 2
    if args.seed < 0:
        print(f"error: --seed must be >= 0, got {args.seed}", file=sys.stderr)
        return 2
    for index in range(args.cases):
        started = time.perf_counter()
        case_id = f"{CASE_PREFIX}{index:05d}"
        try:
            folder = write_case(generate_case(case_seed(args.seed, index)), args.out / case_id, case_id)
        except OSError as exc:
            print(f"error: cannot write {args.out / case_id}: {exc}", file=sys.stderr)
            return 1
        if not args.quiet:
            print(f"[{index + 1}/{args.cases}] {folder} ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
