#!/usr/bin/env bash
# Session 12's T1c arms (docs/results/ablation.md): the bundled recipe at the dedicated compute (scripts/cpu_scale.sh,
# 2000 steps) for SRC -> T1c with the distribution term at WEIGHT and the joint loss LOSS (joint_l1, the bundled one, or
# joint, the paper's L2), scored on the 4 held-out cases and the BraTS 2023 case.
#   bash scripts/t1c_ablation_cpu.sh [WEIGHT [LOSS [SRC]]]   (30 joint_l1 T1: the bundled T1 -> T1c; 10 joint: the L2 arm)
# Resumable: an exported model is skipped, an interrupted one resumes from its last checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cpu_scale.sh
weight=${1:-30}
loss=${2:-joint_l1}
src=${3:-T1}
name=synnet_$(echo "$src" | tr 'A-Z' 'a-z' | tr ',' '-')_to_t1c
root=runs/t1c_ablation_weight${weight}_${loss}
recipe=$(distribution_options "$weight")
# shellcheck disable=SC2086
fit_once "$root/store/$name" "$root/runs/$name" --data ../shared/data/brats18 "${cpu_scale[@]}" \
  --src "$src" --dst T1c --loss "$loss" $recipe --epochs 100000 --max-steps 2000 \
  --out "$root/store" --name "$name" --run-dir "$root/runs/$name"
score_store "$root/store" "$root/evaluation"
