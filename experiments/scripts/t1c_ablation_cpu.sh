#!/usr/bin/env bash
# Session 12's T1c arms (experiments/results/ablation.md): the bundled recipe at the dedicated compute (recipes/cpu_distribution.toml,
# 2000 steps) for SRC -> T1c with the distribution term at WEIGHT and the joint loss LOSS (joint_l1, the bundled one, or
# joint, the paper's L2), scored on the 4 held-out cases and the BraTS 2023 case.
#   bash experiments/scripts/t1c_ablation_cpu.sh [WEIGHT [LOSS [SRC]]]   (30 joint_l1 T1: the bundled T1 -> T1c; 10 joint: the L2 arm)
# Resumable: an exported model is skipped, an interrupted one resumes from its last checkpoint.
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scripts/cpu_scale.sh
weight=${1:-30}
loss=${2:-joint_l1}
src=${3:-T1}
name=synnet_$(echo "$src" | tr 'A-Z' 'a-z' | tr ',' '-')_to_t1c
root=runs/t1c_ablation_weight${weight}_${loss}
fit_once "$root/store/$name" "$root/runs/$name" --recipe recipes/cpu_distribution.toml \
  --set histogram_weight="$weight" --src "$src" --dst T1c --loss "$loss" \
  --out "$root/store" --name "$name" --run-dir "$root/runs/$name"
score_store "$root/store" "$root/evaluation"
