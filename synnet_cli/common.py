"""What the subcommands share: where the work runs (local store or ``--server``), and how results print."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import nibabel as nib

from synnet.api import SynthesisResult, Synthesizer
from synnet.imageio import save_nifti
from synnet.scores import MetricReport
from synnet_cli.remote import RemoteSynthesizer


def add_engine_options(parser: argparse.ArgumentParser, *, remote: bool = True) -> None:
    group = parser.add_argument_group("where the models run")
    group.add_argument(
        "--store", type=Path, help="model store folder (default: $SYNNET_MODEL_STORE, else the bundled one)"
    )
    group.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: auto (CUDA if any)")
    if remote:
        group.add_argument(
            "--server", metavar="URL", help="send the work to a running service instead (python -m service)"
        )
        group.add_argument("--api-key", help="X-API-Key for --server (default: $SYNNET_API_KEY)")


def engine(args: argparse.Namespace) -> Synthesizer | RemoteSynthesizer:
    """The local :class:`synnet.Synthesizer`, or the service at ``--server``."""
    if getattr(args, "server", None):
        return RemoteSynthesizer(args.server, args.api_key)
    return Synthesizer(args.store, args.device)


def write_image(image: nib.Nifti1Image, path: Path) -> Path:
    """Write ``image`` (``.nii.gz``: gzipped) so that a reader never sees half a file (:func:`write_whole`)."""
    return write_whole(path, lambda partial: save_nifti(image, partial))


def write_file(payload: bytes, path: Path) -> Path:
    """Write a file's bytes so that a reader never sees half of them (:func:`write_whole`)."""
    return write_whole(path, lambda partial: partial.write_bytes(payload))


def write_whole(path: Path, write: Callable[[Path], object]) -> Path:
    """``write`` to a hidden file, then a rename: a reader (or a resumed run) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".partial-{path.name}")
    write(partial)
    partial.replace(path)
    return path


def number(value: float, digits: int = 4) -> str:
    return "inf" if math.isinf(value) else "nan" if math.isnan(value) else f"{value:.{digits}f}"


def metric_rows(metrics: MetricReport) -> list[tuple[str, str, str]]:
    return [
        ("in brain", number(metrics.psnr_brain, 2), number(metrics.ssim_brain)),
        ("whole (model space)", number(metrics.psnr, 2), number(metrics.ssim)),
    ]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain left-aligned text table."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_warnings(result: SynthesisResult, prefix: str = "") -> None:
    for warning in result.warnings:
        print(f"{prefix}warning ({warning.code}): {warning.message}")
