#!/usr/bin/env bash
# The bundled unified SynNet (one model for every configuration) on the CPU, then its evaluation on
# all 28 single-target configurations beside the lookup-table baseline (experiments/results/configurations).
# Its evaluation rows are recomputed only for cases missing from experiments/results/configurations: delete
# experiments/results/configurations/synnet_unified/per_configuration.csv after retraining.
# Resumable: re-run after an interruption and training continues from its last checkpoint.
#   bash experiments/scripts/unified_cpu.sh [SECONDS]      (default 5400 s of optimizer steps)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scripts/unified_recipe.sh
root=runs/unified
# the recipe with the arms fused by mean and maximum (experiments/scripts/fusion_cpu.sh measured it against the mean
# alone), the loss weighed 5x inside the tumour (experiments/results/ablation.md, arm h), and without the T1+FLAIR-only
# subjects (experiments/scripts/partial_subjects_cpu.sh: at this compute they cost the other configurations more than they
# give T1 <-> FLAIR)
fit_unified "$root" synnet_unified "${1:-5400}"
# bundle it beside the dedicated models with its output calibration and then its flip ensemble (each learnt or
# checked on its training cases only), then score it there (the table shows theirs beside it)
rm -rf model_store/synnet_unified && cp -r "$root/store/synnet_unified" model_store/
python -m training.calibrate --store model_store --model synnet_unified --data ../shared/data/brats18
python -m training.flip_ensemble --store model_store --model synnet_unified --data ../shared/data/brats18
python -m training.evaluate --data ../shared/data/brats18 --also ../shared/data/brats23 \
  --store model_store --models synnet_unified --all-configurations --write-evaluation \
  --out experiments/results/configurations --no-figures
python -m experiments.lookup_table --data ../shared/data/brats18 --also ../shared/data/brats23 \
  --store model_store --model synnet_unified
