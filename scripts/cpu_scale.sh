# The small scale every CPU training script trains at (sourced by ablation_cpu.sh, dedicated_cpu.sh,
# flair_ablation_cpu.sh, t1c_ablation_cpu.sh, dedicated_calibrate.sh, dedicated_flips.sh and unified_recipe.sh), so
# that their runs compare: the 4 held-out BraTS 2018 test cases, 16 feature maps, 96 px windows, batch 16, Adam at
# 1e-3 with a cosine decay, seed 0.

test_cases=Brats18_CBICA_ABM_1,Brats18_TCIA03_265_1,Brats18_TCIA10_637_1,Brats18_TCIA10_639_1
cpu_scale=(--test-cases "$test_cases" --val-cases 0
           --features 16 --slice-size 96 --batch-size 16 --optimizer adam --lr 1e-3 --schedule cosine --seed 0)

# score_store STORE OUT: every model of STORE on the held-out cases and, as its own rows, the BraTS 2023 case,
# with each model's evaluation.json written beside it (what scripts/dedicated_adopt.py compares)
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

# distribution_options WEIGHT: the bundled recipe's training.fit options with the distribution term at WEIGHT
# (training/paper/plan.py distribution_recipe), one word each, for the ablation scripts' arms
distribution_options() {
  python -c "import sys; from training.paper.plan import distribution_recipe as r; print(*r(sys.argv[1]))" "$1"
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
