"""``synnet evaluate --pred X --truth Y [--mask M] [--seg S]``: score a synthesized volume against the real one.

Prints this project's numbers (inside the brain, and over the whole image in model space, as
``POST /synthesize`` and ``training.evaluate`` report them) and the BraSyn challenge's
(:func:`synnet.metrics.brasyn_scores`, 3D only); the two conventions differ and must not be
compared. A file written by synnet names its model in the NIfTI ``descrip``: the prediction is
then mapped back to that model's space with its manifest and scored by
:func:`synnet.metrics.compute_metrics`, as the service scores it. Any other prediction is put in
model space by its own in-brain percentiles.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

from synnet.api import Synthesizer
from synnet.errors import SynnetError
from synnet.imageio import ImageMeta, read_image
from synnet.manifest import ModelManifest
from synnet.metrics import WINDOW_SIZE, brasyn_scores, compute_metrics, evaluate
from synnet.modalities import parse_modality
from synnet.normalization import brain_mask, normalize
from synnet.scores import MetricReport
from synnet_cli.common import metric_rows, number, table

SYNTHETIC = re.compile(r"synthetic (\S+) by synnet model (\S+)")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="PSNR/SSIM of a synthesized image against the real one", description=__doc__.split("\n\n")[1]
    )
    parser.add_argument("--pred", type=Path, required=True, help="the synthesized image")
    parser.add_argument("--truth", type=Path, required=True, help="the real image")
    parser.add_argument("--mask", type=Path, help="brain mask (non-zero = brain; default: non-zero in truth or pred)")
    parser.add_argument("--seg", type=Path, help="BraTS tumour labels, for BraSyn's tumour SSIM")
    parser.add_argument("--store", type=Path, help="where the pred's model is (default: as synnet synthesize)")
    parser.set_defaults(run=run)


def _read_like(path: Path, shape: tuple[int, ...], what: str) -> np.ndarray:
    array, _ = read_image(path)
    if array.shape != shape:
        raise SynnetError(f"{what} {path} has shape {array.shape}, the truth {shape}", code="shape_mismatch")
    return array


def producer(meta: ImageMeta, store: Path | None) -> tuple[str, ModelManifest] | None:
    """The target and manifest of the synnet model that wrote a file, when its header says so."""
    if meta.header is None:
        return None
    found = SYNTHETIC.fullmatch(bytes(meta.header["descrip"]).rstrip(b"\0").decode(errors="replace"))
    if found is None:
        return None
    try:
        manifests = {m.name: m for m in Synthesizer(store, "cpu").manifests}
    except SynnetError:
        return None
    manifest = manifests.get(found[2])
    return (found[1], manifest) if manifest is not None else None


def score(
    pred: np.ndarray, truth: np.ndarray, mask: np.ndarray, made_by: tuple[str, ModelManifest] | None
) -> MetricReport:
    if made_by is None:
        return evaluate(normalize(pred, mask)[0], normalize(truth, mask)[0], mask)
    target, manifest = made_by
    # The inverse of synnet.inference.to_raw_units: back to the model's output space.
    pred_model_space, _ = normalize(pred, mask, value_range=manifest.output_reference[parse_modality(target)])
    return compute_metrics(pred_model_space, truth, mask, manifest)


def run(args: argparse.Namespace) -> int:
    truth, _ = read_image(args.truth)
    pred, pred_meta = read_image(args.pred)
    if pred.shape != truth.shape:
        raise SynnetError(f"--pred {args.pred} has shape {pred.shape}, the truth {truth.shape}", code="shape_mismatch")
    mask = _read_like(args.mask, truth.shape, "--mask") != 0 if args.mask else brain_mask([truth, pred])
    if not mask.any():
        raise SynnetError("the brain mask is empty: nothing to score", code="empty_image")
    made_by = producer(pred_meta, args.store)
    rows = metric_rows(score(pred, truth, mask, made_by))
    if pred.ndim == 3 and min(pred.shape) >= WINDOW_SIZE:
        seg = _read_like(args.seg, truth.shape, "--seg") if args.seg else None
        brasyn = brasyn_scores(pred, truth, seg)
        ssim = f"tumour {number(brasyn['ssim_brasyn_tumour'])}, rest {number(brasyn['ssim_brasyn_rest'])}"
        rows.append(("BraSyn", number(brasyn["psnr_brasyn"], 2), ssim))
    space = f"model space of {made_by[1].name}" if made_by else "pred scaled by its own in-brain percentiles"
    print(f"{args.pred} against {args.truth} ({int(mask.sum())} brain voxels; {space})")
    print(table(("", "PSNR (dB)", "SSIM"), rows))
    return 0
