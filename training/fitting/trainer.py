"""The epoch loop: augment, step, validate, keep the best checkpoint, resume exactly.

Reproducibility does not lean on the global RNG. The sample order comes from
``DistributedSampler(seed)`` with ``set_epoch``, the training windows from ``(seed, epoch, index)``
(see :mod:`training.data.dataset`) and the augmentation from a generator seeded with
``(seed, rank, epoch, step)``. A run resumed from the checkpoint of epoch ``e`` therefore sees the
same batches and transforms as the uninterrupted one, and on CPU ends with the same weights bit
for bit. Checkpoints are written at epoch ends; ``--steps-per-epoch`` makes epochs as short as
a long CPU run needs them to be.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from synnet.errors import SynnetError
from synnet.neighbours import slices_per_source
from training.checkpoint import BEST, LAST, Checkpoint, restore_rng_state, rng_state, save_checkpoint
from training.data.augment import NO_AUGMENTATION, Augmenter, AugmentParams
from training.data.intensity import augment_intensity
from training.data.streaming import StreamedSliceDataset, validation_stacks
from training.fitting.budget import Budget
from training.fitting.config import FitConfig
from training.fitting.data import FitData
from training.fitting.distributed import DistContext, broadcast_buffers
from training.fitting.optim import Precision, build_optimizer, build_scheduler
from training.fitting.regions import loss_weights, split_regions, warp_with_tumour
from training.fitting.subsets import available_modalities, draw_sources, per_target_loss
from training.fitting.validation import ValidationResult, validate, validate_any_to_any
from training.models import is_any_to_any

logger = logging.getLogger(__name__)


class TrainingDivergedError(SynnetError):
    code = "training_diverged"


class Trainer:
    """Owns the model replica, optimizer, schedule and progress of one run.

    Args:
        config: the run's settings.
        context: rank, world size and device.
        data: training and validation slices.
        model: the bare network, already on ``context.device``.
        criterion: the loss module.
        precision: autocast dtype and memory format.
        static_meta: manifest fields fixed for the whole run (src, dst, architecture, split...).
    """

    def __init__(
        self,
        config: FitConfig,
        context: DistContext,
        data: FitData,
        model: nn.Module,
        criterion: nn.Module,
        precision: Precision,
        static_meta: dict[str, Any],
    ) -> None:
        self.config, self.context, self.data = config, context, data
        self.model, self.criterion, self.precision = model, criterion, precision
        self.static_meta = static_meta
        self.any_to_any = is_any_to_any(config.model.arch)
        self.run_dir = Path(config.output.run_dir)
        seed, batch_size, workers = config.runtime.seed, config.optim.batch_size, config.runtime.workers
        windows = config.data
        params = AugmentParams(True, windows.max_rotation, windows.max_scale) if windows.augment else NO_AUGMENTATION
        self.augmenter = Augmenter(params, windows.slice_size)
        memory = config.data.cache_memory * 2**20
        self.train_set = StreamedSliceDataset(data.train, window=self.augmenter.window, seed=seed, memory_bytes=memory)
        self.sampler = DistributedSampler(
            self.train_set, num_replicas=context.world_size, rank=context.rank, shuffle=True, seed=seed
        )
        cuda = context.device.type == "cuda"
        self.loader = DataLoader(
            self.train_set,
            batch_size=batch_size,
            sampler=self.sampler,
            num_workers=workers,
            # a last batch of one slice would make BatchNorm statistics meaningless
            drop_last=len(self.sampler) >= batch_size,
            pin_memory=cuda,
            persistent_workers=workers > 0,
        )
        self.budget = Budget(config.budget, len(self.loader))
        self.optimizer = build_optimizer(config.optim, model.parameters())
        self.train_seconds = 0.0  # time spent in optimizer steps, the clock of --time-limit
        self._built = time.perf_counter()
        self._step_started = time.perf_counter()
        self.scheduler = build_scheduler(config.optim, self.optimizer, self.budget, self._elapsed_in_step)
        self.scaler = torch.amp.GradScaler(context.device.type, enabled=precision.needs_scaler)
        device_ids = [context.device.index] if cuda else None
        self.network = DistributedDataParallel(model, device_ids=device_ids) if context.distributed else model
        self.epoch = 0
        self.step = 0
        self.best: dict[str, Any] = {"val_loss": None, "epoch": None, "metrics": {}}
        self.history: list[dict[str, Any]] = []

    def stop_reason(self) -> str | None:
        """The budget's verdict on the run so far (None: go on), the same on every process.

        Epochs and steps are counted alike everywhere, but each process times its own steps:
        under DDP with ``--time-limit`` rank 0's verdict is broadcast, so that all stop together.
        """
        reason = self.budget.stop_reason(self.epoch, self.step, self.train_seconds)
        if not (self.context.distributed and self.budget.uses_clock):
            return reason
        flag = torch.tensor([float(reason is not None)], device=self.context.device)
        torch.distributed.broadcast(flag, src=0)
        return (reason or "rank 0 is out of time") if flag.item() else None

    def fit(self) -> None:
        """Train until the budget is spent; validate and checkpoint after every epoch."""
        if self.context.is_main:
            logger.info(
                "training: %d slices, %d steps per epoch (batch %d × %d process%s), %d steps in total",
                len(self.train_set),
                self.budget.steps_per_epoch,
                self.config.optim.batch_size,
                self.context.world_size,
                "es" if self.context.distributed else "",
                self.budget.total_steps,
            )
        while (reason := self.stop_reason()) is None:
            started = time.perf_counter()
            train_loss = self.train_epoch()
            broadcast_buffers(self.context, self.model)
            self.epoch += 1
            result = self.validate() if self.context.is_main and self.data.val else None
            improved = self._record(train_loss, result, time.perf_counter() - started)
            if self.context.is_main:
                self.save(improved)
            self.context.barrier()
        if self.context.is_main:
            seconds = self.train_seconds
            logger.info("training stopped: %s (epoch %d, step %d, %.0f s)", reason, self.epoch, self.step, seconds)

    def train_epoch(self) -> float:
        """One pass (or ``--steps-per-epoch`` steps) over the training windows; the mean loss."""
        self.sampler.set_epoch(self.epoch)
        self.train_set.set_epoch(self.epoch)
        self.network.train()
        bar = tqdm(
            total=min(self.budget.steps_per_epoch, max(self.budget.total_steps - self.step, 0)),
            desc=f"epoch {self.epoch + 1}/{self.config.budget.epochs}",
            unit="step",
            disable=not self.context.is_main,
            leave=False,
            file=sys.stderr,
            dynamic_ncols=True,
            mininterval=1.0 if sys.stderr.isatty() else 30.0,
        )
        total, count = 0.0, 0
        for index, (sources, targets, mask) in enumerate(self.loader):
            if index >= self.budget.steps_per_epoch or self.stop_reason() is not None:
                break
            self._step_started = time.perf_counter()
            total += self.train_step(sources, targets, mask, self._augment_generator(index))
            self.train_seconds += time.perf_counter() - self._step_started
            if self.step == 1 and self.context.is_main:  # how long a start takes: data, model, first batch
                logger.info("first optimizer step done, %.1f s after the trainer was built", self._since_built())
            count += 1
            bar.set_postfix(loss=f"{total / count:.4g}", lr=f"{self.scheduler.get_last_lr()[0]:.3g}")
            bar.update()
        bar.close()
        return total / max(count, 1)

    def _since_built(self) -> float:
        return time.perf_counter() - self._built

    def _elapsed_in_step(self) -> float:
        """Training seconds including the step under way (the schedule is stepped inside it)."""
        return self.train_seconds + (time.perf_counter() - self._step_started)

    def _augment_generator(self, index: int) -> torch.Generator:
        entropy = [self.config.runtime.seed, self.context.rank, self.epoch, index]
        seed = np.random.SeedSequence(entropy).generate_state(1)[0]
        return torch.Generator().manual_seed(int(seed))

    def train_step(
        self, sources: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, generator: torch.Generator
    ) -> float:
        """Augment one batch of windows, take an optimizer step, return the loss (averaged over ranks)."""
        device = self.context.device
        sources, targets, mask = (t.to(device, non_blocking=True) for t in (sources, targets, mask))
        brain, tumour = split_regions(mask)
        if self.any_to_any:
            loss = self._any_to_any_loss(sources, brain, tumour, generator)
        else:
            warped = warp_with_tumour(self.augmenter, sources, targets, brain, tumour, generator)
            sources, targets, brain, tumour = warped
            if self.config.data.intensity_augment:
                per_source = slices_per_source(self.config.data.context_slices)
                sources = augment_intensity(sources, brain, generator, slices_per_source=per_source)
            if self.precision.channels_last:
                sources = sources.contiguous(memory_format=torch.channels_last)
            with self.precision.autocast():
                pred = self.network(sources)
            # the loss runs in fp32: SSIM's variances cancel catastrophically in half precision
            loss = self.criterion(pred.float(), targets, self._loss_mask(brain, tumour))
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        value = float(self.context.mean(loss.detach()))
        if not math.isfinite(value):
            raise TrainingDivergedError(
                f"the loss became {value} at step {self.step}; "
                f"lower --lr (now {self.config.optim.lr}) or try --optimizer adam"
            )
        return value

    def _loss_mask(self, brain: torch.Tensor, tumour: torch.Tensor | None) -> torch.Tensor | None:
        """What the loss averages over: nothing (whole window), the brain, or the brain with the tumour weighted."""
        if not self.config.model.mask_loss:
            return None
        return loss_weights(brain, tumour, self.config.model.tumour_weight)

    def _any_to_any_loss(
        self, images: torch.Tensor, brain: torch.Tensor, tumour: torch.Tensor | None, generator: torch.Generator
    ) -> torch.Tensor:
        """Random sources per sample (:mod:`training.fitting.subsets`); targets: the rest the case has."""
        available = available_modalities(images)
        images = torch.nan_to_num(images, nan=0.0)
        _, images, brain, tumour = warp_with_tumour(self.augmenter, images[:, :0], images, brain, tumour, generator)
        sources = draw_sources(available.cpu(), generator).to(images.device)
        inputs = augment_intensity(images, brain, generator) if self.config.data.intensity_augment else images
        present = sources.to(inputs.dtype)
        inputs = inputs * present[:, :, None, None]
        if self.precision.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with self.precision.autocast():
            pred = self.network(inputs, present)
        weights = self._loss_mask(brain, tumour)
        return per_target_loss(self.criterion, pred.float(), images, available & ~sources, weights)

    def validate(self) -> ValidationResult:
        """Scores on the run's fixed, seeded choice of validation slices, read one case at a time."""
        stacks = validation_stacks(self.data.val, self.config.data.val_max_slices, self.config.data.split_seed)
        if self.any_to_any:
            return validate_any_to_any(
                self.model,
                stacks,
                self.criterion,
                self.context.device,
                self.config.optim.batch_size,
                mask_loss=self.config.model.mask_loss,
            )
        return validate(
            self.model,
            stacks,
            self.criterion,
            self.context.device,
            self.config.optim.batch_size,
            autocast=self.precision.autocast,
            channels_last=self.precision.channels_last,
            mask_loss=self.config.model.mask_loss,
        )

    def _record(self, train_loss: float, result: ValidationResult | None, seconds: float) -> bool:
        """Append to the history, update the best epoch; True when this epoch is the new best."""
        entry: dict[str, Any] = {
            "epoch": self.epoch,
            "step": self.step,
            "train_loss": round(train_loss, 6),
            "lr": self.scheduler.get_last_lr()[0],
            "seconds": round(seconds, 1),
        }
        if result is not None:
            entry["val_loss"] = round(result.loss, 6)
            entry["val"] = result.metrics
        self.history.append(entry)
        best_loss = self.best["val_loss"]
        # without validation cases every epoch is "best": the last weights are exported
        improved = result is None or best_loss is None or result.loss < best_loss
        if improved:
            self.best = {
                "val_loss": None if result is None else result.loss,
                "epoch": self.epoch,
                "metrics": {} if result is None else result.metrics,
            }
        if self.context.is_main:
            summary = result.summary() if result is not None else "no validation cases"
            logger.info(
                "epoch %d/%d  train_loss %.4g  %s  (%.0f s)%s",
                self.epoch,
                self.config.budget.epochs,
                train_loss,
                summary,
                seconds,
                "  [best]" if improved else "",
            )
        return improved

    def manifest_fields(self) -> dict[str, Any]:
        """Manifest fields as of now: the static ones plus best validation metrics and progress."""
        training = {
            **{k: v for k, v in self.config.to_json().items() if k not in ("src", "dst", "name", "model_version")},
            "epochs_completed": self.epoch,
            "steps": self.step,
            "train_seconds": round(self.train_seconds, 1),
            "samples_seen": self.step * self.config.optim.batch_size * self.context.world_size,
            "best_epoch": self.best["epoch"],
            "best_val_loss": self.best["val_loss"],
            "world_size": self.context.world_size,
            "device": self.context.device.type,
            "precision": self.precision.describe(),
            "loss_config": getattr(self.criterion, "config", {}),
            "history": self.history,
        }
        return {**self.static_meta, "validation": self.best["metrics"], "training": training}

    def state_dict(self) -> Checkpoint:
        return {
            "config": self.config.to_json(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "epoch": self.epoch,
            "step": self.step,
            "train_seconds": self.train_seconds,
            "best": self.best,
            "history": self.history,
            "rng": rng_state(),
            "meta": {"manifest": self.manifest_fields()},
        }

    def load_state_dict(self, checkpoint: Checkpoint) -> None:
        """Continue from a checkpoint of the same run (weights, optimizer, schedule, progress, RNG)."""
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        if checkpoint.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(checkpoint["scaler"])
        self.epoch, self.step = checkpoint["epoch"], checkpoint["step"]
        self.train_seconds = float(checkpoint.get("train_seconds", 0.0))
        self.best, self.history = checkpoint["best"], list(checkpoint["history"])
        restore_rng_state(checkpoint["rng"])
        logger.info("resumed after epoch %d (step %d)", self.epoch, self.step)

    def save(self, improved: bool) -> None:
        state = self.state_dict()
        save_checkpoint(state, self.run_dir / LAST)
        if improved:
            save_checkpoint(state, self.run_dir / BEST)
