#!/usr/bin/env bash
# The flip ensemble (python -m training.flip_ensemble, docs/ARCHITECTURE.md) for every dedicated model of a store:
# each model is copied into OUT with the average over its training flips built in where it helps on its own
# training cases (training/output_check.py RULE), then OUT is scored on the 4 held-out BraTS 2018 cases and the
# BraTS 2023 case (experiments/results/flip_ensemble.md). Nothing is copied into model_store: the models with at least
# one averaged target were copied by hand in session 13. Run it after any calibration. Resumable.
#   bash experiments/scripts/dedicated_flips.sh STORE OUT      (e.g. model_store runs/dedicated_flips)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scripts/cpu_scale.sh
change_dedicated_models training.flip_ensemble "$1" "$2"
score_store "$2/store" "$2/evaluation"
