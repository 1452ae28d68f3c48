"""The serving paths of ``bench/serve_speed.py --paths`` (part d, :mod:`serving_paths`) and their flags.

Standard library only: serve_speed's parts (a) and (b) run with torch alone.
"""

from __future__ import annotations

import argparse

# Each serving path, the service's environment for it; the first is the reference (today's path).
PATHS = {
    "TorchScript fp32": {},
    "export fp32": {"SYNNET_MODEL_FORMAT": "export"},
    "compiled fp32": {"SYNNET_MODEL_FORMAT": "export", "SYNNET_COMPILE": "true"},
    "compiled bf16": {"SYNNET_MODEL_FORMAT": "export", "SYNNET_COMPILE": "true", "SYNNET_PRECISION": "bf16"},
    # the same server started again: it finds what the first compiled path left in inductor's cache
    "compiled fp32 restarted": {"SYNNET_MODEL_FORMAT": "export", "SYNNET_COMPILE": "true"},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``serving paths (d)`` flags."""
    paths = parser.add_argument_group("serving paths (d)")
    paths.add_argument(
        "--paths", help=f"comma-separated, or 'all': {', '.join(PATHS)} (the first is the reference); default: no (d)"
    )
    paths.add_argument("--skip-inprocess", action="store_true", help="leave out (a) and (b)")
    paths.add_argument("--path-volumes", type=int, default=5, help="one-at-a-time volume requests per path")
    paths.add_argument("--path-rounds", type=int, default=3, help="rounds of four volumes in flight per path")


def chosen_paths(parser: argparse.ArgumentParser, given: str | None) -> dict[str, dict[str, str]]:
    """The paths ``--paths`` names, in its order (none without it); an unknown name is a usage error."""
    names = list(PATHS) if given == "all" else (given.split(",") if given else [])
    unknown = sorted(set(names) - set(PATHS))
    if unknown:
        parser.error(f"unknown path(s) {unknown}; use {', '.join(PATHS)}")
    return {name: PATHS[name] for name in names}
