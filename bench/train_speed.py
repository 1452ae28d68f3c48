"""Training throughput of SynNet: samples/s at batch 16, 240×240, eager vs channels_last.

A script, not a test: it takes a few minutes on a 2-core CPU. Each mode builds its own model and
runs ``--warmup`` optimizer steps (allocator and oneDNN primitive caches); then the timed steps
are interleaved, one step of each mode in turn, so that load from other processes and the
machine's drift hit every mode alike (timing the modes one after the other favoured whichever
came second by up to 1.5× on a shared machine). The median of ``--steps`` steps is reported.
A step is what ``training.fit`` does per batch: forward, the training loss, backward and an SGD
update. The achieved GFLOP/s uses the FLOPs of one step
counted by ``torch.utils.flop_counter`` (convolutions and matmuls, forward and backward).

    python bench/train_speed.py                    # the table for this machine
    python bench/train_speed.py --device cuda --modes eager,channels_last,bf16,bf16+channels_last
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from contextlib import nullcontext

import torch
from torch.utils.flop_counter import FlopCounterMode

from training.losses import build_loss
from training.models import create_model

MODES = ("eager", "channels_last", "bf16", "bf16+channels_last")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="synnet")
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--n-src", type=int, default=1)
    parser.add_argument("--n-dst", type=int, default=1)
    parser.add_argument("--loss", default="joint")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--size", type=int, default=240, help="slice side in pixels")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--modes", default="eager,channels_last", help=f"comma-separated, from {', '.join(MODES)}")
    args = parser.parse_args(argv)
    args.modes = args.modes.split(",")
    unknown = set(args.modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes {sorted(unknown)}; choose from {', '.join(MODES)}")
    return args


def make_step(args: argparse.Namespace, mode: str):
    """A closure running one training step in ``mode``, plus the batch it trains on."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = create_model(args.arch, args.n_src, args.n_dst, features=args.features, depth=args.depth).to(device)
    channels_last = "channels_last" in mode
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    loss_fn = build_loss(args.loss).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    sources = torch.rand(args.batch_size, args.n_src, args.size, args.size, device=device)
    targets = torch.rand(args.batch_size, args.n_dst, args.size, args.size, device=device)
    if channels_last:
        sources = sources.contiguous(memory_format=torch.channels_last)

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16) if "bf16" in mode else nullcontext()

    def step(x: torch.Tensor = sources, y: torch.Tensor = targets) -> None:
        with autocast():
            pred = model(x)
        loss = loss_fn(pred.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step, sources, targets


def step_flops(args: argparse.Namespace) -> float:
    """FLOPs of one training step at the benchmark's batch size (counted at batch 1, scaled)."""
    step, sources, targets = make_step(args, "eager")
    counter = FlopCounterMode(display=False)
    with counter:
        step(sources[:1], targets[:1])
    return counter.get_total_flops() * args.batch_size


def time_modes(args: argparse.Namespace) -> dict[str, list[float]]:
    """Seconds per step of every mode, measured round-robin after each mode's warm-up."""
    steps = {mode: make_step(args, mode)[0] for mode in args.modes}
    for step in steps.values():
        for _ in range(args.warmup):
            step()
    seconds: dict[str, list[float]] = {mode: [] for mode in args.modes}
    for _ in range(args.steps):
        for mode, step in steps.items():
            start = time.perf_counter()
            step()
            seconds[mode].append(time.perf_counter() - start)
    return seconds


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    flops = step_flops(args)
    print(
        f"{args.arch} features={args.features} depth={args.depth} k={args.n_src} m={args.n_dst} loss={args.loss}, "
        f"batch {args.batch_size} × {args.size}², {args.device} ({platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads), torch {torch.__version__}; "
        f"{flops / 1e9 / args.batch_size:.1f} GFLOP per sample per step; "
        f"median of {args.steps} steps after {args.warmup} warm-up"
    )
    print()
    medians = {mode: statistics.median(times) for mode, times in time_modes(args).items()}
    reference = medians.get("eager", next(iter(medians.values())))
    print("| mode | s/step (median) | samples/s | GFLOP/s | speed vs eager |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for mode, median in medians.items():
        print(
            f"| {mode} | {median:.2f} | {args.batch_size / median:.2f} | {flops / median / 1e9:.0f} | "
            f"{reference / median:.2f}× |"
        )


if __name__ == "__main__":
    main()
