#!/usr/bin/env bash
# Session 12's question: with the partial subjects' whole-tumour masks now read, do the 9 T1+FLAIR-only subjects help
# the unified SynNet? The bundled recipe (experiments/scripts/unified_cpu.sh: mean-and-max fusion, tumour weight 5) at its compute
# (4000 steps) with ../shared/data/brats18_t1_flair added, calibrated and scored like the bundled model on all 28
# single-target configurations (experiments/results/history.md, "Partially observed subjects").
# Resumable: re-run after an interruption and training continues from its last checkpoint.
#   bash experiments/scripts/unified_partial_cpu.sh [SECONDS]      (default 5400 s of optimizer steps)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scripts/unified_recipe.sh
root=runs/unified_partial
fit_unified "$root" synnet_unified "${1:-5400}" --extra-data ../shared/data/brats18_t1_flair
python -m training.calibrate --store "$root/store" --model synnet_unified --data ../shared/data/brats18
python -m training.evaluate --data ../shared/data/brats18 --also ../shared/data/brats23 \
  --store "$root/store" --models synnet_unified --all-configurations --write-evaluation \
  --out "$root/eval" --no-figures
python -m experiments.lookup_table --data ../shared/data/brats18 --also ../shared/data/brats23 \
  --store "$root/store" --model synnet_unified --out "$root/eval/synnet_unified"
rm -rf experiments/results/configurations/synnet_unified_partial_masks
cp -r "$root/eval/synnet_unified" experiments/results/configurations/synnet_unified_partial_masks
