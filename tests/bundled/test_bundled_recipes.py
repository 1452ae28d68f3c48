"""Every bundled model names its recipe: the file exists, parses, has the digest the manifest recorded, and holds
the options the model was trained with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.fitting.config import FitConfig
from training.fitting.recipe import load_recipe

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = sorted(REPO.glob("model_store/*/manifest.json"))


@pytest.mark.parametrize("manifest_path", MANIFESTS, ids=lambda p: p.parent.name)
def test_a_bundled_model_names_the_recipe_it_was_trained_with(manifest_path: Path) -> None:
    manifest = json.loads(manifest_path.read_text())
    training = manifest["training"]
    recipe = REPO / training["recipe"]
    assert recipe.is_file(), f"{manifest['name']} names {training['recipe']}, which does not exist"
    options, digest = load_recipe(recipe)
    assert training["recipe_sha256"] == digest, f"{training['recipe']} changed since {manifest['name']} was made"

    trained = FitConfig.from_json({**training, "src": manifest["src"], "dst": manifest["dst"]}).to_json()
    made = FitConfig().with_options(**options).to_json()
    differing = {
        key: (made[key], trained[key])
        for key in options
        if json.dumps(made[key]) != json.dumps(trained[key]) and not _same_cases(key, made[key], trained[key])
    }
    assert not differing, f"{training['recipe']} (recipe, model): {differing}"


def _same_cases(key: str, recipe: object, recorded: object) -> bool:
    """A GPU run read the cases from a copy of the recipe's folder (another path, the same folder name)."""
    return key == "data" and Path(str(recipe)).name == Path(str(recorded)).name


def test_every_recipe_file_parses() -> None:
    files = sorted((REPO / "recipes").rglob("*.toml"))
    assert len(files) >= len(MANIFESTS)
    for path in files:
        load_recipe(path)
