"""``python -m experiments.lookup_table``: an any-to-any model against the lookup table on every configuration.

    python -m experiments.lookup_table --data ../shared/data/brats18 --also ../shared/data/brats23 \\
        --store model_store --model synnet_unified   # experiments/results/configurations/synnet_unified/

Rows already in the output folder's ``per_configuration.csv`` are reused (delete it after retraining the model).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from experiments.lookup_table.compare import compare
from synnet.errors import SynnetError
from synnet.store import ModelStore

RESULTS = Path("experiments/results/configurations")


def main(argv: list[str] | None = None) -> int:
    """Score the model and the table; returns the process exit status."""
    parser = argparse.ArgumentParser(prog="python -m experiments.lookup_table", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the BraTS folder of the model's test cases")
    parser.add_argument("--also", type=Path, action="append", default=[], help="another BraTS folder, every case")
    parser.add_argument("--store", type=Path, default=Path("model_store"))
    parser.add_argument("--model", default="synnet_unified", help="an any-to-any model of the store")
    parser.add_argument("--cases", help="comma-separated test cases (default: those the manifest holds out)")
    parser.add_argument("--out", type=Path, help=f"report folder (default: {RESULTS}/<model>)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    command = "python -m experiments.lookup_table " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    try:
        model = ModelStore.load(args.store, "cpu", names=[args.model]).models[args.model]
    except (SynnetError, KeyError) as error:
        print(f"error: no usable model {args.model} in {args.store}: {error}", file=sys.stderr)
        return 2
    if not model.manifest.any_to_any:
        print(f"error: {args.model} is not an any-to-any model", file=sys.stderr)
        return 2
    cases = args.cases.split(",") if args.cases else list(model.manifest.training_data.test_cases)
    out = args.out or RESULTS / args.model
    compare(model, out, args.data, cases, args.also, args.store, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
