#!/usr/bin/env bash
# The GPU run behind the paper's tables (experiments/results/paper.md) and the bundled models whose recipe is a GPU
# one (recipes/h200.toml): every fit of experiments.paper whose recipe trains on cuda, on one GPU.
#
# It ran through this project's device tool (a CUDA machine with its own torch, reached for one
# call of at most 10 minutes, 64 MiB each way), so it brings its inputs along in .gpu/ (ignored by
# git): the 12 training cases as an experiments.gpu_pack file (and, when packed, the 9 T1+FLAIR-only subjects that
# the recipes with extra_data also train on), and wheels of the pure-Python dependencies the machine lacks.
# Arguments: comparison and bundled training seconds per run. Run from the repository root.
# Results come back under $OUT as slim float16 checkpoints (training.checkpoint.slim_checkpoint),
# which `python -m experiments.paper export` turns into model-store entries on this side.
set -euo pipefail
if [ "${1:-}" = fetch32 ]; then  # second call, same warm machine: the bundled models in float32
  python3 experiments/scripts/tar_in_bins.py /tmp/slim32 "$OUT" bundled32
  exit
fi
COMPARISON_SECONDS=${1:-50}
BUNDLED_SECONDS=${2:-130}
JOBS=${JOBS:-12}
OUT=${OUT:-/tmp/out}
TEST_CASES=Brats18_CBICA_ABM_1,Brats18_TCIA03_265_1,Brats18_TCIA10_637_1,Brats18_TCIA10_639_1
export PYTHONUNBUFFERED=1

started=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl
# kornia imports kornia_rs (its image I/O, unused here) at import time; its wheel is 5 MB we can't carry
mkdir -p /tmp/site/kornia_rs && echo "io = None" > /tmp/site/kornia_rs/__init__.py
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"

python3 -m experiments.gpu_pack unpack .gpu/brats18_train.pack --out /tmp/brats18 > /dev/null
extra_data=()
if [ -f .gpu/brats18_t1_flair.pack ]; then
  python3 -m experiments.gpu_pack unpack .gpu/brats18_t1_flair.pack --out /tmp/brats18_t1_flair > /dev/null
  extra_data=(--extra-data /tmp/brats18_t1_flair)
fi
echo "setup took $(( $(date +%s) - started )) s"

# a few seconds of one fit first: an incompatibility with the machine's torch shows here, not in 34 logs
python3 -m training.fit --data /tmp/brats18 --src T1,T1c --dst T2,FLAIR --test-cases "$TEST_CASES" --val-cases 0 \
  --time-limit 3 --epochs 1 --no-export --run-dir /tmp/smoke 2>&1 | grep -v "it/s\|step/s" | tail -4
echo "smoke test passed after $(( $(date +%s) - started )) s"

timeout 440 python3 -m experiments.paper train --recipe-device cuda --data /tmp/brats18 --jobs "$JOBS" \
  --runs-dir /tmp/runs --comparison-store /tmp/store_cmp --bundled-store /tmp/store_bundled \
  --comparison-seconds "$COMPARISON_SECONDS" --bundled-seconds "$BUNDLED_SECONDS" "${extra_data[@]}" \
  || echo "some runs failed"
echo "training took $(( $(date +%s) - started )) s"

python3 - <<'PY'
import os, tarfile
from pathlib import Path
import torch
from training.checkpoint import load_checkpoint, slim_checkpoint

out = Path(os.environ.get("OUT", "/tmp/out"))
slim_dir = Path("/tmp/slim")
slim_dir.mkdir(exist_ok=True)
full_dir = Path("/tmp/slim32")  # bundled models in float32, fetched by a second call while the machine is warm
full_dir.mkdir(exist_ok=True)
for run_dir in sorted(Path("/tmp/runs").iterdir()):
    if (run_dir / "last.pt").exists():
        checkpoint = load_checkpoint(run_dir / "last.pt")
        torch.save(slim_checkpoint(checkpoint, half=True), slim_dir / f"{run_dir.name}.pt")
        if not run_dir.name.startswith("paper_"):
            torch.save(slim_checkpoint(checkpoint), full_dir / f"{run_dir.name}.pt")
with tarfile.open(out / "logs.tar.gz", "w:gz") as archive:
    for log in Path("/tmp/runs").glob("*.log"):
        archive.add(log, arcname=log.name)
PY
python3 experiments/scripts/tar_in_bins.py /tmp/slim "$OUT" slim
echo "all took $(( $(date +%s) - started )) s"
