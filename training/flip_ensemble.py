"""Average a model's output over the flips it was trained with, where that measurably helps.

The network was trained on randomly flipped windows, so a flipped slice is as valid an input as
the slice itself; the mean of the four predictions (each flipped back) keeps what they agree on
and drops part of what they do not (:mod:`training.models.flip_average`). Whether a configuration
gets the average is measured, never assumed: every training case is run with and without it, and
:data:`training.output_check.RULE` decides per (sources, target). Nothing is fitted, so every
training case is a check case; the held-out test cases are never read.

The model is re-exported (verified like every export) with the average inside, so the service,
the API and Triton all apply it; the manifest's ``flip_ensemble`` records every check. Its held-out
scores change, so ``evaluation.json`` is dropped: re-run ``training.evaluate``. Calibrate first
(:mod:`training.calibrate` refuses a model that already averages).

    python -m training.flip_ensemble --store model_store --model synnet_t1_to_t2 --data ../shared/data/brats18
"""

from __future__ import annotations

import logging
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import torch

from synnet.dataset_layout import CaseFiles
from synnet.inference import assemble, prepare
from synnet.manifest import MODEL_FILE, FlipEnsemble, ModelManifest
from synnet.store import LoadedModel, load_model
from training.models.flip_average import FLIP_NAMES, FlipAveragedAnyToAny, FlipAveragedDedicated, flip_mean
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


class FlipEnsembleError(ModelChangeError):
    """The model cannot get the flip average (already has it, trained without flips, no training cases)."""


def averaged_network(network: torch.nn.Module, manifest: ModelManifest, active: torch.Tensor) -> torch.nn.Module:
    """``network`` with the channels flagged in ``active`` (rows × outputs) averaged over the flips."""
    wrapper = FlipAveragedAnyToAny if manifest.any_to_any else FlipAveragedDedicated
    return wrapper(network, active)


def flag_table(manifest: ModelManifest, configurations: set[Configuration]) -> torch.Tensor:
    """(rows, outputs) bool: True where a configuration is averaged; row = the availability code model.pt computes."""
    rows = 2 ** len(manifest.src) if manifest.any_to_any else 1
    active = torch.zeros(rows, len(manifest.dst), dtype=torch.bool)
    for sources, target in configurations:
        active[configuration_row(manifest, sources), manifest.dst.index(target)] = True
    return active


def check_case(model: LoadedModel, case: CaseFiles, checks: dict[Configuration, Check], batch_size: int) -> None:
    """Score one training case with and without the average, for every configuration it has (four forwards a chunk)."""
    manifest = model.manifest
    for run in source_set_runs(manifest, case, load_seg=True):
        stack = prepare(run.given, run.mask, manifest)
        plain, mean = [], []
        for chunk in stack.chunks(batch_size):
            plain.append(model.forward(chunk))
            mean.append(flip_mean(model.forward, chunk, plain[-1]))
        before, after = assemble(stack, plain), assemble(stack, mean)
        for target in run.targets:
            channel, truth, raw = manifest.dst.index(target), run.truths[target], run.raw[target]
            check = checks[run.sources, target]
            check.before.append(check_scores(before[channel], truth, run.mask, raw, run.seg))
            check.after.append(check_scores(after[channel], truth, run.mask, raw, run.seg))


def flip_ensemble(
    store: Path, name: str, folders: Sequence[Path], *, out: Path | None = None, batch_size: int = 8
) -> ModelManifest:
    """Check the flip average of ``store/name`` on its training cases and build in what passes; write to ``out``.

    Raises:
        FlipEnsembleError: the model already averages, never saw flips, or none of its training cases is found.
    """
    started = time.perf_counter()
    plain = load_model(store / name, "cpu")
    manifest = plain.manifest
    if manifest.flip_ensemble is not None:
        raise FlipEnsembleError(f"{name} already averages over flips")
    if manifest.training.get("augment") is False:
        raise FlipEnsembleError(f"{name} was trained without flips (--no-augment): a flipped slice is new to it")
    cases = training_cases(manifest, folders)
    if not cases:
        raise FlipEnsembleError(f"{name}: none of its training cases is in {', '.join(map(str, folders))}")
    checks: dict[Configuration, Check] = defaultdict(Check)
    for case in cases:
        check_case(plain, case, checks, batch_size)
        logger.info("checked %s", case.case_id)
    records = ordered_records(checks)
    adopted = {(tuple(r.sources), r.target) for r in records if r.adopted}
    if not adopted:
        logger.warning("%s: the flip average helps no configuration; the model is written unchanged in behaviour", name)
    network = torch.jit.load(str(store / name / MODEL_FILE), map_location="cpu")
    wrapped = averaged_network(network, manifest, flag_table(manifest, adopted))
    record = FlipEnsemble(
        flips=list(FLIP_NAMES), rule=RULE, check_cases=[c.case_id for c in cases], configurations=records
    )
    seconds = {"flip_ensemble_seconds": time.perf_counter() - started}
    return write_changed_model(out or store, manifest, wrapped, "flip_ensemble", record, seconds)


def main(argv: list[str] | None = None) -> int:
    """``python -m training.flip_ensemble --model NAME --data DIR [--store DIR] [--out DIR]``."""
    return change_main(
        argv, prog="python -m training.flip_ensemble",
        description="Average a model's output over the flips it was trained with, per (sources, target) only where "
        "that helps on its training cases, and re-export the model with the average inside (its evaluation.json "
        "is dropped: re-run training.evaluate).",
        change=flip_ensemble, records=lambda m: m.flip_ensemble.configurations if m.flip_ensemble else [],
        verdict="averaged",
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
