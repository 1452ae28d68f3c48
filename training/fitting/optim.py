"""Optimizer, learning-rate schedule and numeric precision of a run.

The paper trains with SGD (momentum 0.9, lr 0.01, weight decay 1e-4 = its λ4) and a constant
learning rate; Adam and a cosine decay are offered for the short CPU budgets of this project.
Mixed precision and channels_last are used on CUDA only: measured on this project's CPU,
channels_last makes training 20 % slower and bfloat16 some 70× slower.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from training.fitting.budget import Budget
from training.fitting.config import ConfigError, OptimConfig, RuntimeConfig


def build_optimizer(config: OptimConfig, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """SGD with momentum (the paper's) or Adam, both with ``--weight-decay`` as the L2 penalty."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)
    raise ConfigError(f"unknown --optimizer {config.optimizer!r}; choose sgd or adam")


def build_scheduler(
    config: OptimConfig,
    optimizer: torch.optim.Optimizer,
    budget: Budget,
    elapsed: Callable[[], float] = lambda: 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step schedule: constant, or cosine from ``lr`` down to 1 % of it over the budget.

    The cosine follows :meth:`~training.fitting.budget.Budget.progress`: with ``--time-limit``
    whichever is further along, the steps or the training seconds (``elapsed()``), so a run
    stopped by its time budget still ends annealed.
    """
    if config.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)

    def cosine(step: int) -> float:
        progress = budget.progress(step, elapsed())
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, cosine)


@dataclass(frozen=True)
class Precision:
    """Autocast dtype (None: full fp32) and memory format of a run on its device."""

    device_type: str
    amp_dtype: torch.dtype | None
    channels_last: bool

    @property
    def needs_scaler(self) -> bool:
        """float16 gradients underflow without loss scaling; bfloat16 has fp32's range."""
        return self.amp_dtype == torch.float16

    def autocast(self) -> AbstractContextManager:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.amp_dtype)

    def describe(self) -> str:
        amp = {None: "fp32", torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast"}[self.amp_dtype]
        return f"{amp}{', channels_last' if self.channels_last else ''}"


def choose_precision(config: RuntimeConfig, device: torch.device) -> Precision:
    """Resolve ``--amp`` and ``--channels-last`` for ``device``; ``auto`` means "only on CUDA"."""
    cuda = device.type == "cuda"
    if config.amp != "off" and config.amp != "auto" and not cuda:
        raise ConfigError(f"--amp {config.amp} needs a CUDA device (on CPU it is many times slower than fp32)")
    if config.amp == "auto":
        amp = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda else None
    else:
        amp = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[config.amp]
    channels_last = cuda if config.channels_last == "auto" else config.channels_last == "on"
    return Precision(device_type=device.type, amp_dtype=amp, channels_last=channels_last)
