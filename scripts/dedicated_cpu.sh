#!/usr/bin/env bash
# The dedicated bundled models (training/paper/plan.py: the paper's six configurations, the four "three to
# the missing one", the T1c and the FLAIR models) retrained on the CPU with the bundled recipe (plan.py
# bundled_recipe, arm m of docs/results/ablation.md) at the ablation's small scale (16 maps, 96 px crops, Adam,
# cosine), then
# scored on the 4 held-out BraTS 2018 cases and the BraTS 2023 case. Nothing is copied into model_store:
# scripts/dedicated_adopt.py decides, per model, whether the new one replaces the bundled one.
# Resumable: an exported model is skipped, an interrupted one resumes from its last checkpoint.
#   bash scripts/dedicated_cpu.sh [STEPS]      (default 2000 optimizer steps of batch 16 each)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-2000}
root=runs/dedicated_${steps}steps
source scripts/cpu_scale.sh
# one line per bundled run: NAME SRC DST LOSS OPTIONS... (with the partially observed subjects and its own step
# budget where the plan gives them)
runs=$(python - <<'PY'
from training.paper.plan import BUNDLED, plan
for run in plan():
    if run.kind == BUNDLED:
        extra = ("--extra-data", "../shared/data/brats18_t1_flair") if run.partial_subjects else ()
        steps = ("--max-steps", str(run.cpu_steps)) if run.cpu_steps else ()
        print(run.name, ",".join(run.src), ",".join(run.dst), run.loss, *run.options, *extra, *steps)
PY
)
while read -r name src dst loss options; do
  # shellcheck disable=SC2086
  # the run's own options last, so that a step budget of its own (plan.py CPU_STEPS) wins over STEPS
  fit_once "$root/store/$name" "$root/runs/$name" --data ../shared/data/brats18 "${cpu_scale[@]}" \
    --src "$src" --dst "$dst" --loss "$loss" --epochs 100000 --max-steps "$steps" \
    --out "$root/store" --name "$name" --run-dir "$root/runs/$name" $options
done <<< "$runs"
score_store "$root/store" "$root/evaluation"
