"""``synnet models``: what the model store (or ``--server``) can synthesize."""

from __future__ import annotations

import argparse

from synnet.api import Synthesizer
from synnet.modalities import format_modalities
from synnet_cli.common import add_engine_options, table
from synnet_cli.remote import RemoteSynthesizer


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list the models and the configurations they serve")
    add_engine_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.server:
        body = RemoteSynthesizer(args.server, args.api_key).models()
        rows = [(m["name"], f"{','.join(m['src'])}->{','.join(m['dst'])}") for m in body["models"]]
        unavailable = [(u["name"], u["reason"]) for u in body["unavailable"]]
        where = args.server
    else:
        synthesizer = Synthesizer(args.store, args.device)
        rows = [(m.name, f"{format_modalities(m.src)}->{format_modalities(m.dst)}") for m in synthesizer.manifests]
        unavailable = [(u.name, u.reason) for u in synthesizer.unavailable]
        where = str(synthesizer.store)
    print(f"{len(rows)} model(s) in {where}")
    print(table(("model", "sources->targets"), sorted(rows, key=lambda r: r[1])))
    for name, reason in unavailable:
        print(f"unavailable: {name}: {reason}")
    return 0
