"""Validation on whole slices: the training loss, and PSNR/SSIM per target via synnet.metrics.evaluate.

The prediction is post-processed exactly as the service does before it is scored (clipped to
[0, 1], zero outside the brain), and scored against the model-space truth per case, with the
case's validation slices stacked into a (X, Y, n) volume, so the numbers are comparable to
``training.evaluate`` and to the manifest of a served model. Metrics are averaged over cases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from synnet.metrics import evaluate
from synnet.modalities import Modality
from synnet.scores import Scores
from training.data.slices import SliceStack

METRIC_NAMES = tuple(Scores.model_fields)


@dataclass
class ValidationResult:
    """Mean validation loss over slices and mean metrics over cases, per target modality."""

    loss: float
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def summary(self) -> str:
        parts = [f"val_loss {self.loss:.4g}"]
        for target, values in self.metrics.items():
            parts.append(
                f"{target}: PSNR {_fmt(values['psnr'])} dB SSIM {_fmt(values['ssim'], 3)} "
                f"(brain {_fmt(values['psnr_brain'])}/{_fmt(values['ssim_brain'], 3)})"
            )
        return "  ".join(parts)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "inf" if value is None else f"{value:.{digits}f}"


@torch.no_grad()
def validate(
    model: nn.Module,
    stacks: Iterable[SliceStack],
    criterion: nn.Module,
    device: torch.device,
    batch_size: int,
    autocast: Callable[[], AbstractContextManager] = nullcontext,
    channels_last: bool = False,
    mask_loss: bool = False,
) -> ValidationResult:
    """Run ``model`` (eval mode) over whole validation slices.

    Args:
        model: the bare network (not the DDP wrapper), mapping (B, k, H, W) → (B, m, H, W).
        stacks: validation cases, each with the slices to score (read lazily: one case in memory at a time).
        criterion: the training loss, ``forward(pred, target, mask=None)``.
        device: where to compute.
        batch_size: slices per forward pass.
        autocast: makes the context that enables mixed precision (a no-op by default).
        channels_last: feed inputs in channels_last memory format.
        mask_loss: pass the brain mask to the loss, as training does.
    """
    was_training = model.training
    model.eval()
    loss_sum, n_slices = 0.0, 0
    per_case: dict[str, list[Scores]] = {}
    try:
        for stack in stacks:
            predictions = []
            for start in range(0, len(stack), batch_size):
                index = slice(start, start + batch_size)
                sources = torch.from_numpy(stack.sources[index]).to(device)
                targets = torch.from_numpy(stack.targets[index]).to(device)
                mask = torch.from_numpy(stack.masks[index]).to(device)
                if channels_last:
                    sources = sources.contiguous(memory_format=torch.channels_last)
                with autocast():
                    pred = model(sources)
                pred = pred.float()
                loss = criterion(pred, targets, mask[:, None] if mask_loss else None)
                loss_sum += float(loss) * len(sources)
                n_slices += len(sources)
                predictions.append(pred.clamp(0, 1).mul(mask[:, None]).cpu().numpy())
            _score_case(stack, np.concatenate(predictions), per_case)
    finally:
        model.train(was_training)
    return ValidationResult(loss=loss_sum / max(n_slices, 1), metrics=_mean_over_cases(per_case))


def _score_case(stack: SliceStack, pred: np.ndarray, out: dict[str, list[Scores]]) -> None:
    """Stack the case's slices into (X, Y, n) volumes and score each target."""
    mask = np.moveaxis(stack.masks, 0, -1)
    for channel, target in enumerate(stack.dst):
        truth = np.moveaxis(stack.targets[:, channel], 0, -1)
        report = evaluate(np.moveaxis(pred[:, channel], 0, -1), truth, mask)
        out.setdefault(Modality(target).value, []).append(report)


def _mean_over_cases(per_case: dict[str, list[Scores]]) -> dict[str, dict[str, float | None]]:
    """Mean of each metric in the record's JSON form (an infinite PSNR, a perfect case, is None)."""
    means = {}
    for target, reports in per_case.items():
        mean = Scores(**{name: float(np.mean([getattr(r, name) for r in reports])) for name in METRIC_NAMES})
        means[target] = mean.model_dump(mode="json")
    return means


@torch.no_grad()
def validate_any_to_any(
    model: nn.Module,
    stacks: Iterable[SliceStack],
    criterion: nn.Module,
    device: torch.device,
    batch_size: int,
    mask_loss: bool = False,
) -> ValidationResult:
    """The unified model, each modality a case has synthesized from all the others it has (leave one out).

    ``stacks`` hold all four modalities, NaN where a case lacks one
    (:func:`training.data.slices.extract_available_slices`). A fixed protocol, so that epochs
    compare; ``training.evaluate`` scores every configuration.
    """
    was_training = model.training
    model.eval()
    loss_sum, n_slices = 0.0, 0
    per_case: dict[str, list[Scores]] = {}
    try:
        for stack in stacks:
            images = torch.from_numpy(stack.sources)
            available = ~torch.isnan(images).flatten(2).any(dim=2)[0]
            images = torch.nan_to_num(images, nan=0.0)
            masks = torch.from_numpy(stack.masks)
            for target in torch.nonzero(available).flatten().tolist():
                present = available.clone()
                present[target] = False
                if not present.any():
                    continue
                predictions = []
                for start in range(0, len(stack), batch_size):
                    x = images[start : start + batch_size].to(device)
                    mask = masks[start : start + batch_size].to(device)
                    weights = present.to(device, x.dtype)
                    pred = model(x * weights[None, :, None, None], weights)[:, target : target + 1].float()
                    truth = x[:, target : target + 1]
                    loss_sum += float(criterion(pred, truth, mask[:, None] if mask_loss else None)) * len(x)
                    n_slices += len(x)
                    predictions.append(pred.clamp(0, 1).mul(mask[:, None]).cpu().numpy()[:, 0])
                pred_volume = np.moveaxis(np.concatenate(predictions), 0, -1)
                truth_volume = np.moveaxis(images[:, target].numpy(), 0, -1)
                report = evaluate(pred_volume, truth_volume, np.moveaxis(masks.numpy(), 0, -1))
                name = Modality(stack.src[target]).value
                per_case.setdefault(name, []).append(report)
    finally:
        model.train(was_training)
    return ValidationResult(loss=loss_sum / max(n_slices, 1), metrics=_mean_over_cases(per_case))
