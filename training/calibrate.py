"""Learn a monotone output calibration on a model's training cases and build it into the model file.

For each (sources, target) the model serves, the mean in-brain quantile curve of its output and of
the truth over the training cases gives a map output → truth (:class:`QuantileMap`). It restores
an intensity distribution the network compresses (FLAIR and T1c tails) and leaves the order of
intensities alone. Whether a map is *adopted* is measured, never assumed: the training cases are
split in two, maps fitted on one half are scored on the other (in-brain PSNR/SSIM, as
``training.evaluate`` scores, on every :data:`training.output_check.SLICE_STEP`-th axial slice), and
:data:`training.output_check.RULE` decides. Adopted maps are then refitted on all training
cases. The held-out test cases are never read.

The model is re-exported (verified like every export) with the maps inside, so the service, the
API and Triton all apply them; the manifest's ``output_calibration`` records every map's check.
Its held-out scores change, so ``evaluation.json`` is dropped: re-run ``training.evaluate``.

    python -m training.calibrate --store model_store --model synnet_unified --data ../shared/data/brats18
"""

from __future__ import annotations

import logging
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from synnet.dataset_layout import CaseFiles
from synnet.inference import synthesize
from synnet.manifest import MODEL_FILE, ModelManifest, OutputCalibration
from synnet.modalities import format_modalities
from synnet.store import LoadedModel, load_model
from training.models.output_calibration import (
    MIN_STEP,
    CalibratedAnyToAny,
    CalibratedDedicated,
    QuantileMap,
)
from training.output_check import (
    RULE,
    Check,
    Configuration,
    ModelChangeError,
    change_main,
    check_scores,
    configuration_row,
    ordered_records,
    source_set_runs,
    training_cases,
    write_changed_model,
)

logger = logging.getLogger(__name__)

QUANTILES = np.linspace(0.0, 1.0, 201)


@dataclass
class Curves:
    """In-brain quantile curves of the output and of the truth, per case, for one configuration."""

    output: dict[str, np.ndarray] = field(default_factory=dict)
    truth: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, case_id: str, pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> None:
        self.output[case_id] = np.quantile(pred[mask], QUANTILES)
        self.truth[case_id] = np.quantile(truth[mask], QUANTILES)

    def knots(self, case_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
        """The map fitted on ``case_ids`` (those this configuration has): (knots_in, knots_out)."""
        used = [c for c in case_ids if c in self.output]
        if not used:
            return None
        knots_in = np.maximum.accumulate(np.mean([self.output[c] for c in used], axis=0))
        knots_in = knots_in + np.arange(knots_in.size) * MIN_STEP * 2  # strictly rising, shift ≤ 4e-4
        knots_out = np.maximum.accumulate(np.mean([self.truth[c] for c in used], axis=0))
        return knots_in, knots_out


class CalibrationError(ModelChangeError):
    """The model cannot be calibrated as asked (already calibrated, no training cases found)."""


def split_halves(cases: Sequence[CaseFiles]) -> tuple[list[CaseFiles], list[CaseFiles]]:
    """Alternate cases into a fit half and a check half, so each has full and partial cases alike."""
    return list(cases[0::2]), list(cases[1::2])


class CalibrationFit:
    """Runs the model on training cases and gathers what the maps and their checks need."""

    def __init__(self, model: LoadedModel, batch_size: int) -> None:
        self.model = model
        self.batch_size = batch_size
        self.curves: dict[Configuration, Curves] = defaultdict(Curves)
        self.checks: dict[Configuration, Check] = defaultdict(Check)

    def add_case(self, case: CaseFiles, fit_ids: Sequence[str] | None) -> None:
        """Add one case's curves; with ``fit_ids``, also score it under the maps fitted on those cases."""
        manifest = self.model.manifest
        for run in source_set_runs(manifest, case, load_seg=fit_ids is not None):
            y, _ = synthesize(self.model.forward, run.given, run.mask, manifest, batch_size=self.batch_size)
            for target in run.targets:
                pred, truth = y[manifest.dst.index(target)], run.truths[target]
                configuration = (run.sources, target)
                self.curves[configuration].add(case.case_id, pred, truth, run.mask)
                knots = self.curves[configuration].knots(fit_ids) if fit_ids is not None else None
                if knots is not None:
                    mapped = np.where(run.mask, np.interp(pred, *knots), 0.0).astype(np.float32)
                    raw, seg = run.raw[target], run.seg
                    self.checks[configuration].before.append(check_scores(pred, truth, run.mask, raw, seg))
                    self.checks[configuration].after.append(check_scores(mapped, truth, run.mask, raw, seg))


def quantile_map(
    manifest: ModelManifest, fit: CalibrationFit, adopted: set[Configuration], case_ids: Sequence[str]
) -> QuantileMap:
    """The adopted maps, fitted on ``case_ids``, as the tables the model file holds."""
    rows = 2 ** len(manifest.src) if manifest.any_to_any else 1
    channels, size = len(manifest.dst), QUANTILES.size
    identity = torch.linspace(0.0, 1.0, size)
    knots_in = identity.repeat(rows, channels, 1)
    knots_out = identity.repeat(rows, channels, 1)
    active = torch.zeros(rows, channels, dtype=torch.bool)
    for sources, target in sorted(adopted, key=lambda c: (format_modalities(c[0]), c[1].value)):
        knots = fit.curves[sources, target].knots(case_ids)
        assert knots is not None  # adopted maps were checked, so their cases exist
        row = configuration_row(manifest, sources)
        channel = manifest.dst.index(target)
        knots_in[row, channel] = torch.from_numpy(knots[0]).float()
        knots_out[row, channel] = torch.from_numpy(knots[1]).float()
        active[row, channel] = True
    return QuantileMap(knots_in, knots_out, active)


def calibrated_network(model_file: Path, manifest: ModelManifest, calibration: QuantileMap) -> torch.nn.Module:
    """The stored TorchScript network followed by ``calibration``, ready for export."""
    network = torch.jit.load(str(model_file), map_location="cpu")
    wrapper = CalibratedAnyToAny if manifest.any_to_any else CalibratedDedicated
    return wrapper(network, calibration)


def calibrate(
    store: Path, name: str, folders: Sequence[Path], *, out: Path | None = None, batch_size: int = 8
) -> ModelManifest:
    """Fit, check and build in the output calibration of ``store/name``; write it to ``out`` (default: in place).

    Raises:
        CalibrationError: the model already has a calibration, or none of its training cases is in ``folders``.
    """
    started = time.perf_counter()
    model = load_model(store / name, "cpu")
    manifest = model.manifest
    if manifest.output_calibration is not None:
        raise CalibrationError(f"{name} is already calibrated; calibrate the model training.export wrote")
    if manifest.flip_ensemble is not None:  # its checks were measured on the uncalibrated outputs
        raise CalibrationError(f"{name} already averages over flips; calibrate before training.flip_ensemble")
    if manifest.normalization.target_anchor != "percentile":  # its maps are fitted to percentile-scaled truths
        raise CalibrationError(f"{name} was trained with --target-anchor {manifest.normalization.target_anchor}")
    cases = training_cases(manifest, folders)
    if len(cases) < 2:
        raise CalibrationError(f"{name}: {len(cases)} of its training cases found in {', '.join(map(str, folders))}")
    fit_half, check_half = split_halves(cases)
    fit_ids = [c.case_id for c in fit_half]
    fit = CalibrationFit(model, batch_size)
    for case in fit_half:
        fit.add_case(case, None)
        logger.info("fit half: %s", case.case_id)
    for case in check_half:
        fit.add_case(case, fit_ids)
        logger.info("check half: %s", case.case_id)
    checks = ordered_records(fit.checks)
    adopted = {(tuple(c.sources), c.target) for c in checks if c.adopted}
    calibration = quantile_map(manifest, fit, adopted, [c.case_id for c in cases])
    network = calibrated_network(store / name / MODEL_FILE, manifest, calibration)
    record = OutputCalibration(
        quantiles=QUANTILES.size, rule=RULE, fit_cases=fit_ids, check_cases=[c.case_id for c in check_half],
        configurations=checks,
    )  # fmt: skip
    seconds = {"calibration_seconds": time.perf_counter() - started}
    return write_changed_model(out or store, manifest, network, "output_calibration", record, seconds)


def main(argv: list[str] | None = None) -> int:
    """``python -m training.calibrate --model NAME --data DIR [--store DIR] [--out DIR]``."""
    return change_main(
        argv, prog="python -m training.calibrate",
        description="Learn a monotone output calibration per (sources, target) on a model's training cases, "
        "adopt each map only where it helps on training cases it was not fitted on, and re-export the model "
        "with the maps inside (its evaluation.json is dropped: re-run training.evaluate).",
        change=calibrate, records=lambda m: m.output_calibration.configurations if m.output_calibration else [],
        verdict="adopted",
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
