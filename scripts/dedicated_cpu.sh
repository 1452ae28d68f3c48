#!/usr/bin/env bash
# The ten dedicated bundled models (training/paper/plan.py: the paper's six configurations and the four
# "three to the missing one") retrained on the CPU with the bundled recipe (plan.py BUNDLED_RECIPE, arm m
# of docs/results/ablation.md) at the ablation's small scale (16 maps, 96 px crops, Adam, cosine), then
# scored on the 4 held-out BraTS 2018 cases and the BraTS 2023 case. Nothing is copied into model_store:
# scripts/dedicated_adopt.py decides, per model, whether the new one replaces the bundled one.
# Resumable: an exported model is skipped, an interrupted one resumes from its last checkpoint.
#   bash scripts/dedicated_cpu.sh [STEPS]      (default 2000 optimizer steps of batch 16 each)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-2000}
root=runs/dedicated_${steps}steps
source scripts/cpu_scale.sh
# one line per bundled run: NAME SRC DST LOSS OPTIONS...
runs=$(python - <<'PY'
from training.paper.plan import BUNDLED, plan
for run in plan():
    if run.kind == BUNDLED:
        print(run.name, ",".join(run.src), ",".join(run.dst), run.loss, *run.options)
PY
)
while read -r name src dst loss options; do
  if [ -f "$root/store/$name/manifest.json" ]; then continue; fi
  if [ -f "$root/runs/$name/last.pt" ]; then
    python -m training.fit --resume "$root/runs/$name/last.pt"
    continue
  fi
  # shellcheck disable=SC2086
  python -m training.fit --data ../shared/data/brats18 "${cpu_scale[@]}" \
    --src "$src" --dst "$dst" --loss "$loss" $options \
    --epochs 100000 --max-steps "$steps" \
    --out "$root/store" --name "$name" --run-dir "$root/runs/$name"
done <<< "$runs"
score_store "$root/store" "$root/evaluation"
