# The bundled unified SynNet's recipe as the lab trains it, sourced by experiments/scripts/unified_cpu.sh,
# fusion_cpu.sh, partial_subjects_cpu.sh and unified_partial_cpu.sh, so that the arms they compare differ only in
# what each one overrides.

source experiments/scripts/cpu_scale.sh

# fit_unified ROOT NAME SECONDS [MORE training.fit OPTIONS...]: train (or resume) ROOT/run on
# recipes/bundled/synnet_unified.toml (mean-and-max fusion, the loss weighed 5x inside the tumour, 4000 steps) for at
# most SECONDS of optimizer steps, and export ROOT/store/NAME; the options given win over the recipe's (an arm
# overrides one or two of them).
fit_unified() {
  local root=$1 name=$2 seconds=$3
  shift 3
  fit_once "$root/store/$name" "$root/run" --recipe recipes/bundled/synnet_unified.toml --time-limit "$seconds" \
    --out "$root/store" --name "$name" --run-dir "$root/run" "$@"
}
