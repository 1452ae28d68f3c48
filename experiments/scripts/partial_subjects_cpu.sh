#!/usr/bin/env bash
# Issue 15's question "do the 9 T1+FLAIR-only subjects help?": the unified SynNet's recipe (mean fusion,
# as the session-5 model trained with them) at equal compute (4000 steps of batch 16) WITHOUT
# ../shared/data/brats18_t1_flair, scored on every configuration (experiments/results/history.md, "Partially observed
# subjects"). It is also the baseline arm of experiments/scripts/fusion_cpu.sh.
# Resumable: re-run after an interruption and training continues from its last checkpoint.
#   bash experiments/scripts/partial_subjects_cpu.sh [SECONDS]      (default 9000 s of optimizer steps)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scripts/unified_recipe.sh
root=runs/unified_no_partial
fit_unified "$root" synnet_unified_no_partial "${1:-9000}" --fusion mean --tumour-weight 1
python -m experiments.lookup_table --data ../shared/data/brats18 --also ../shared/data/brats23 \
  --store "$root/store" --model synnet_unified_no_partial
