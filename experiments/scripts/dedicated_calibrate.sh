#!/usr/bin/env bash
# Output calibration (python -m training.calibrate, docs/ARCHITECTURE.md) for every dedicated model of a
# store: each model is copied into OUT with its maps built in (a map is adopted only where it helps on
# training cases it was not fitted on), then OUT is scored on the 4 held-out BraTS 2018 cases and the
# BraTS 2023 case. Nothing is copied into model_store: experiments/scripts/dedicated_adopt.py OUT/store decides.
# Resumable: a model already calibrated in OUT is skipped.
#   bash experiments/scripts/dedicated_calibrate.sh STORE OUT      (e.g. model_store runs/dedicated_calibrated)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scripts/cpu_scale.sh
change_dedicated_models training.calibrate "$1" "$2"
score_store "$2/store" "$2/evaluation"
