#!/usr/bin/env bash
# Do more subjects that lack some contrasts (EXTRA, e.g. ../shared/data/brats13_flair_t1c) help the dedicated
# SRC -> DST model? Decided on validation subjects, never on the test cases:
#   1. 3 of the 12 training subjects are set aside as validation subjects (split_cases, seed 0, fixed by id);
#   2. the bundled recipe (training/paper/plan.py bundled_recipe) is trained on the other 9, without and with EXTRA;
#   3. both are scored on the 3 validation subjects only; EXTRA is adopted when it raises both mean brain PSNR and
#      mean brain SSIM there;
#   4. adopted or not, the final model is trained on all 12 (+ EXTRA when adopted) and scored on the 4 test cases
#      and the BraTS 2023 case, for the record.
#   bash scripts/extra_subjects_cpu.sh SRC DST EXTRA        e.g.  FLAIR T1c ../shared/data/brats13_flair_t1c
# Resumable: an exported model is skipped, an interrupted one resumes from its last checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cpu_scale.sh
src=$1 dst=$2 extra=$3
name=synnet_$(echo "$src" | tr 'A-Z' 'a-z' | tr ',' '-')_to_$(echo "$dst" | tr 'A-Z' 'a-z' | tr ',' '-')
root=runs/extra_subjects/$name
recipe=$(python -c "
import sys; from training.paper.plan import bundled_recipe
print(*bundled_recipe(tuple(sys.argv[1].split(',')), tuple(sys.argv[2].split(','))))" "$src" "$dst")
val_cases=$(python -c "
import sys; from training.data.brats import find_cases, split_cases
test = set(sys.argv[1].split(','))
train = [c.case_id for c in find_cases('../shared/data/brats18') if c.case_id not in test]
print(','.join(split_cases(train, 3, seed=0)[1]))" "$test_cases")
echo "validation subjects: $val_cases"
# the validation subjects join --test-cases (the later value wins): never loaded by the fit, and the last weights
# are exported as for the bundled models (with --val-cases the best epoch by validation loss would be: another recipe)
held_out=(--test-cases "$test_cases,$val_cases")
common=(--data ../shared/data/brats18 --src "$src" --dst "$dst" "${cpu_scale[@]}" --epochs 100000 --max-steps 2000)
# shellcheck disable=SC2086
fit_once "$root/val/store/without" "$root/val/runs/without" "${common[@]}" "${held_out[@]}" $recipe \
  --out "$root/val/store" --name without --run-dir "$root/val/runs/without"
# shellcheck disable=SC2086
fit_once "$root/val/store/with" "$root/val/runs/with" "${common[@]}" "${held_out[@]}" $recipe --extra-data "$extra" \
  --out "$root/val/store" --name with --run-dir "$root/val/runs/with"
python -m training.evaluate --data ../shared/data/brats18 --store "$root/val/store" --cases "$val_cases" \
  --out "$root/val/evaluation" --no-figures --write-evaluation
adopted=$(python -c "
import sys; from pathlib import Path; from synnet.evaluation import EvaluationRecord
def means(name):
    targets = EvaluationRecord.model_validate_json(Path(sys.argv[1], name, 'evaluation.json').read_text()).targets
    return [sum(getattr(t, k) for t in targets.values()) / len(targets) for k in ('psnr_brain', 'ssim_brain')]
without, with_ = means('without'), means('with')
print(f'validation subjects, brain PSNR/SSIM: without {without[0]:.2f}/{without[1]:.4f}, with {with_[0]:.2f}/{with_[1]:.4f}',
      file=sys.stderr)
print('yes' if with_[0] > without[0] and with_[1] > without[1] else 'no')" "$root/val/store")
echo "adopt $extra for $src -> $dst: $adopted"
final_extra=()
if [ "$adopted" = yes ]; then final_extra=(--extra-data "$extra"); fi
# shellcheck disable=SC2086
fit_once "$root/final/store/$name" "$root/final/runs/$name" "${common[@]}" $recipe \
  "${final_extra[@]}" --out "$root/final/store" --name "$name" --run-dir "$root/final/runs/$name"
score_store "$root/final/store" "$root/final/evaluation"
