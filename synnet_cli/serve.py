"""``synnet serve [--host H] [--port P] [--model-store DIR]``: the REST service, as ``python -m service``."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    # Listed for `synnet --help`; synnet_cli.__main__ hands every option to python -m service.
    subparsers.add_parser("serve", help="run the REST service (= python -m service; see synnet serve --help)")


def run_service(argv: list[str]) -> int:
    from service.__main__ import main  # FastAPI and uvicorn only when serving

    main(argv)
    return 0
