"""The first-party imports of the repository's modules, read from the source (nothing is imported).

Used by the layout test (no import cycles) and the Dockerfile test (what the training image must copy).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("synnet", "training", "service", "synnet_cli", "experiments")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(*packages: str) -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file of ``packages``."""
    return {module_name(path): path for package in packages for path in sorted((REPO / package).rglob("*.py"))}


def imports(path: Path, known: Iterable[str]) -> set[str]:
    """The modules of ``known`` that ``path`` imports anywhere in it (function-level imports included).

    ``from package import name`` counts as an import of ``package.name`` when that is a module, and
    of ``package`` otherwise (a submodule's package is already initializing when it imports one).
    """
    known = set(known)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & known
            found |= submodules
            if len(submodules) < len(node.names):
                found.add(node.module)
    return found & known


def first_party_closure(*roots: str) -> set[str]:
    """Every first-party module that importing ``roots`` can reach (with the packages above each)."""
    every = modules(*PACKAGES)
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in seen or name not in every:
            continue
        seen.add(name)
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        pending += [*imports(every[name], every), *parents]
    return seen
