"""``synnet`` / ``python -m synnet_cli``: one command name for synthesis, dataset filling, scoring and serving."""

from __future__ import annotations

import argparse
import logging
import sys

from synnet import __version__
from synnet.errors import SynnetError
from synnet_cli import evaluate, fill, models, serve, synthesize
from synnet_cli.remote import RemoteError

COMMANDS = (synthesize, fill, evaluate, serve, models)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synnet", description="Synthesize missing brain-MRI contrasts (T1, T1c, T2, FLAIR)."
    )
    parser.add_argument("--version", action="version", version=f"synnet {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; a bad input or an unreachable server is one line on stderr and exit status 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["serve"]:  # every option belongs to python -m service, --help included
        return serve.run_service(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except (SynnetError, RemoteError) as exc:
        code = getattr(exc, "code", "error")
        print(f"synnet {args.command}: {code}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
