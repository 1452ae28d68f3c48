#!/usr/bin/env bash
# How T1 -> T2 quality grows with the number of training subjects (experiments/results/data_curve.md): the bundled recipe
# (recipes/bundled/synnet_t1_to_t2.toml: the CPU scale of recipes/cpu.toml and 2000 optimizer steps, as the bundled
# model was trained) on 3, 6 and 12 of the 12 training subjects, the same 4 held-out test cases for all, then scored on
# them and the BraTS 2023 case; the 6- and 12-subject runs again at another seed. Subsets are fixed before any
# score is seen: the training subjects sorted by id, every 4th from the first (3), every 2nd from the first and
# from the second (6: two disjoint halves), all (12).
# Nothing is copied into model_store. Resumable.
#   bash experiments/scripts/data_curve_cpu.sh                  (T1 -> T2: every run below, the cross-evaluation, the averages)
#   bash experiments/scripts/data_curve_cpu.sh T1,T1c,T2 FLAIR  (another bundled configuration: the two halves and all 12)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/scripts/cpu_scale.sh
src=${1:-T1} dst=${2:-T2}
config=$(echo "${src}_to_${dst}" | tr ',' '-' | tr 'A-Z' 'a-z')
root=runs/data_curve
# the bundled model's recipe for this configuration
recipe=recipes/bundled/synnet_$config.toml
mapfile -t train < <(find ../shared/data/brats18 -mindepth 1 -maxdepth 1 -xtype d -printf "%f\n" | grep -v -x -F -f <(tr , '\n' <<< "$test_cases") | sort)
subset() {  # subset NAME START STRIDE: a data folder of the test cases and every STRIDE-th training subject
  local folder=$root/data/$1 i
  rm -rf "$folder" && mkdir -p "$folder"  # links only: a rerun starts from the subset it names
  for case in ${test_cases//,/ }; do ln -sfn "$(realpath ../shared/data/brats18/$case)" "$folder/$case"; done
  for ((i = $2; i < ${#train[@]}; i += $3)); do
    ln -sfn "$(realpath "../shared/data/brats18/${train[i]}")" "$folder/${train[i]}"
  done
}
subset n03 0 4
subset n06a 0 2
subset n06b 1 2
subset n12 0 1
# all 12 but Brats18_2013_20_1, whose FLAIR is 0 on 34 % of its brain (experiments/results/diagnosis.md): a FLAIR target
# that teaches black brain; found on the training data alone
subset n11 0 1 && rm "$root/data/n11/Brats18_2013_20_1"
# T1 -> T2: each subset at seed 0, then the 6- and 12-subject ones again at seed 1 (how much a rerun moves beside
# the data); another configuration: the two halves and all 12 at seed 0 (and, for FLAIR, all but one)
runs="n06a:0 n06b:0 n12:0"
if [ "$dst" = FLAIR ]; then runs="$runs n11:0"; fi
if [ "$config" = t1_to_t2 ]; then runs="n03:0 n06a:0 n06b:0 n12:0 n06a:1 n06b:1 n12:1"; fi
for run in $runs; do
  name=${run%:*} seed=${run#*:}
  tag=${config}_$name$([ "$seed" = 0 ] || echo "_seed$seed")
  fit_once "$root/store/$tag" "$root/runs/$tag" --recipe "$recipe" --data "$root/data/$name" --seed "$seed" \
    --out "$root/store" --name "$tag" --run-dir "$root/runs/$tag"
done
score_store "$root/store" "$root/evaluation"
if [ "$config" != t1_to_t2 ]; then exit 0; fi
# each 6-subject model (seed 0) on the other half's subjects, which it did not see: which half transfers
half() { local i out=(); for ((i = $1; i < ${#train[@]}; i += 2)); do out+=("${train[i]}"); done; local IFS=,; echo "${out[*]}"; }
python -m training.evaluate --data ../shared/data/brats18 --store "$root/store" --models t1_to_t2_n06a \
  --cases "$(half 1)" --out "$root/cross_a_on_b" --no-figures
python -m training.evaluate --data ../shared/data/brats18 --store "$root/store" --models t1_to_t2_n06b \
  --cases "$(half 0)" --out "$root/cross_b_on_a" --no-figures
# the runs' outputs averaged (bagging the halves, two seeds) against one model on all 12
python experiments/scripts/data_curve_ensembles.py "$root/store"
