"""Inference speed of SynNet against the machine's peak, in-process and through the REST service.

A script, not a test: one run prints one table.

(a) **Peak**: fp32 GEMM and 3×3 convolution GFLOP/s (the convolutions are SynNet's own: 64 → 64
    and 128 → 64 at 240², both memory layouts); on CUDA also TF32 and bf16.
(b) **In-process**: the model's FLOPs per 240² slice (``torch.utils.flop_counter``) and the
    served TorchScript file's throughput at batch 1 to 32 on random 240² slices, in slices/s and as
    % of the conv peak of the same precision.
(c) **Server**: a real ``python -m service`` on 127.0.0.1 serving only ``--model``, driven with
    httpx: one whole-volume request at a time (``download=1``, the NIfTI file back), and 2D PNG
    slice requests at concurrency 1, 8 and 32 with p50/p99 latency. Each is compared with the
    in-process time of *exactly the work the server did*: the slices it ran (those holding brain),
    cropped to the same box, in chunks of its batch size, through the same TorchScript file and
    forward (``synnet.store.LoadedModel``: float32, the service's layout, one worker thread).
    So "× in-process" is what the HTTP layer, decoding, normalization, batching and encoding leave
    of the model's speed; "forward passes" is the server's own ``synnet_inference_seconds``.
(d) **Serving paths** (``--paths``, :mod:`serving_paths`): today's TorchScript, export, compiled fp32 and bf16.

Timed samples of different configurations are interleaved (one sample of each in turn, as in
``bench/train_speed.py``) and the median is reported: the machine is shared and drifts. On CUDA
the times come from CUDA events, cuDNN autotuning is on, and TF32 is set explicitly per row.

    python bench/serve_speed.py --case ../shared/data/brats18/Brats18_CBICA_ABM_1   # docs/benchmarks.md
    python bench/serve_speed.py                        # without a case: a generated phantom volume
    python bench/serve_speed.py --device cuda --skip-server
    python bench/serve_speed.py --case ../shared/data/brats18/Brats18_CBICA_ABM_1 --paths all --skip-server \
        --skip-inprocess                               # only (d), the serving paths
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import path_settings
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parents[1]
SIDE = 240  # a BraTS slice is 240×240
PRECISIONS = ("fp32", "tf32", "bf16")
DEFAULT_MODES = {
    "cpu": "fp32,fp32+channels_last",
    "cuda": ",".join(f"{p}{layout}" for p in PRECISIONS for layout in ("", "+channels_last")),
}
DEFAULT_BATCHES = {"cpu": "1,2,4,8,16,32", "cuda": "1,2,4,8,16,32,64,128"}
SLICES_PER_SAMPLE = {"cpu": 8, "cuda": 256}  # a timed sample runs at least this many slices


@dataclass(frozen=True)
class Mode:
    """How the model runs: ``fp32`` (TF32 off), ``tf32`` or ``bf16`` autocast; NCHW or channels_last."""

    precision: str
    channels_last: bool

    @classmethod
    def parse(cls, text: str) -> Mode:
        precision, _, layout = text.partition("+")
        if precision not in PRECISIONS or layout not in ("", "channels_last"):
            raise ValueError(f"unknown mode {text!r}; use <{'|'.join(PRECISIONS)}>[+channels_last]")
        return cls(precision, layout == "channels_last")

    def __str__(self) -> str:
        return self.precision + ("+channels_last" if self.channels_last else "")


@dataclass
class Row:
    """One line of the table; None prints as an empty cell."""

    part: str
    what: str
    batch: str = ""
    slices_s: float | None = None
    gflops: float | None = None
    pct_peak: float | None = None
    ratio: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--model", default="synnet_t1_to_t2", help="model folder in the store")
    parser.add_argument("--model-store", type=Path, default=REPO / "model_store")
    parser.add_argument("--modes", help=f"comma-separated; default cpu: {DEFAULT_MODES['cpu']}, cuda: all six")
    parser.add_argument("--batches", help="comma-separated batch sizes for (b); default 1..32 (CUDA: ..128)")
    parser.add_argument("--samples", type=int, default=3, help="timed samples per configuration (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per configuration")
    parser.add_argument(
        "--no-keep-freed-memory",
        dest="keep_freed_memory",
        action="store_false",
        help="leave glibc malloc at its defaults here and in the server (no GLIBC_TUNABLES, unlike the images)",
    )
    server = parser.add_argument_group("server (c)")
    server.add_argument("--skip-server", action="store_true", help="only (a) and (b); needs torch alone")
    server.add_argument("--case", type=Path, help="BraTS case folder; default: a generated phantom case")
    server.add_argument("--volume-requests", type=int, default=5)
    server.add_argument("--slice-requests", type=int, default=64, help="requests per concurrency level")
    server.add_argument("--concurrency", default="1,8,32")
    path_settings.add_arguments(parser)
    args = parser.parse_args(argv)
    args.paths = path_settings.chosen_paths(parser, args.paths)
    try:
        args.modes = [Mode.parse(m) for m in (args.modes or DEFAULT_MODES[args.device]).split(",")]
    except ValueError as error:
        parser.error(str(error))
    args.batches = [int(b) for b in (args.batches or DEFAULT_BATCHES[args.device]).split(",")]
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    if args.device == "cpu" and any(m.precision == "tf32" for m in args.modes):
        parser.error("TF32 exists on CUDA only")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but torch sees no CUDA device")
    return args


# --- timing -----------------------------------------------------------------------------------


@contextlib.contextmanager
def precision(name: str, device: torch.device) -> Iterator[None]:
    """fp32 with TF32 off, TF32 matmuls and convolutions (CUDA only), or bf16 autocast."""
    if device.type != "cuda":
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=name == "bf16"):
            yield
        return
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    saved = matmul.fp32_precision, conv.fp32_precision
    matmul.fp32_precision = conv.fp32_precision = "tf32" if name == "tf32" else "ieee"
    try:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=name == "bf16"):
            yield
    finally:
        matmul.fp32_precision, conv.fp32_precision = saved


@dataclass
class Bench:
    """A call to time: ``calls`` of ``fn`` make one sample, run under ``precision``."""

    fn: Callable[[], object]
    calls: int
    precision: str = "fp32"


def seconds_per_call(bench: Bench, device: torch.device) -> float:
    with precision(bench.precision, device), torch.inference_mode():
        if device.type != "cuda":
            start = time.perf_counter()
            for _ in range(bench.calls):
                bench.fn()
            return (time.perf_counter() - start) / bench.calls
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        begin.record()
        for _ in range(bench.calls):
            bench.fn()
        end.record()
        end.synchronize()
        return begin.elapsed_time(end) / 1e3 / bench.calls


def median_seconds(benches: dict[str, Bench], device: torch.device, samples: int, warmup: int) -> dict[str, float]:
    """Median seconds per call of each bench, its samples interleaved with the others'."""
    for bench in benches.values():
        if warmup:
            seconds_per_call(Bench(bench.fn, warmup, bench.precision), device)
    times: dict[str, list[float]] = {key: [] for key in benches}
    for _ in range(samples):
        for key, bench in benches.items():
            times[key].append(seconds_per_call(bench, device))
    return {key: statistics.median(values) for key, values in times.items()}


def channels_last_copy(x: torch.Tensor) -> torch.Tensor:
    """NHWC strides even for one channel, where ``.contiguous(memory_format=...)`` keeps NCHW's
    (as :func:`synnet.store.as_channels_last` does; parts (a) and (b) run with torch alone)."""
    return torch.empty_like(x, memory_format=torch.channels_last).copy_(x)


# --- (a) peak ---------------------------------------------------------------------------------


def peak_rows(args: argparse.Namespace, device: torch.device) -> tuple[list[Row], dict[str, float]]:
    """GEMM and SynNet's 3×3 convolutions; returns the rows and the conv peak per precision (GFLOP/s)."""
    cuda = device.type == "cuda"
    precisions = sorted({m.precision for m in args.modes} | {"fp32"}, key=PRECISIONS.index)
    n, batch, calls = (8192, 32, 10) if cuda else (2048, 1, 3)
    benches: dict[str, Bench] = {}
    flops: dict[str, float] = {}
    for name in precisions:
        dtype = torch.bfloat16 if name == "bf16" else torch.float32
        a, b = (torch.rand(n, n, device=device, dtype=dtype) for _ in range(2))
        key = f"{name} GEMM {n}×{n}×{n}"
        benches[key], flops[key] = Bench(lambda a=a, b=b: a @ b, calls, name), 2 * n**3
        for c_in in (64, 128):
            for channels_last in (False, True):
                x = torch.rand(batch, c_in, SIDE, SIDE, device=device, dtype=dtype)
                w = torch.rand(64, c_in, 3, 3, device=device, dtype=dtype)
                if channels_last:
                    x, w = channels_last_copy(x), channels_last_copy(w)
                layout = "channels_last" if channels_last else "NCHW"
                key = f"{name} conv3×3 {c_in}→64, {batch}×{SIDE}², {layout}"
                benches[key] = Bench(lambda x=x, w=w: F.conv2d(x, w, padding=1), calls * 2, name)
                flops[key] = 2 * 9 * c_in * 64 * SIDE * SIDE * batch
    seconds = median_seconds(benches, device, args.samples, warmup=1)
    rates = {key: flops[key] / seconds[key] / 1e9 for key in benches}
    peaks = {p: max(r for k, r in rates.items() if k.startswith(f"{p} conv")) for p in precisions}
    rows = [
        Row("(a)", key, gflops=rate, pct_peak=100 * rate / peaks[key.split()[0]] if "conv" in key else None)
        for key, rate in rates.items()
    ]
    return rows, peaks


# --- (b) in-process ---------------------------------------------------------------------------


def load_torchscript(args: argparse.Namespace, device: torch.device) -> tuple[torch.jit.ScriptModule, int, str]:
    """The served TorchScript file and its number of input channels (sources × slices per source).

    When the file is absent or does not load (a torch older than the one that saved it), the
    manifest's architecture (else SynNet 64×4, one source) with random weights, frozen as export does.
    """
    from synnet.neighbours import slices_per_source

    folder = args.model_store / args.model
    architecture = {"name": "synnet", "params": {"n_src": 1, "n_dst": 1, "features": 64, "depth": 4}}
    why = f"{folder} not found"
    if (folder / "manifest.json").is_file():
        manifest = json.loads((folder / "manifest.json").read_text())
        architecture = manifest["architecture"]
        try:
            module = torch.jit.load(str(folder / manifest["model_file"]), map_location=device)
            channels = len(manifest["src"]) * slices_per_source(manifest["input"].get("context_slices", 0))
            return module.eval(), channels, str(folder)
        except RuntimeError as error:
            why = f"{folder} did not load: {str(error).splitlines()[0][:100]}"
    from training.models import create_model

    params = dict(architecture["params"])
    n_src, n_dst = params.pop("n_src"), params.pop("n_dst")
    model = create_model(architecture["name"], n_src, n_dst, **params).eval().to(device)
    # Export freezes without folding BatchNorm; so the graph is the served one's.
    frozen = torch.jit.freeze(torch.jit.script(model), optimize_numerics=False)
    channels = n_src * params.get("slices_per_source", 1)
    return frozen, channels, f"{architecture['name']} {params} with random weights ({why})"


def count_flops(module: torch.jit.ScriptModule, shape: tuple[int, ...], device: torch.device) -> float:
    """FLOPs of one forward on ``shape`` (convolutions; pooling and element-wise ops are not counted)."""
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        module(torch.rand(*shape, device=device))
    return float(counter.get_total_flops())


def model_rows(
    args: argparse.Namespace, device: torch.device, module: torch.jit.ScriptModule, n_src: int, peaks: dict[str, float]
) -> tuple[list[Row], float]:
    flops = count_flops(module, (1, n_src, SIDE, SIDE), device)
    benches: dict[str, Bench] = {}
    for mode in args.modes:
        for batch in args.batches:
            x = torch.rand(batch, n_src, SIDE, SIDE, device=device)
            if mode.channels_last:
                x = channels_last_copy(x)
            calls = max(1, SLICES_PER_SAMPLE[device.type] // batch)
            benches[f"{mode}|{batch}"] = Bench(lambda x=x: module(x), calls, mode.precision)
    seconds = median_seconds(benches, device, args.samples, args.warmup)
    rows = [Row("(b)", f"SynNet FLOPs per {SIDE}² slice: {flops / 1e9:.2f} GFLOP (convolutions)")]
    for key, value in seconds.items():
        mode, batch = key.split("|")
        rate = int(batch) / value
        gflops = rate * flops / 1e9
        peak = peaks[Mode.parse(mode).precision]
        rows.append(Row("(b)", f"TorchScript {mode}", batch, rate, gflops, 100 * gflops / peak))
    return rows, flops


# --- (c) server -------------------------------------------------------------------------------


def server_rows(
    args: argparse.Namespace, module: torch.jit.ScriptModule, n_src: int, peak: float
) -> tuple[list[Row], list[str]]:
    """Rows for the volume and slice loads, and a line on the server's settings."""
    from server_load import measure_server  # needs the service's dependencies, unlike (a) and (b)

    from synnet.store import default_channels_last

    results = measure_server(
        args.model_store, args.model, args.device, args.case, volume_requests=args.volume_requests,
        slice_requests=args.slice_requests, concurrency=args.concurrency,
    )  # fmt: skip
    device = torch.device(args.device)

    def rate_row(
        what: str, batch: str, rate: float, box: tuple[int, int], ratio: float | None = None,
        p50_s: float | None = None, p99_s: float | None = None,
    ) -> Row:  # fmt: skip
        gflops = rate * count_flops(module, (1, n_src, *box), device) / 1e9
        p50_ms, p99_ms = (None if t is None else 1e3 * t for t in (p50_s, p99_s))
        return Row("(c)", what, batch, rate, gflops, 100 * gflops / peak, ratio, p50_ms, p99_ms)

    v = results.volume

    def volume_row(what: str, seconds: float, compared: bool = True) -> Row:
        ratio = v.inprocess_s / seconds if compared else None
        return rate_row(what, str(v.batch_size), v.run / seconds, v.box, ratio, seconds)

    rows = [
        volume_row(
            f"volume {'×'.join(map(str, v.shape))} ({v.case}), one request at a time: {v.run} slices run, "
            f"{v.skipped} without brain skipped, box {v.box[0]}×{v.box[1]}; forward passes "
            f"{v.forward_s:.2f} s of the request's {v.server_s:.2f} s (p50 = median request)",
            v.server_s,
        ),
        volume_row("↳ the same volume, two requests in flight (p50 = wall time per volume)", v.paired_s),
        volume_row("↳ the same slices in-process (chunks of the batch size)", v.inprocess_s, compared=False),
    ]
    for s in results.slices:
        what = f"1-slice PNG requests (box {s.box[0]}×{s.box[1]}), concurrency {s.concurrency}, {s.requests} requests"
        ratio = s.server_rate / s.inprocess_rate
        rows.append(rate_row(what, f"≤{v.batch_size}", s.server_rate, s.box, ratio, s.p50_s, s.p99_s))
        rows.append(rate_row("↳ the same slice in-process", str(s.batch), s.inprocess_rate, s.box))
    st, on = results.settings, args.device
    layout = st.channels_last if st.channels_last is not None else default_channels_last(torch.device(on))
    note = (
        f"server: python -m service on {on}: max_batch_size {v.batch_size}, max_batch_delay_s "
        f"{st.batch_delay_for(on):g}, channels_last {layout}, crop_to_brain {st.crop_to_brain}, "
        f"nifti_gzip_level {st.nifti_gzip_level}, GLIBC_TUNABLES {'GLIBC_TUNABLES' in os.environ}, "
        f"torch threads {st.torch_threads or 'default'}; the httpx client runs on the same machine"
    )
    return rows, [note]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    from service.allocator import MALLOC_TUNABLES, keeps_freed_memory  # standard library only

    if args.keep_freed_memory != keeps_freed_memory():
        # glibc reads its tunables at start: run again with the images' environment (or without it);
        # the server started in (c) inherits it.
        env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
        if args.keep_freed_memory:
            env["GLIBC_TUNABLES"] = MALLOC_TUNABLES
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    malloc = "keeps freed memory (GLIBC_TUNABLES)" if keeps_freed_memory() else "defaults"
    module, n_src, source = load_torchscript(args, device)
    print(f"{header(device, source)}; malloc {malloc}")
    print()
    rows: list[Row] = []
    peaks = {"fp32": float("nan")}
    if not args.skip_inprocess:
        rows, peaks = peak_rows(args, device)
        model, _ = model_rows(args, device, module, n_src, peaks)
        rows += model
    notes: list[str] = []
    if not args.skip_server:
        server, notes = server_rows(args, module, n_src, peaks["fp32"])
        rows += server
    if rows:
        print_table(rows)
        print()
    for note in notes + targets(rows, peaks):
        print(note)
    if args.paths:
        from serving_paths import measure_paths  # needs the service's dependencies, like (c)

        lines, _ = measure_paths(args.model_store, args.model, args.case, args.paths, args.path_volumes,
                                 args.path_rounds)  # fmt: skip
        print("\n" + "\n".join(lines))


def targets(rows: list[Row], peaks: dict[str, float]) -> list[str]:
    """The issue's targets for this machine, each with the measured value."""

    def verdict(ok: bool) -> str:
        return "met" if ok else "missed"

    lines = []
    fp32 = [r for r in rows if r.part == "(b)" and r.what.startswith("TorchScript fp32") and r.pct_peak]
    if fp32:
        best = max(fp32, key=lambda r: r.pct_peak or 0.0)
        lines.append(
            f"target: inference ≥ 70 % of the fp32 conv peak ({peaks['fp32']:.0f} GFLOP/s): best (b) "
            f"{best.pct_peak:.0f} % ({best.what.removeprefix('TorchScript ')}, batch {best.batch}) → "
            f"{verdict((best.pct_peak or 0.0) >= 70)}"
        )
    volume = [r for r in rows if r.part == "(c)" and "volume" in r.what]
    if len(volume) >= 2:
        one, two = volume[0], volume[1]
        lines.append(
            f"target: server ≥ 0.9× in-process for a volume: {one.ratio:.2f}× one request at a time → "
            f"{verdict((one.ratio or 0.0) >= 0.9)}; {two.ratio:.2f}× with two in flight → "
            f"{verdict((two.ratio or 0.0) >= 0.9)}"
        )
        seconds = (one.p50_ms or 0.0) / 1e3
        lines.append(f"target: a volume in < 8 s through the server: {seconds:.2f} s → {verdict(seconds < 8)}")
    return lines


def header(device: torch.device, source: str) -> str:
    from synnet.precision import cpu_name

    if device.type == "cuda":
        machine = torch.cuda.get_device_name(device)
    else:
        machine = (
            f"{cpu_name()} ({torch.backends.cpu.get_cpu_capability()}), {os.cpu_count()} cores, "
            f"{torch.get_num_threads()} torch threads"
        )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{stamp}; {machine}; torch {torch.__version__}, Python {platform.python_version()}; model {source}"


def print_table(rows: list[Row]) -> None:
    def cell(value: float | None, digits: int, suffix: str = "") -> str:
        return "" if value is None else f"{value:.{digits}f}{suffix}"

    print("| part | measurement | batch | slices/s | GFLOP/s | % of conv peak | × in-process | p50 ms | p99 ms |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r.part} | {r.what} | {r.batch} | {cell(r.slices_s, 2)} | {cell(r.gflops, 0)} | "
            f"{cell(r.pct_peak, 0, ' %')} | {cell(r.ratio, 2)} | {cell(r.p50_ms, 0)} | {cell(r.p99_ms, 0)} |"
        )


if __name__ == "__main__":
    main()
