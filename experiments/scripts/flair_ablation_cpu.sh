#!/usr/bin/env bash
# Session 11's ablation for FLAIR without T2 and for T1 <-> FLAIR (experiments/results/ablation.md): dedicated
# models at the dedicated compute (recipes/cpu_distribution.toml, 2000 steps), with and without the 9 subjects that
# have only T1 and FLAIR (--extra-data), then scored on the 4 held-out cases and the BraTS 2023 case.
#   bash experiments/scripts/flair_ablation_cpu.sh [WEIGHT [STEPS]]   (the term's weight: 3, the bundled recipe, or 10; 2000 steps)
# The partial subjects' whole-tumour masks are read since 6c3fc78 (the "masks not read" rows of ablation.md came from
# 9f1f72c). Resumable: an exported model is skipped (clear runs/flair_ablation_* to remake one), an interrupted one
# resumes from its last checkpoint.
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scripts/cpu_scale.sh
weight=${1:-3}
steps=${2:-2000}
root=runs/flair_ablation_weight${weight}_${steps}steps
partial=../shared/data/brats18_t1_flair
fit() {  # NAME SRC DST [more training.fit options]: the bundled recipe with the term at WEIGHT
  local name=$1 src=$2 dst=$3
  shift 3
  fit_once "$root/store/$name" "$root/runs/$name" --recipe recipes/cpu_distribution.toml \
    --set histogram_weight="$weight" --src "$src" --dst "$dst" --max-steps "$steps" \
    --out "$root/store" --name "$name" --run-dir "$root/runs/$name" "$@"
}
fit synnet_t1_to_flair_partial T1 FLAIR --extra-data "$partial"
fit synnet_t1c_to_flair T1c FLAIR
if [ "$weight" = 3 ] && [ "$steps" = 2000 ]; then
  fit synnet_t1_to_flair T1 FLAIR
  fit synnet_t1-t1c_to_flair T1,T1c FLAIR
  fit synnet_flair_to_t1_partial FLAIR T1 --extra-data "$partial"
  fit synnet_flair_to_t1 FLAIR T1
fi
score_store "$root/store" "$root/evaluation"
