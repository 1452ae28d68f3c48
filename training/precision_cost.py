"""What serving bf16 costs each model: in-brain PSNR/SSIM in fp32 and under bf16 autocast, on held-out cases.

``python -m training.precision_cost --data ../shared/data/brats18 --also ../shared/data/brats23 --write``
synthesizes every configuration a model serves (its own; the 28 single-target ones of an
any-to-any model) on its held-out test cases and on every case of ``--also``, once in fp32 and
once in bf16, through the service's own path (:func:`synnet.inference.synthesize` on
:meth:`synnet.store.LoadedModel.forward` of the exported program), and scores both against the truth as
``training.evaluate`` does. ``--write`` records the result in each model's ``evaluation.json``
(:class:`synnet.evaluation.PrecisionCost`), where the store reads it to decide whether the model
may serve bf16 (:mod:`synnet.precision`). The numbers depend on the bf16 kernels, so the CPU is
recorded with them.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from synnet.dataset_layout import CaseFiles
from synnet.evaluation import EvaluationRecord, PrecisionCheck, PrecisionCost
from synnet.inference import synthesize
from synnet.metrics import brain_scores
from synnet.modalities import Modality, format_modalities
from synnet.normalization import brain_mask, normalize_target
from synnet.precision import cpu_name
from synnet.store import LoadedModel, default_batch_size, load_model, model_folders
from training.configurations import SOURCE_SETS
from training.data.brats import find_cases, load_case
from training.evaluate import dataset_name

logger = logging.getLogger(__name__)

Configuration = tuple[tuple[Modality, ...], Modality]


@dataclass
class Scores:
    """In-brain scores per case of one configuration, in each precision."""

    fp32: list[dict[str, float]] = field(default_factory=list)
    bf16: list[dict[str, float]] = field(default_factory=list)

    def check(self, configuration: Configuration) -> PrecisionCheck:
        def mean(runs: list[dict[str, float]], metric: str) -> float:
            return float(np.mean([r[metric] for r in runs]))

        losses = {
            m: [a[m] - b[m] for a, b in zip(self.fp32, self.bf16, strict=True)] for m in ("psnr_brain", "ssim_brain")
        }
        return PrecisionCheck(
            src=list(configuration[0]), target=configuration[1],
            psnr_brain_fp32=round(mean(self.fp32, "psnr_brain"), 4),
            psnr_brain_bf16=round(mean(self.bf16, "psnr_brain"), 4),
            ssim_brain_fp32=round(mean(self.fp32, "ssim_brain"), 5),
            ssim_brain_bf16=round(mean(self.bf16, "ssim_brain"), 5),
            psnr_brain_loss=round(float(np.mean(losses["psnr_brain"])), 4),
            ssim_brain_loss=round(float(np.mean(losses["ssim_brain"])), 5),
            worst_case_psnr_brain_loss=round(max(losses["psnr_brain"]), 4),
            worst_case_ssim_brain_loss=round(max(losses["ssim_brain"]), 5),
        )  # fmt: skip


def source_sets(model: LoadedModel) -> list[tuple[Modality, ...]]:
    """The source sets a model is asked with: its own, or every one an any-to-any model serves."""
    return list(SOURCE_SETS) if model.manifest.any_to_any else [tuple(model.manifest.src)]


def score_case(fp32: LoadedModel, bf16: LoadedModel, case: CaseFiles, scores: dict[Configuration, Scores]) -> None:
    """Add ``case``'s in-brain scores of every configuration the two loads of one model serve."""
    manifest = fp32.manifest
    loaded = load_case(case, list(case.files), load_seg=False)
    batch = default_batch_size(fp32.device)
    for sources in source_sets(fp32):
        targets = [t for t in manifest.dst if t not in sources and t in loaded.images]
        if not targets or any(m not in loaded.images for m in sources):
            continue
        given = {m: loaded.images[m] for m in sources}
        mask = brain_mask(list(given.values()))  # as the service does: the sources' nonzero voxels
        outputs = {name: synthesize(m.forward, given, mask, manifest, batch_size=batch)[0] for name, m in
                   (("fp32", fp32), ("bf16", bf16))}  # fmt: skip
        for target in targets:
            truth = normalize_target(loaded.images[target], mask, manifest.normalization)[0]
            channel = manifest.dst.index(target)
            record = scores.setdefault((sources, target), Scores())
            record.fp32.append(brain_scores(outputs["fp32"][channel], truth, mask))
            record.bf16.append(brain_scores(outputs["bf16"][channel], truth, mask))


def held_out_cases(model: LoadedModel, data: Path, also: Sequence[Path]) -> list[CaseFiles]:
    """The model's test cases found in ``data``, and every case of ``also``."""
    test = set(model.manifest.training_data.test_cases)
    cases = [c for c in find_cases(data) if c.case_id in test]
    return cases + [c for folder in also for c in find_cases(folder)]


def precision_cost(folder: Path, data: Path, also: Sequence[Path], command: str) -> PrecisionCost:
    """Measure one model folder in fp32 and in bf16 on its held-out cases.

    Through the exported program (its fp32 voxels are TorchScript's): under bf16 autocast TorchScript
    ran SynNet 8× slower than in fp32 on this project's Xeon, the eager program 3×, so the program is
    what makes 20 models × 5 cases × every source set fit a session.
    """
    fp32 = load_model(folder, "cpu", model_format="export")
    bf16 = load_model(folder, "cpu", model_format="export", autocast_dtype=torch.bfloat16)
    cases = held_out_cases(fp32, data, also)
    scores: dict[Configuration, Scores] = {}
    for case in cases:
        score_case(fp32, bf16, case, scores)
        logger.info("%s: %s scored", fp32.name, case.case_id)
    checks = [scores[c].check(c) for c in sorted(scores, key=lambda c: (format_modalities(c[0]), c[1].value))]
    return PrecisionCost(
        cases=[f"{dataset_name(c.folder.parent)}/{c.case_id}" for c in cases], cpu=cpu_name(),
        torch=torch.__version__, sha256=fp32.manifest.sha256, command=command, configurations=checks,
    )  # fmt: skip


def markdown_rows(name: str, cost: PrecisionCost) -> list[str]:
    """One table row per configuration: fp32 and bf16 scores and the losses."""
    return [
        f"| {name} | {format_modalities(c.src)} → {c.target.value} | {c.psnr_brain_fp32:.3f} | {c.psnr_brain_bf16:.3f} "
        f"| {c.psnr_brain_loss:+.4f} ({c.worst_case_psnr_brain_loss:+.4f}) | {c.ssim_brain_fp32:.4f} "
        f"| {c.ssim_brain_bf16:.4f} | {c.ssim_brain_loss:+.5f} ({c.worst_case_ssim_brain_loss:+.5f}) |"
        for c in cost.configurations
    ]


def main(argv: list[str] | None = None) -> int:
    """``python -m training.precision_cost --data DIR [--also DIR ...] [--store DIR] [--models A,B] [--write]``."""
    parser = argparse.ArgumentParser(
        prog="python -m training.precision_cost",
        description="Score every model in fp32 and under bf16 autocast on its held-out cases (and --also), "
        "print the losses, and with --write record them in each model's evaluation.json for the service's bf16 rule.",
    )
    parser.add_argument("--data", type=Path, required=True, help="BraTS folder holding the models' test cases")
    parser.add_argument("--also", type=Path, action="append", default=[], help="another folder: all its cases count")
    parser.add_argument("--store", type=Path, default=Path("model_store"), help="model store (default: %(default)s)")
    parser.add_argument("--models", help="comma-separated model names (default: every model of --store)")
    parser.add_argument("--write", action="store_true", help="record the costs in each model's evaluation.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    command = "python -m training.precision_cost " + shlex.join(argv if argv is not None else sys.argv[1:])
    names = args.models.split(",") if args.models else None
    print(f"bf16 autocast against fp32 on {cpu_name()}, torch {torch.__version__}; loss = fp32 − bf16, "
          "mean over the cases (worst case)\n")  # fmt: skip
    print("| model | configuration | PSNR fp32 | PSNR bf16 | PSNR loss | SSIM fp32 | SSIM bf16 | SSIM loss |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for folder in model_folders(args.store):
        if names is not None and folder.name not in names:
            continue
        cost = precision_cost(folder, args.data, args.also, command)
        print("\n".join(markdown_rows(folder.name, cost)), flush=True)
        if args.write:
            record = EvaluationRecord.load_if_present(folder) or EvaluationRecord()
            record.model_copy(update={"bf16": cost}).save(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
