"""Recipes as files: the settings of a training run, in TOML, that a manifest can name and a reader can diff.

A recipe is a table of ``training.fit`` options under their flat names (as ``python -m training.fit -h``
spells them, with ``_`` for ``-``)::

    # recipes/bundled/synnet_t1_to_t2.toml
    extends = "../cpu.toml"      # optional: start from another recipe, relative to this file
    [fit]
    src = ["T1"]
    dst = ["T2"]
    histogram_weight = 3.0

``python -m training.fit --recipe FILE`` starts from it; ``--set KEY=VALUE`` and the ordinary flags override
it, so a recipe is a base, never a cage. The run's manifest records the recipe's path and the sha256 of its
resolved options (:func:`load_recipe`), so a model says what it was trained with, and a changed recipe is
detectable beside the models it made.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from training.fitting.config import OPTIONS, ConfigError, option_types

RUN_SPECIFIC = frozenset({"out", "name", "run_dir", "model_version", "export", "recipe", "recipe_sha256"})
ID_LISTS = frozenset({"test_cases", "val_cases", "extra_data"})  # a list in TOML, comma-separated on the command line


def load_recipe(path: str | Path) -> tuple[dict[str, Any], str]:
    """The resolved options of the recipe at ``path`` (its ``extends`` chain applied) and their sha256.

    Raises:
        ConfigError: a missing or unreadable file, a cycle of ``extends``, or a key that is not an option of
            ``training.fit`` (naming the file and the key).
    """
    options = _resolve(Path(path), ())
    return options, options_digest(options)


def options_digest(options: dict[str, Any]) -> str:
    """sha256 of resolved options, independent of key order and of list-vs-tuple."""
    canonical = json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_set(assignments: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as options: VALUE is read as TOML (``lr=0.01``, ``src=["T1","T2"]``, ``loss=joint``
    reads as the string it is not a TOML value of)."""
    options: dict[str, Any] = {}
    for item in assignments:
        key, equals, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not equals or not key:
            raise ConfigError(f"--set takes KEY=VALUE, got {item!r}")
        try:
            value = tomllib.loads(f"value = {text.strip()}")["value"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        options.update(_checked({key: value}, "--set"))
    return options


def _resolve(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    resolved = path.resolve()
    if resolved in seen:
        raise ConfigError(f"recipe {path} extends itself: {' -> '.join(str(p) for p in (*seen, resolved))}")
    try:
        document = tomllib.loads(path.read_text())
    except OSError as error:
        raise ConfigError(f"recipe {path} cannot be read: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"recipe {path} is not valid TOML: {error}") from None
    unknown = sorted(set(document) - {"extends", "fit"})
    if unknown:
        raise ConfigError(f"recipe {path}: unknown top-level keys {', '.join(unknown)} (expected extends and [fit])")
    base = _resolve(path.parent / document["extends"], (*seen, resolved)) if "extends" in document else {}
    return {**base, **_checked(document.get("fit", {}), f"recipe {path}")}


def _checked(options: dict[str, Any], where: str) -> dict[str, Any]:
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"{where}: not options of training.fit: {', '.join(unknown)} (see python -m training.fit -h)")
    specific = sorted(set(options) & RUN_SPECIFIC)
    if specific:
        raise ConfigError(f"{where}: {', '.join(specific)} belong to a run, not to a recipe")
    types = option_types()
    return {key: _typed(key, value, types[key], where) for key, value in options.items()}


def _typed(key: str, value: Any, hint: Any, where: str) -> Any:
    """``value`` as the option's type (a TOML integer for a float option, a list for a tuple), or ConfigError."""
    kinds = [
        k for k in (typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)) if k is not type(None)
    ]
    kind = kinds[0]
    if (typing.get_origin(kind) or kind) is tuple and isinstance(value, list):
        return tuple(value)
    if kind is str and key in ID_LISTS and isinstance(value, list):
        return ",".join(str(v) for v in value)
    if kind is str and key in ID_LISTS and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind in (int, bool, str) and type(value) is kind:
        return value
    if (typing.get_origin(kind) or kind) is tuple and isinstance(value, str):
        return value  # "T1,T1c" or "10,5,0.5": parsed by the command line's own checks
    expected = getattr(kind, "__name__", str(kind))
    raise ConfigError(f"{where}: {key} must be {expected}, got {value!r}")
