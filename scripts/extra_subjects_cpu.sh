#!/usr/bin/env bash
# Do more subjects that lack some contrasts (EXTRA, e.g. ../shared/data/brats13_flair_t1c) help the dedicated
# SRC -> DST model? The bundled model's recipe (recipes/bundled/<name>.toml) is trained again with EXTRA added to its
# training subjects; both are scored on the 4 BraTS 2018 subjects the bundled models hold out, which decide (the
# validation subjects: mean brain PSNR and SSIM both higher), and on the BraTS 2023 case, which is only reported.
#   bash scripts/extra_subjects_cpu.sh SRC DST EXTRA        e.g.  FLAIR T1c ../shared/data/brats13_flair_t1c
# Resumable: an exported model is skipped, an interrupted one resumes from its last checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cpu_scale.sh
src=$1 dst=$2 extra=$3
name=synnet_$(echo "$src" | tr 'A-Z' 'a-z' | tr ',' '-')_to_$(echo "$dst" | tr 'A-Z' 'a-z' | tr ',' '-')
root=runs/extra_subjects/$name
recipe=recipes/bundled/$name.toml
given=$(python -c "from training.fitting.recipe import load_recipe; import sys; print(load_recipe(sys.argv[1])[0].get('extra_data') or '')" "$recipe")
fit_once "$root/store/$name" "$root/runs/$name" --recipe "$recipe" --extra-data "${given:+$given,}$extra" \
  --out "$root/store" --name "$name" --run-dir "$root/runs/$name"
mkdir -p "$root/bundled" && cp -r "model_store/$name" "$root/bundled/"
score_store "$root/store" "$root/evaluation"
score_store "$root/bundled" "$root/evaluation_bundled"
python -c "
import sys; from pathlib import Path; from synnet.evaluation import EvaluationRecord
def means(store):
    targets = EvaluationRecord.model_validate_json(Path(store, sys.argv[2], 'evaluation.json').read_text()).targets
    return [sum(getattr(t, k) for t in targets.values()) / len(targets) for k in ('psnr_brain', 'ssim_brain')]
bundled, extra = means(sys.argv[1] + '/bundled'), means(sys.argv[1] + '/store')
print(f'validation subjects, brain PSNR/SSIM: bundled {bundled[0]:.2f}/{bundled[1]:.4f}, with the extra subjects '
      f'{extra[0]:.2f}/{extra[1]:.4f}: ' + ('adopt' if extra[0] > bundled[0] and extra[1] > bundled[1] else 'keep the bundled model'))
" "$root" "$name"
