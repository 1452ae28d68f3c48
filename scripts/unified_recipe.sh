# The bundled unified SynNet's training recipe, sourced by scripts/unified_cpu.sh and
# scripts/partial_subjects_cpu.sh so that the two arms they compare differ only in their data.

unified_test_cases=Brats18_CBICA_ABM_1,Brats18_TCIA03_265_1,Brats18_TCIA10_637_1,Brats18_TCIA10_639_1

# fit_unified ROOT NAME SECONDS [MORE training.fit OPTIONS...]: train (or resume) ROOT/run and export
# ROOT/store/NAME; the options given last win (the arms of an ablation add or override one each).
fit_unified() {
  local root=$1 name=$2 seconds=$3
  shift 3
  if [ -f "$root/store/$name/manifest.json" ]; then return; fi
  if [ -f "$root/run/last.pt" ]; then
    python -m training.fit --resume "$root/run/last.pt"
    return
  fi
  # the bundled recipe (training/paper/plan.py BUNDLED_RECIPE) on random source subsets
  python -m training.fit --arch unified --src T1,T1c,T2,FLAIR --dst T1,T1c,T2,FLAIR \
    --data ../shared/data/brats18 --test-cases "$unified_test_cases" --val-cases 0 \
    --features 16 --slice-size 96 --batch-size 16 --optimizer adam --lr 1e-3 --schedule cosine \
    --loss joint_l1 --mask-loss --intensity-augment \
    --epochs 100000 --max-steps 4000 --time-limit "$seconds" --seed 0 \
    --out "$root/store" --name "$name" --run-dir "$root/run" "$@"
}
