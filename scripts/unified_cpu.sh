#!/usr/bin/env bash
# The bundled unified SynNet (one model for every configuration) on the CPU, then its evaluation on
# all 28 single-target configurations beside the lookup-table baseline (docs/results.md).
# Resumable: re-run after an interruption and training continues from its last checkpoint.
#   bash scripts/unified_cpu.sh [SECONDS]      (default 5400 s of optimizer steps)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5400}
root=runs/unified
test_cases=Brats18_CBICA_ABM_1,Brats18_TCIA03_265_1,Brats18_TCIA10_637_1,Brats18_TCIA10_639_1
if [ ! -f "$root/store/synnet_unified/manifest.json" ]; then
  if [ -f "$root/run/last.pt" ]; then
    python -m training.fit --resume "$root/run/last.pt"
  else
    # the bundled recipe (training/paper/plan.py BUNDLED_RECIPE) on random source subsets, with the
    # T1+FLAIR-only subjects of brats18_t1_flair as partially observed cases
    python -m training.fit --arch unified --src T1,T1c,T2,FLAIR --dst T1,T1c,T2,FLAIR \
      --data ../shared/data/brats18 --extra-data ../shared/data/brats18_t1_flair \
      --test-cases "$test_cases" --val-cases 0 \
      --features 16 --slice-size 96 --batch-size 16 --optimizer adam --lr 1e-3 --schedule cosine \
      --loss joint_l1 --mask-loss --intensity-augment \
      --epochs 100000 --max-steps 4000 --time-limit "$seconds" --seed 0 \
      --out "$root/store" --name synnet_unified --run-dir "$root/run"
  fi
fi
# bundle it beside the dedicated models, then score it there (the table shows theirs beside it)
rm -rf model_store/synnet_unified && cp -r "$root/store/synnet_unified" model_store/
python -m training.evaluate --data ../shared/data/brats18 --also ../shared/data/brats23 \
  --store model_store --models synnet_unified --all-configurations --write-evaluation \
  --out docs/results/configurations --no-figures
