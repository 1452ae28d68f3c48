#!/usr/bin/env bash
# Issue 15's fusion ablation: the bundled unified SynNet's recipe and data (no partial subjects, 4000
# steps of batch 16) with one change, arms fused by mean AND maximum (--fusion mean_max) instead of the
# mean alone; scored uncalibrated on every configuration, beside synnet_unified_no_partial (the same
# recipe with mean fusion) in experiments/results/configurations.
# Resumable: re-run after an interruption and training continues from its last checkpoint.
#   bash experiments/scripts/fusion_cpu.sh [SECONDS]      (default 9000 s of optimizer steps)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scripts/unified_recipe.sh
root=runs/unified_mean_max
fit_unified "$root" synnet_unified_mean_max "${1:-9000}" --tumour-weight 1
python -m experiments.lookup_table --data ../shared/data/brats18 --also ../shared/data/brats23 \
  --store "$root/store" --model synnet_unified_mean_max
