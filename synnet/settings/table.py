"""The docs' tables of settings, written from the settings classes between markers in the docs.

Each table lists a group's variables with their default and meaning, taken from the fields, so the
docs cannot describe a setting that is gone or miss one that came. A docs page holds one generated
block between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``; everything else on it is prose.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from synnet.settings import GROUPS
from synnet.settings.compose import ComposeVariables
from synnet.settings.errors import env_name
from synnet.settings.training import TrainingSettings

REPO = Path(__file__).resolve().parent.parent.parent
# docs page (relative to the repository) → (marker, the classes its block lists)
BLOCKS: dict[str, tuple[str, Sequence[type[BaseModel]]]] = {
    "docs/service.md": ("settings", GROUPS),
    "docs/deployment.md": ("compose-variables", (ComposeVariables,)),
    "docs/training.md": ("training-settings", (TrainingSettings,)),
}


def shown_default(info: FieldInfo) -> str:
    """The default as the docs print it: the field's ``shown`` text, else its value in code style."""
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if extra.get("shown"):
        return str(extra["shown"])
    value = info.get_default(call_default_factory=True)
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    if value in (None, [], ""):
        return "none"
    return f"`{value}`"


def table(model: type[BaseModel]) -> str:
    """One group as a titled markdown table: variable, default, meaning."""
    title = getattr(model, "title", "") or model.__name__
    rows = [f"**{title}**", "", "| Variable | Default | Meaning |", "|---|---|---|"]
    for name, info in model.model_fields.items():
        rows.append(f"| `{env_name(name)}` | {shown_default(info)} | {info.description} |")
    return "\n".join(rows)


def block(models: Sequence[type[BaseModel]]) -> str:
    """The generated text of a docs block: every model's table."""
    return "\n\n".join(table(model) for model in models)


def splice(text: str, marker: str, body: str) -> str:
    """``text`` with what stands between ``marker``'s start and end comments replaced by ``body``."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    head, found, rest = text.partition(start)
    _, found_end, tail = rest.partition(end)
    if not (found and found_end):
        raise ValueError(f"no {start} ... {end} block")
    return f"{head}{start}\n{body}\n{end}{tail}"


def regenerated(root: Path = REPO) -> dict[Path, tuple[str, str]]:
    """Each docs page → (its text now, its text with the blocks written anew)."""
    pages: dict[Path, tuple[str, str]] = {}
    for page, (marker, models) in BLOCKS.items():
        path = root / page
        text = path.read_text(encoding="utf-8")
        pages[path] = (text, splice(text, marker, block(models)))
    return pages


def stale(root: Path = REPO) -> list[Path]:
    """The docs pages whose blocks differ from what the settings generate."""
    return [path for path, (now, new) in regenerated(root).items() if now != new]


def write(root: Path = REPO) -> list[Path]:
    """Write the blocks anew; returns the pages that changed."""
    changed = []
    for path, (now, new) in regenerated(root).items():
        if now != new:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed
