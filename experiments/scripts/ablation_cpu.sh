#!/usr/bin/env bash
# The recipe ablation (experiments/results/ablation.md) at CPU scale: one change at a time, equal optimizer steps,
# the same small SynNet, split and seed; then every arm scored on the 4 held-out BraTS 2018 cases and,
# as its own rows, on the BraTS 2023 case. Resumable: a finished arm is skipped, evaluation reuses rows.
#   bash experiments/scripts/ablation_cpu.sh [STEPS] [SRC] [DST]      (defaults: 300 T1 T2)
#   ARMS="h_tumour_weight k_histogram" bash experiments/scripts/ablation_cpu.sh 1500 T1 T1c   (only these arms)
set -euo pipefail
cd "$(dirname "$0")/../.."
steps=${1:-300}; src=${2:-T1}; dst=${3:-T2}
data=../shared/data/brats18
tag=$(echo "${src}_to_${dst}" | tr ',' '-' | tr 'A-Z' 'a-z')
root=runs/ablation/${tag}_${steps}steps
source experiments/scripts/cpu_scale.sh
common=(--data "$data" --src "$src" --dst "$dst" "${cpu_scale[@]}" --max-steps "$steps" --out "$root/store")
# d: the recipe adopted in session 4; e: d with L2; h: d with the tumour weight, the bundled unified model's recipe
d="--loss joint_l1 --mask-loss --intensity-augment"
e="--loss joint --mask-loss --intensity-augment"
h="$d --tumour-weight 5"
# the band edges of the bundled recipe's distribution term
bands="--histogram-bands $(recipe_option recipes/cpu_distribution.toml histogram_bands)"
m="$h --histogram-weight 3 $bands"  # the bundled recipe (arm m)
declare -A arms=(
  [a_joint]="--loss joint"
  [b_joint_mask]="--loss joint --mask-loss"
  [c_joint_l1_mask]="--loss joint_l1 --mask-loss"
  [d_joint_l1_mask_intensity]="$d"
  [e_joint_mask_intensity]="$e"
  [f_wide]="$d --features 32"
  [g_deep]="$d --depth 5"
  [h_tumour_weight]="$h"
  [i_l2_tumour_weight]="$e --tumour-weight 5"
  [j_tumour_weight_10]="$d --tumour-weight 10"
  [k_histogram]="$h --histogram-weight 10"
  [l_histogram_bands]="$h --histogram-weight 10 $bands"
  [m_histogram_bands_3]="$m"
  [n_context_1]="$h --context-slices 1"
  [o_context_2]="$h --context-slices 2"
  [p_median_anchor]="$h --target-anchor median"
  [q_m_wide]="$m --features 32"
  [r_m_median_anchor]="$m --target-anchor median --epochs 100000"  # epochs: let --max-steps set the length
)
chosen=$(if [ -n "${ARMS:-}" ]; then printf '%s\n' $ARMS; else printf '%s\n' "${!arms[@]}"; fi | sort)
for arm in $chosen; do
  if [ -z "${arms[$arm]:-}" ]; then echo "unknown arm $arm; known: ${!arms[*]}" >&2; exit 2; fi
  if [ -f "$root/store/$arm/manifest.json" ]; then continue; fi
  resume=()
  if [ -f "$root/runs/$arm/last.pt" ]; then resume=(--resume "$root/runs/$arm/last.pt"); fi
  # shellcheck disable=SC2086
  python -m training.fit "${common[@]}" ${arms[$arm]} --name "$arm" --run-dir "$root/runs/$arm" "${resume[@]}"
done
models=$(ls "$root/store" | paste -sd,)
python -m training.evaluate --data "$data" --also ../shared/data/brats23 --store "$root/store" \
  --models "$models" --out "$root/evaluation" --no-figures
