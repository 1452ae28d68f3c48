#!/usr/bin/env bash
# The dedicated bundled models retrained on the CPU, each from its recipe (recipes/bundled/<name>.toml; a model whose
# recipe is a GPU one, recipes/h200.toml, with the CPU recipe recipes/cpu_distribution.toml and its own sources and
# targets, which is what the CPU retraining compared it with), then scored on the 4 held-out BraTS 2018 cases and the
# BraTS 2023 case. Nothing is copied into model_store: experiments/scripts/dedicated_adopt.py decides, per model,
# whether the new one replaces the bundled one.
# Resumable: an exported model is skipped, an interrupted one resumes from its last checkpoint.
#   bash experiments/scripts/dedicated_cpu.sh [STEPS]      (default: each recipe's max_steps)
set -euo pipefail
cd "$(dirname "$0")/../.."
steps=${1:-}
root=runs/dedicated_${steps:-recipe}steps
source experiments/scripts/cpu_scale.sh
# one line per dedicated bundled model: NAME RECIPE [--src SRC --dst DST]
runs=$(python - <<'PY'
from pathlib import Path
from training.fitting.recipe import load_recipe
for recipe in sorted(Path("recipes/bundled").glob("*.toml")):
    options, _ = load_recipe(recipe)
    if options.get("arch") == "unified":
        continue
    if options.get("device") == "cpu":
        print(recipe.stem, recipe)
    else:
        print(recipe.stem, "recipes/cpu_distribution.toml", "--src", ",".join(options["src"]), "--dst", ",".join(options["dst"]))
PY
)
while read -r name recipe configuration; do
  # shellcheck disable=SC2086
  fit_once "$root/store/$name" "$root/runs/$name" --recipe "$recipe" $configuration ${steps:+--max-steps "$steps"} \
    --out "$root/store" --name "$name" --run-dir "$root/runs/$name"
done <<< "$runs"
score_store "$root/store" "$root/evaluation"
