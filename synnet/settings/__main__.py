"""``python -m synnet.settings``: the docs' tables of ``SYNNET_*`` settings, from the settings classes.

``--write`` rewrites the generated blocks of the docs; ``--check`` exits 1 naming the pages whose
blocks are stale (what the drift test checks); with neither, the tables print.
"""

from __future__ import annotations

import argparse
import sys

from synnet.settings.table import BLOCKS, block, stale, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synnet.settings", description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="rewrite the generated blocks of the docs")
    action.add_argument("--check", action="store_true", help="exit 1 when a docs block is stale")
    args = parser.parse_args(argv)
    if args.write:
        for path in write():
            print(f"wrote {path}")
        return 0
    if args.check:
        pages = stale()
        for path in pages:
            print(f"{path}: stale; run python -m synnet.settings --write", file=sys.stderr)
        return 1 if pages else 0
    print("\n\n".join(block(models) for _, models in BLOCKS.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
