"""One training run from settings to exported model: wiring, not logic.

Order matters in three places: the process group starts before the phantoms are generated (rank
0 writes them, the others wait), the weights are seeded identically on every rank before the
model is built, and export reads the best checkpoint back from disk, so what is exported is
exactly what ``training.export`` would export from the same run directory.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synnet.manifest import ModelManifest
from synnet.modalities import parse_modalities
from synnet.neighbours import slices_per_source
from training.checkpoint import BEST, LAST, Checkpoint, load_checkpoint, warm_start
from training.export import export_checkpoint
from training.fitting.config import ConfigError, FitConfig, ModelConfig, describe
from training.fitting.data import FitData, prepare_data
from training.fitting.distributed import DistContext, gather_digests, init_distributed, shutdown
from training.fitting.optim import choose_precision
from training.fitting.trainer import Trainer
from training.losses import build_loss
from training.models import create_model, is_any_to_any, model_config

logger = logging.getLogger(__name__)

DIGEST_FILE = "replica_digests.json"


@dataclass
class FitResult:
    """What a run produced: its folder, the exported manifest (None with --no-export), history."""

    run_dir: Path
    manifest: ModelManifest | None
    history: list[dict[str, Any]] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def loss_kwargs(config: ModelConfig) -> dict[str, Any]:
    """The loss's keyword arguments from the model settings (none: the loss's defaults)."""
    names = ("lambda_l2", "lambda_ssim", "lambda_tv")
    kwargs: dict[str, Any] = {} if config.lambdas is None else dict(zip(names, config.lambdas, strict=True))
    if config.histogram_weight:
        kwargs["lambda_hist"] = config.histogram_weight
        kwargs["hist_bands"] = config.histogram_bands
    return kwargs


def static_manifest_fields(
    config: FitConfig, data: FitData, architecture: dict[str, Any], loss: Any, multiple_of: int
) -> dict[str, Any]:
    """Manifest fields that do not change during the run (JSON values, checkpoint-friendly)."""
    return {
        "version": config.output.model_version,
        "src": list(config.src),
        "dst": list(config.dst),
        "any_to_any": is_any_to_any(config.model.arch),
        "architecture": {"name": config.model.arch, "params": {k: v for k, v in architecture.items() if k != "arch"}},
        "loss": {"name": config.model.loss, "lambdas": dict(loss.lambdas)},
        "normalization": data.normalization.model_dump(),
        "output_reference": {m.value: r.model_dump() for m, r in data.output_reference.items()},
        "input": {
            "multiple_of": multiple_of,
            "min_size": max(16, multiple_of),
            "trained_slice_size": config.data.slice_size,
            "context_slices": config.data.context_slices,
        },
        "training_data": {
            "source": data.source,
            "n_cases": data.split.n_cases,
            "train_cases": data.split.train,
            "val_cases": data.split.val,
            "test_cases": data.split.test,
            "split_seed": data.split.seed,
        },
    }


def adopt_best(old_dir: Path, run_dir: Path) -> None:
    """Copy the best checkpoint of a resumed run into its new run folder, unless one is there."""
    old_best, new_best = old_dir / BEST, run_dir / BEST
    if old_best.is_file() and not new_best.exists() and old_dir.resolve() != run_dir.resolve():
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(old_best, new_best)


def check_same_split(resume: Checkpoint, static: dict[str, Any]) -> None:
    """A resumed run must see the subjects it was trained on, even if the data folder moved."""
    keys = ("train_cases", "val_cases", "test_cases")
    recorded = resume["meta"]["manifest"]["training_data"]
    now = static["training_data"]
    if any(recorded[key] != now[key] for key in keys):
        raise ConfigError(
            f"the data now give another subject split than the resumed run's ({recorded['source']}: "
            f"{len(recorded['train_cases'])} train, {len(recorded['val_cases'])} val, "
            f"{len(recorded['test_cases'])} test); resume on the same cases"
        )


def run(config: FitConfig, resume: Checkpoint | None = None, resume_path: str | Path | None = None) -> FitResult:
    """Train (or continue) the run described by ``config`` and export it; see ``python -m training.fit -h``.

    Args:
        config: the run's settings.
        resume: a checkpoint of this run to continue from.
        resume_path: where ``resume`` was read; its folder's ``best.pt`` is carried over when the
            run continues in another ``--run-dir``.
    """
    context = init_distributed(config.runtime.device)
    try:
        if context.is_main and resume_path is not None:
            adopt_best(Path(resume_path).parent, Path(config.output.run_dir))
        return _run(config, resume, context)
    finally:
        shutdown(context)


def build_trainer(config: FitConfig, context: DistContext, resuming: bool = False) -> Trainer:
    """Everything a run needs before its first step: the data (its cache prepared), the seeded model, the loss.

    A resumed run's weights come from its checkpoint, so ``--init`` is not read then.
    """
    if context.is_main:
        run_dir = Path(config.output.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(config.to_json(), indent=2) + "\n")
    seed_everything(config.runtime.seed)
    data = prepare_data(config, context.is_main, context.barrier)
    if context.is_main:
        logger.info("%s", describe(config))
    precision = choose_precision(config.runtime, context.device)
    if context.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed window size: the autotuned kernels are reused

    src, dst = parse_modalities(config.src), parse_modalities(config.dst)
    hyper = {"features": config.model.features, "depth": config.model.depth}
    if config.model.fusion is not None:
        hyper["fusion"] = config.model.fusion
    if config.data.context_slices:  # only then: the unified builder takes no slices_per_source
        hyper["slices_per_source"] = slices_per_source(config.data.context_slices)
    architecture = model_config(config.model.arch, len(src), len(dst), **hyper)
    torch.manual_seed(config.runtime.seed)  # identical initial weights on every rank and on every rerun
    model = create_model(config.model.arch, len(src), len(dst), **hyper)
    if config.model.init and not resuming:
        warm_start(model, load_checkpoint(config.model.init)["model"])
    model.to(context.device)
    if precision.channels_last:
        model.to(memory_format=torch.channels_last)
    criterion = build_loss(config.model.loss, **loss_kwargs(config.model)).to(context.device)
    static = static_manifest_fields(config, data, architecture, criterion, getattr(model, "multiple", 1))
    if context.is_main:
        logger.info("device %s, %s, %d process(es)", context.device, precision.describe(), context.world_size)
    return Trainer(config, context, data, model, criterion, precision, static)


def _run(config: FitConfig, resume: Checkpoint | None, context: DistContext) -> FitResult:
    run_dir = Path(config.output.run_dir)
    trainer = build_trainer(config, context, resuming=resume is not None)
    if resume is not None:
        check_same_split(resume, trainer.static_meta)
        trainer.load_state_dict(resume)
    trainer.fit()

    digests = gather_digests(context, trainer.model)
    manifest = None
    if context.is_main:
        if context.distributed:
            (run_dir / DIGEST_FILE).write_text(json.dumps(digests) + "\n")
        if config.output.export:
            manifest = export_run(run_dir, config.output.store, config.output.name)
    context.barrier()
    return FitResult(run_dir=run_dir, manifest=manifest, history=trainer.history, digests=digests)


def export_run(run_dir: Path, store: str | Path, name: str) -> ModelManifest:
    """Export the best weights with the final run record (last.pt's manifest fields) to ``store/name``."""
    final = load_checkpoint(run_dir / LAST)
    final["model"] = load_checkpoint(run_dir / BEST)["model"]
    manifest = export_checkpoint(final, store, name)
    metrics = "; ".join(
        f"{m}: PSNR {v.psnr:.2f} dB, SSIM {v.ssim:.3f}" for m, v in manifest.validation.items() if math.isfinite(v.psnr)
    )
    logger.info(
        "model %s written to %s%s", manifest.name, Path(store) / manifest.name, f" ({metrics})" if metrics else ""
    )
    return manifest
