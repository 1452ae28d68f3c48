# The bundled unified SynNet's training recipe, sourced by scripts/unified_cpu.sh, scripts/partial_subjects_cpu.sh and
# scripts/unified_partial_cpu.sh so that the arms they compare differ only in their data.

source scripts/cpu_scale.sh

# fit_unified ROOT NAME SECONDS [MORE training.fit OPTIONS...]: train (or resume) ROOT/run and export
# ROOT/store/NAME; the options given last win (the arms of an ablation add or override one each).
fit_unified() {
  local root=$1 name=$2 seconds=$3
  shift 3
  # the first part of the bundled recipe (training/paper/plan.py) on random source subsets; each caller adds
  # the rest of its arm (unified_cpu.sh: --fusion mean_max --tumour-weight 5)
  fit_once "$root/store/$name" "$root/run" --arch unified --src T1,T1c,T2,FLAIR --dst T1,T1c,T2,FLAIR \
    --data ../shared/data/brats18 "${cpu_scale[@]}" \
    --loss joint_l1 --mask-loss --intensity-augment \
    --epochs 100000 --max-steps 4000 --time-limit "$seconds" \
    --out "$root/store" --name "$name" --run-dir "$root/run" "$@"
}
