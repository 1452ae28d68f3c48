"""docs/ARCHITECTURE.md names every package and top-level module of the product, each under its package."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PRODUCT = ("synnet", "service", "training", "synnet_cli")


def sections(doc: str) -> dict[str, str]:
    """Package -> the lines of the doc's module tree under it (from ``<package>/`` at the start of a line to the
    next line that starts at the margin)."""
    found: dict[str, str] = {}
    current: str | None = None
    for line in doc.splitlines():
        if line[:1] not in ("", " "):
            current = next((p for p in PRODUCT if line.startswith(f"{p}/ ")), None)
        if current is not None:
            found[current] = found.get(current, "") + line + "\n"
    return found


def members(package: str) -> list[str]:
    """``name.py`` for each module of ``package`` (its __init__ aside), ``name/`` for each folder in it."""
    folder = REPO / package
    modules = [p.name for p in folder.glob("*.py") if p.name != "__init__.py"]
    folders = [f"{p.name}/" for p in folder.iterdir() if p.is_dir() and p.name != "__pycache__"]
    return sorted(modules + folders)


def named(name: str, text: str) -> bool:
    return re.search(rf"(?<![\w/.]){re.escape(name)}(?![\w])", text) is not None


@pytest.mark.parametrize("package", PRODUCT)
def test_every_module_and_folder_of_the_package_is_named_under_it(package: str) -> None:
    text = sections((REPO / "docs" / "ARCHITECTURE.md").read_text()).get(package)
    assert text is not None, f"docs/ARCHITECTURE.md has no '{package}/' section in its module tree"
    missing = [name for name in members(package) if not named(name, text)]
    assert missing == [], f"docs/ARCHITECTURE.md does not name {package}/{', '.join(missing)}"


def test_a_module_named_only_under_another_package_or_inside_a_path_does_not_count() -> None:
    tree = "synnet/   core\n  api.py   the API\nservice/  app\n  routes/  health.py, fitting/data.py\n"
    found = sections(tree)
    assert named("api.py", found["synnet"]) and not named("api.py", found["service"])
    assert named("routes/", found["service"]) and named("health.py", found["service"])
    assert not named("data.py", found["service"])
