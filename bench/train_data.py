"""Training at the scale of a whole BraTS release: the cache's cost and the fit's memory, by number of subjects.

A script, not a test (it takes tens of minutes and gigabytes of disk). For each size it builds a dataset of
that many subjects from the given cases under new ids (symlinks: no image is copied, every subject is
decoded), then measures

* preparation (``python -m training.prepare``, all cores, cold cache): seconds and cache bytes per subject;
* a short ``training.fit`` on the warm cache (the unified model at the bundled width by default): peak
  memory of the process and its DataLoader workers, sampled every 0.1 s from ``/proc/<pid>/smaps_rollup``
  as proportional set sizes, so a page shared by several processes counts once; private memory (anonymous
  and shared-memory pages) apart from the file-backed pages of the memory-mapped cache, which the kernel
  may drop; and the seconds from launch to the first optimizer step;

and, at the largest size, in one process, the slices per second the training DataLoader delivers (default
workers) against the slices per second the training step consumes on this machine.

    python bench/train_data.py --data ../shared/data/brats18 --sizes 16,64,256 --work /tmp/train_data
    python bench/train_data.py ... --compare-with /path/to/older/checkout   # the same fits with its trainer
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from synnet.dataset_layout import BRATS_2021, scan_dataset  # noqa: E402

FIRST_STEP = re.compile(r"first optimizer step done")
FIT = ["--arch", "unified", "--fusion", "mean_max", "--features", "16", "--slice-size", "96", "--batch-size", "16",
       "--optimizer", "adam", "--lr", "1e-3", "--mask-loss", "--tumour-weight", "5", "--intensity-augment",
       "--val-cases", "2", "--test-cases", "0", "--steps-per-epoch", "20", "--max-steps", "40", "--no-export",
       "--device", "cpu", "--seed", "0"]  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a BraTS folder whose cases are reused under new ids")
    parser.add_argument("--sizes", default="16,64,256", help="numbers of simulated subjects")
    parser.add_argument("--work", type=Path, required=True, help="scratch folder (datasets, cache, runs)")
    parser.add_argument("--steps", type=int, default=30, help="batches timed for the loader and the model")
    parser.add_argument("--compare-with", type=Path, help="a checkout whose training.fit runs the same fits too")
    parser.add_argument("--compare-sizes", default="16,64", help="sizes the --compare-with trainer runs")
    return parser.parse_args(argv)


def simulated_dataset(source: Path, n: int, out: Path) -> Path:
    """``n`` subjects ``Sim_0000...`` whose files link to ``source``'s cases in turn."""
    if out.exists():
        return out
    cases = scan_dataset(source)
    staging = out.with_name(out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    for i in range(n):
        case, case_id = cases[i % len(cases)], f"Sim_{i:04d}"
        folder = staging / case_id
        folder.mkdir(parents=True)
        for modality, path in case.files.items():
            (folder / BRATS_2021.file_name(case_id, modality)).symlink_to(path.resolve())
        if case.seg is not None:
            (folder / f"{case_id}_seg.nii.gz").symlink_to(case.seg.resolve())
    staging.rename(out)
    return out


def tree_memory(pid: int) -> tuple[int, int]:
    """(private, file-backed) bytes of ``pid`` and its descendants, as proportional set sizes."""
    private = file_backed = 0
    for member in [pid, *descendants(pid)]:
        try:
            text = Path(f"/proc/{member}/smaps_rollup").read_text()
        except OSError:
            continue
        fields = {k: int(v.split()[0]) * 1024 for k, v in (line.split(":", 1) for line in text.splitlines()[1:])}
        private += fields.get("Pss_Anon", 0) + fields.get("Pss_Shmem", 0)
        file_backed += fields.get("Pss_File", 0)
    return private, file_backed


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            todo += children
    return found


@dataclass
class FitMeasure:
    peak_private: int
    peak_file: int
    first_step: float


def measure_fit(repo: Path, data: Path, cache: Path, run_dir: Path) -> FitMeasure:
    """Run a short fit, sampling its memory; the seconds from launch to the first optimizer step."""
    command = [sys.executable, "-m", "training.fit", "--data", str(data), "--run-dir", str(run_dir), *FIT]
    if repo == REPO:
        command += ["--cache-dir", str(cache)]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=repo, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    first_step: list[float] = []
    log: list[str] = []

    def read_log() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line)
            if not first_step and FIRST_STEP.search(line):
                first_step.append(time.perf_counter() - started)

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    peak_private = peak_file = 0
    while process.poll() is None:
        private, file_backed = tree_memory(process.pid)
        peak_private, peak_file = max(peak_private, private), max(peak_file, file_backed)
        time.sleep(0.1)
    reader.join(timeout=5)
    if process.returncode != 0:
        raise SystemExit(f"fit failed ({process.returncode}):\n{''.join(log[-20:])}")
    return FitMeasure(peak_private, peak_file, first_step[0] if first_step else float("nan"))


def prepare(data: Path, cache: Path) -> tuple[float, int]:
    """Cold preparation of ``data``: (seconds, cache bytes)."""
    from training.data.cache import cache_root

    root = cache_root(cache, data)
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-m", "training.prepare", "--data", str(data), "--cache-dir", str(cache)],
                   cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    seconds = time.perf_counter() - started
    return seconds, sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def loader_and_model_rates(data: Path, cache: Path, steps: int) -> tuple[float, float, int]:
    """(slices/s the DataLoader delivers, slices/s the training step consumes, workers), in this process."""
    import torch

    from training.fitting.cli import build_parser, make_config
    from training.fitting.distributed import init_distributed
    from training.fitting.run import build_trainer

    argv = ["--data", str(data), "--cache-dir", str(cache), "--run-dir", str(cache.parent / "rates"), *FIT]
    config = make_config(vars(build_parser().parse_args(argv)))
    trainer = build_trainer(config, init_distributed("cpu"))
    trainer.train_set.set_epoch(0)
    batches, started = [], time.perf_counter()
    for batch in trainer.loader:
        batches.append(batch)
        if len(batches) == steps:
            break
    loader_rate = sum(len(b[0]) for b in batches) / (time.perf_counter() - started)
    trainer.train_step(*batches[0], torch.Generator().manual_seed(0))  # warm-up: allocator and kernel caches
    started = time.perf_counter()
    for index, (sources, targets, mask) in enumerate(batches[1:]):
        trainer.train_step(sources, targets, mask, torch.Generator().manual_seed(index))
    model_rate = sum(len(b[0]) for b in batches[1:]) / (time.perf_counter() - started)
    return loader_rate, model_rate, config.runtime.workers


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    cache = args.work / "cache"
    print(f"> {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {cpu_name()}, {os.cpu_count()} cores; "
          f"Python {platform.python_version()}; the unified model, 16 maps, 96 px windows, batch 16, "
          f"{FIT[FIT.index('--max-steps') + 1]} steps with a validation pass\n")  # fmt: skip
    print("| subjects | trainer | prepare s/subject | cache MiB/subject | peak private MiB | peak file-backed MiB "
          "| s to first step |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n in sizes:
        data = simulated_dataset(args.data, n, args.work / f"sim{n}")
        seconds, size = prepare(data, cache)
        fit = measure_fit(REPO, data, cache, args.work / "runs" / f"cache{n}")
        print(f"| {n} | streamed from the cache | {seconds / n:.2f} | {size / n / 2**20:.1f} | "
              f"{fit.peak_private / 2**20:.0f} | {fit.peak_file / 2**20:.0f} | {fit.first_step:.1f} |", flush=True)
        if args.compare_with is not None and str(n) in args.compare_sizes.split(","):
            old = measure_fit(args.compare_with, data, cache, args.work / "runs" / f"old{n}")
            print(f"| {n} | {args.compare_with.name} (in memory) | – | – | {old.peak_private / 2**20:.0f} | "
                  f"{old.peak_file / 2**20:.0f} | {old.first_step:.1f} |", flush=True)
    loader, model, workers = loader_and_model_rates(args.work / f"sim{sizes[-1]}", cache, args.steps)
    print(f"\nAt {sizes[-1]} subjects, DataLoader workers {workers}: the loader delivers {loader:.0f} slices/s, "
          f"the training step consumes {model:.1f} slices/s ({loader / model:.1f}x)")


if __name__ == "__main__":
    main()
