"""Judge a change to what a model file outputs on the model's own training cases, by one rule.

Two changes are built into ``model.pt`` after training: the output calibration
(:mod:`training.calibrate`) and the flip ensemble (:mod:`training.flip_ensemble`). Each is kept
per (sources, target) only where it measurably helps, and both are measured the same way: in-brain
PSNR/SSIM as ``training.evaluate`` scores them, plus BraSyn's tumour-region SSIM where a case has a
segmentation, on every :data:`SLICE_STEP`-th axial slice of training cases, never the held-out
ones. :data:`RULE` is the one policy that turns those scores into adopted or not.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel
from torch import nn

from synnet.dataset_layout import CaseFiles
from synnet.manifest import ConfigurationCheck, ModelManifest
from synnet.metrics import brain_scores, brasyn_scores
from synnet.modalities import Modality, format_modalities
from synnet.normalization import brain_mask
from training.configurations import SOURCE_SETS, training_folders
from training.data.brats import find_cases, load_case
from training.export import verification_example, write_model
from training.model_space import ModelSpaceImages
from training.models.output_calibration import availability_rows

# Every third axial slice: the network sees one slice at a time, so the quantiles and scores of a
# third of the slices are those of the volume within sampling noise, at a third of the cost (a
# session on 2 cores has to check 14 source sets x 21 cases).
SLICE_STEP = 3
SSIM_TOLERANCE = 0.02
RULE = (
    f"adopted when, on training cases none of it was fitted on, it raises mean in-brain PSNR and lowers "
    f"neither mean in-brain SSIM nor mean tumour-region SSIM (BraSyn's scoring, cases with a segmentation) "
    f"by more than {SSIM_TOLERANCE}"
)
TUMOUR_SSIM = "ssim_brasyn_tumour"

Configuration = tuple[tuple[Modality, ...], Modality]


@dataclass
class Check:
    """In-brain scores of one configuration before and after the change, case by case."""

    before: list[dict[str, float]] = field(default_factory=list)
    after: list[dict[str, float]] = field(default_factory=list)

    def mean(self, scores: list[dict[str, float]], metric: str) -> float | None:
        """The mean over the cases that have ``metric`` (the tumour score needs a segmentation); None if none."""
        values = [s[metric] for s in scores if metric in s]
        return float(np.mean(values)) if values else None

    def record(self, configuration: Configuration) -> ConfigurationCheck:
        """The check as the manifest keeps it, with :data:`RULE`'s verdict."""
        before = {m: self.mean(self.before, m) for m in ("psnr_brain", "ssim_brain", TUMOUR_SSIM)}
        after = {m: self.mean(self.after, m) for m in ("psnr_brain", "ssim_brain", TUMOUR_SSIM)}
        kept = all(
            before[m] is None or after[m] >= before[m] - SSIM_TOLERANCE  # type: ignore[operator]
            for m in ("ssim_brain", TUMOUR_SSIM)
        )
        adopted = bool(after["psnr_brain"] > before["psnr_brain"] and kept)  # type: ignore[operator]

        def rounded(value: float | None, digits: int) -> float | None:
            return None if value is None else round(value, digits)

        return ConfigurationCheck(
            sources=list(configuration[0]), target=configuration[1], adopted=adopted, check_cases=len(self.before),
            psnr_brain_before=rounded(before["psnr_brain"], 3), psnr_brain_after=rounded(after["psnr_brain"], 3),
            ssim_brain_before=rounded(before["ssim_brain"], 4), ssim_brain_after=rounded(after["ssim_brain"], 4),
            ssim_tumour_before=rounded(before[TUMOUR_SSIM], 4), ssim_tumour_after=rounded(after[TUMOUR_SSIM], 4),
        )  # fmt: skip


def ordered_records(checks: dict[Configuration, Check]) -> list[ConfigurationCheck]:
    """Every configuration's record, fewest sources first, as the manifest lists them."""
    order = sorted(checks, key=lambda c: (len(c[0]), format_modalities(c[0]), c[1].value))
    return [checks[c].record(c) for c in order]


def check_scores(
    pred: np.ndarray, truth: np.ndarray, mask: np.ndarray, raw_truth: np.ndarray, seg: np.ndarray | None
) -> dict[str, float]:
    """In-brain PSNR/SSIM and, with a segmentation holding tumour, BraSyn's tumour-region SSIM.

    The tumour score guards what a global change can spoil: a tail stretched where the network
    put it, not where the tumour is (seen on FLAIR targets before this guard existed).
    """
    scores = brain_scores(pred, truth, mask)
    if seg is not None and bool((seg > 0).any()):
        scores[TUMOUR_SSIM] = brasyn_scores(pred, raw_truth, seg)[TUMOUR_SSIM]
    return scores


def slice_step(manifest: ModelManifest) -> int:
    """:data:`SLICE_STEP`, or every slice for a 2.5D model, whose input holds each slice's neighbours."""
    return SLICE_STEP if manifest.input.context_slices == 0 else 1


def checks_table(records: Sequence[ConfigurationCheck], verdict: str) -> str:
    """The checks as a Markdown table; ``verdict`` heads the adopted column."""
    lines = [
        "| sources | target | check cases | brain PSNR before → after | brain SSIM before → after "
        f"| tumour SSIM (BraSyn) before → after | {verdict} |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in records:
        tumour = "–" if c.ssim_tumour_before is None else f"{c.ssim_tumour_before:.3f} → {c.ssim_tumour_after:.3f}"
        lines.append(
            f"| {format_modalities(c.sources)} | {c.target.value} | {c.check_cases} "
            f"| {c.psnr_brain_before:.2f} → {c.psnr_brain_after:.2f} "
            f"| {c.ssim_brain_before:.3f} → {c.ssim_brain_after:.3f} | {tumour} | {'yes' if c.adopted else 'no'} |"
        )
    return "\n".join(lines)


def source_sets(manifest: ModelManifest) -> list[tuple[Modality, ...]]:
    """What a check covers: every source set of an any-to-any model, a dedicated model's own."""
    return list(SOURCE_SETS) if manifest.any_to_any else [tuple(manifest.src)]


def configuration_row(manifest: ModelManifest, sources: Sequence[Modality]) -> int:
    """The row of a per-(row, output) table that ``model.pt`` reads for ``sources``: the availability code."""
    if not manifest.any_to_any:
        return 0
    present = torch.tensor([[float(m in sources) for m in manifest.src]])
    return int(availability_rows(present)[0])


@dataclass(frozen=True)
class SourceSetRun:
    """One source set of a training case as the service would be sent it, with what its check scores need.

    Attributes:
        given: the raw sources; mask: their brain mask (the sources' nonzero voxels, as the service makes it).
        truths: each target in model space under that mask; raw: every image of the case, raw (BraSyn's score).
        seg: the label map, when loaded and present.
    """

    sources: tuple[Modality, ...]
    targets: list[Modality]
    given: dict[Modality, np.ndarray]
    mask: np.ndarray
    truths: dict[Modality, np.ndarray]
    raw: dict[Modality, np.ndarray]
    seg: np.ndarray | None


def source_set_runs(manifest: ModelManifest, case: CaseFiles, *, load_seg: bool) -> Iterator[SourceSetRun]:
    """Every source set of ``manifest`` that ``case`` has, with a target it has, on :func:`slice_step`'s slices."""
    loaded = load_case(case, list(case.files), load_seg=load_seg)
    step = slice_step(manifest)
    images = {m: np.ascontiguousarray(image[..., ::step]) for m, image in loaded.images.items()}
    seg = None if loaded.seg is None else np.ascontiguousarray(loaded.seg[..., ::step])
    model_space = ModelSpaceImages(images, manifest.normalization)
    for sources in source_sets(manifest):
        targets = [t for t in manifest.dst if t not in sources and t in images]
        if not targets or any(m not in images for m in sources):
            continue
        given = {m: images[m] for m in sources}
        mask = brain_mask(list(given.values()))
        if not mask.any():
            continue
        yield SourceSetRun(sources, targets, given, mask, model_space.under(mask, targets), images, seg)


def training_cases(manifest: ModelManifest, folders: Sequence[Path]) -> list[CaseFiles]:
    """The model's training cases found in ``folders``, most complete first, then by id."""
    train = set(manifest.training_data.train_cases)
    cases = [case for folder in folders for case in find_cases(folder) if case.case_id in train]
    return sorted(cases, key=lambda case: (-len(case.files), case.case_id))


class ModelChangeError(Exception):
    """The change cannot be made to this model as asked (already made, not applicable, no training cases)."""


def write_changed_model(
    out: Path,
    manifest: ModelManifest,
    network: nn.Module,
    field_name: str,
    record: BaseModel,
    seconds: dict[str, float],
) -> ModelManifest:
    """Re-export ``manifest``'s model as ``network`` (verified like every export) with ``record`` in ``field_name``.

    ``seconds`` (e.g. ``{"calibration_seconds": 312.4}``) joins ``training``, the compute the model records;
    ``evaluation.json`` is not carried over (the outputs changed: re-run ``training.evaluate``).
    """
    example = verification_example(manifest.any_to_any, manifest.input_channels, manifest.input.trained_slice_size)
    training = dict(manifest.training) | {key: round(value, 1) for key, value in seconds.items()}
    written_by_export = {"name", "frameworks", "sha256", "created", "schema_version", "model_file", "exported_program"}
    fields = manifest.model_dump(exclude=written_by_export)
    fields |= {field_name: record, "training": training}
    return write_model(out, manifest.name, network, example, **fields)


# change(store, name, folders, out=..., batch_size=...) -> the written manifest
ModelChange = Callable[..., ModelManifest]


def change_main(
    argv: list[str] | None, *, prog: str, description: str, change: ModelChange,
    records: Callable[[ModelManifest], list[ConfigurationCheck]], verdict: str,
) -> int:  # fmt: skip
    """The command line both changes share: run ``change``, print its checks; 2 on a :class:`ModelChangeError`."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--model", required=True, help="the model's name in --store")
    parser.add_argument("--data", type=Path, required=True, help="BraTS folder holding its training cases")
    parser.add_argument(
        "--extra-data", type=Path, help="another folder of its training cases (default: the one it was trained with)"
    )
    parser.add_argument("--store", type=Path, default=Path("model_store"), help="model store (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="store to write the changed model to (default: --store)")
    parser.add_argument("--batch-size", type=int, default=8, help="slices per forward pass (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    manifest = ModelManifest.load(args.store / args.model)
    folders = [args.data, args.extra_data] if args.extra_data else training_folders(manifest, args.data)
    try:
        written = change(args.store, args.model, folders, out=args.out, batch_size=args.batch_size)
    except ModelChangeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(checks_table(records(written), verdict))
    return 0
