"""The settings, their docs and the names in use cannot drift apart.

The docs' tables are generated from :mod:`synnet.settings` (``python -m synnet.settings --write``);
these tests fail when a table is stale, when a ``SYNNET_*`` name appears in the product, the
images, Compose or the docs without being declared (a dead setting still documented, or a new one
read past the settings object), when a declared setting is read nowhere, and when Compose's own
defaults differ from the declared ones. The tests' own variables (``SYNNET_BRATS_DIR``) are not
the product's and are not looked for.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from synnet.settings import GROUPS, Settings, env_name
from synnet.settings.compose import ComposeVariables
from synnet.settings.groups import StoreSettings
from synnet.settings.table import block, splice, stale
from synnet.settings.training import TrainingSettings

REPO = Path(__file__).resolve().parents[1]
# Where the product, its images and its docs live; tests/ is not among them.
SEARCHED = ("synnet", "service", "training", "synnet_cli", "synnet_tools", "bench", "scripts", "docker", "docs")
SEARCHED_FILES = ("docker-compose.yml", "README.md")
NAME = re.compile(r"\bSYNNET_[A-Z0-9]+(?:_[A-Z0-9]+)*\b")
# The code that reads settings, apart from the settings package itself.
READERS = ("synnet", "service", "synnet_cli", "training")


def _tracked(paths: tuple[str, ...]) -> list[Path]:
    """The files git tracks or would track (new ones included) under ``paths``."""
    command = ["git", "ls-files", "--cached", "--others", "--exclude-standard", *paths]
    listed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    return [REPO / line for line in listed.stdout.splitlines() if (REPO / line).is_file()]


def _declared() -> set[str]:
    return {env_name(name) for model in (Settings, ComposeVariables, TrainingSettings) for name in model.model_fields}


def test_the_docs_tables_are_the_generated_ones() -> None:
    assert stale() == [], "run: python -m synnet.settings --write"


def test_the_generated_block_follows_the_fields() -> None:
    class WithANewSetting(StoreSettings):
        cache_folder: Path = Path("cache")

    page = "intro\n<!-- settings:start -->\nold table\n<!-- settings:end -->\noutro\n"
    written = splice(page, "settings", block((WithANewSetting,)))
    assert written.startswith("intro\n<!-- settings:start -->\n") and written.endswith("<!-- settings:end -->\noutro\n")
    assert "old table" not in written and "| `SYNNET_CACHE_FOLDER` | `cache` |" in written
    with pytest.raises(ValueError, match="settings:start"):
        splice("no markers", "settings", "table")


def test_the_check_command_agrees() -> None:
    done = subprocess.run([sys.executable, "-m", "synnet.settings", "--check"], cwd=REPO, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


def test_every_synnet_name_in_use_is_declared() -> None:
    undeclared: dict[str, set[str]] = {}
    for path in _tracked(SEARCHED) + [REPO / name for name in SEARCHED_FILES]:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for name in set(NAME.findall(text)) - _declared():
            undeclared.setdefault(name, set()).add(str(path.relative_to(REPO)))
    assert undeclared == {}, "declare these in synnet/settings (or remove them)"


def test_every_setting_is_read_by_the_product() -> None:
    code = "\n".join(
        path.read_text(encoding="utf-8")
        for path in _tracked(READERS)
        if path.suffix == ".py" and "synnet/settings/" not in path.as_posix()
    )
    # a setting may be read through a method of its group (batch_size_for reads max_batch_size)
    readers: dict[str, set[str]] = {}
    for group in GROUPS:
        for attr, member in vars(group).items():
            function = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
            if inspect.isfunction(function) and not attr.startswith("_"):
                for field in re.findall(r"self\.(\w+)", inspect.getsource(function)):
                    readers.setdefault(field, set()).add(attr)
    unread = [
        name
        for name in Settings.model_fields
        if not any(re.search(rf"\.{used}\b", code) for used in {name} | readers.get(name, set()))
    ]
    assert unread == [], "settings nothing reads: remove them, with their docs"


def test_compose_defaults_are_the_declared_ones() -> None:
    text = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    declared = {env_name(n): f.default for m in (Settings, ComposeVariables) for n, f in m.model_fields.items()}
    defaults = re.findall(r"\$\{(SYNNET_\w+):-([^}]*)\}", text)
    assert {name for name, _ in defaults} >= {"SYNNET_HTTP_PORT", "SYNNET_REPLICAS", "SYNNET_UID", "SYNNET_LOG_LEVEL"}
    assert [(name, str(declared[name])) for name, _ in defaults] == defaults
    lb = yaml.safe_load(text)["services"]["lb"]["environment"]
    assert lb["SYNNET_UPSTREAM_SERVERS"] == ComposeVariables.model_fields["upstream_servers"].default
