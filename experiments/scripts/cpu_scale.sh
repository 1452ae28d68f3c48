# What the lab's CPU scripts share (sourced by each of them): the CPU scale of recipes/cpu.toml, the resumable fit,
# the scoring of a store, and the calibration or flip check of every dedicated model of a store.

# recipe_option RECIPE KEY: one option of RECIPE, its extends chain resolved (a list comma-joined, as its flag takes it)
recipe_option() {
  python -c 'import sys; from training.fitting.recipe import load_recipe
value = load_recipe(sys.argv[1])[0][sys.argv[2]]
print(",".join(map(str, value)) if isinstance(value, tuple) else value)' "$1" "$2"
}

# the scale every CPU run of the lab trains at, so that their runs compare: recipes/cpu.toml's held-out cases, width,
# windows, batch, optimizer and seed as training.fit flags (its loss and weights are what an ablation's arms vary)
test_cases=$(recipe_option recipes/cpu.toml test_cases)
cpu_scale=()
for key in test_cases val_cases features slice_size batch_size optimizer lr schedule seed; do
  cpu_scale+=("--${key//_/-}" "$(recipe_option recipes/cpu.toml "$key")")
done

# score_store STORE OUT: every model of STORE on the held-out cases and, as its own rows, the BraTS 2023 case,
# with each model's evaluation.json written beside it (what experiments/scripts/dedicated_adopt.py compares)
score_store() {
  python -m training.evaluate --data ../shared/data/brats18 --also ../shared/data/brats23 --store "$1" \
    --write-evaluation --out "$2" --no-figures
}

# fit_once MODEL_DIR RUN_DIR [training.fit OPTIONS...]: the resumable training step of these scripts: nothing when
# MODEL_DIR already holds the exported model, a resume from RUN_DIR's last checkpoint when there is one, else the fit
fit_once() {
  local model_dir=$1 run_dir=$2
  shift 2
  if [ -f "$model_dir/manifest.json" ]; then return; fi
  if [ -f "$run_dir/last.pt" ]; then
    python -m training.fit --resume "$run_dir/last.pt"
  else
    python -m training.fit "$@"
  fi
}

# change_dedicated_models MODULE STORE OUT: run python -m MODULE (training.calibrate or training.flip_ensemble, each
# checked on the model's training cases) on every dedicated model of STORE, writing the changed model into OUT/store
# and its checks into OUT/tables/NAME.md; a model already in OUT/store is skipped (resumable). The unified model
# is left out: its 28 configurations are scored by its own script (unified_cpu.sh)
change_dedicated_models() {
  local module=$1 store=$2 out=$3 folder name
  mkdir -p "$out/store" "$out/tables"
  for folder in "$store"/*/; do
    name=$(basename "$folder")
    if [ ! -f "$folder/manifest.json" ] || [ -f "$out/store/$name/manifest.json" ]; then continue; fi
    if python -c 'import json, sys; sys.exit(not json.load(open(sys.argv[1])).get("any_to_any", False))' \
        "$folder/manifest.json"; then
      continue
    fi
    python -m "$module" --store "$store" --model "$name" --data ../shared/data/brats18 \
      --out "$out/store" > "$out/tables/$name.md"
  done
}
