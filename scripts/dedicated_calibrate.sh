#!/usr/bin/env bash
# Output calibration (python -m training.calibrate, docs/ARCHITECTURE.md) for every dedicated model of a
# store: each model is copied into OUT with its maps built in (a map is adopted only where it helps on
# training cases it was not fitted on), then OUT is scored on the 4 held-out BraTS 2018 cases and the
# BraTS 2023 case. Nothing is copied into model_store: scripts/dedicated_adopt.py OUT/store decides.
# Resumable: a model already calibrated in OUT is skipped.
#   bash scripts/dedicated_calibrate.sh STORE OUT      (e.g. model_store runs/dedicated_calibrated)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cpu_scale.sh
store=$1
out=$2
mkdir -p "$out/store" "$out/tables"
for folder in "$store"/*/; do
  name=$(basename "$folder")
  if [ ! -f "$folder/manifest.json" ] || [ -f "$out/store/$name/manifest.json" ]; then continue; fi
  if python -c 'import json, sys; sys.exit(not json.load(open(sys.argv[1])).get("any_to_any", False))' \
      "$folder/manifest.json"; then
    continue  # the unified model has its own calibration
  fi
  python -m training.calibrate --store "$store" --model "$name" --data ../shared/data/brats18 \
    --out "$out/store" > "$out/tables/$name.md"
done
score_store "$out/store" "$out/evaluation"
