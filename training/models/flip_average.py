"""The network's output averaged over the flips it was trained with, inside the exported TorchScript.

Why it exists: training draws random left-right and up-down flips of every window
(:mod:`training.data.augment`), so the network has learnt four views of each slice, and its
errors differ between them. Averaging the four predictions, each flipped back, removes part of
that variance: on the held-out cases it raised brain SSIM by 0.01–0.03 for T2, T1 and FLAIR
targets (experiments/results/flip_ensemble.md). Where a target's bright tail was trained in by the distribution term
(the T1c models) the average narrows the distribution again and costs PSNR, so it is applied per
(row, output channel), only where :mod:`training.flip_ensemble` adopted it, like the output
calibration's maps (:mod:`training.models.output_calibration`). It costs four forwards of every
batch holding an adopted row.

It lives in the model file, not in the service, so every consumer of ``model.pt`` (the service,
the API, Triton) gets the same voxels, and the export's self-check and the digest cover it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from training.models.blocks import pad_to_multiple
from training.models.output_calibration import availability_rows
from training.models.unified import per_sample_availability

# The views averaged: the augmentation's flips, as dims of (B, C, H, W) () [3] [2] [2, 3].
FLIP_NAMES = ("none", "left-right", "up-down", "both")
FLIP_DIMS = ([3], [2], [2, 3])  # the views besides the plain one


def flip_mean(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The average the wrappers compute, given the plain view ``y = forward(x)`` (eager; the check's three forwards).

    :mod:`training.flip_ensemble` scores every configuration with and without the average; taking
    the plain view it already has saves a fifth of that check's network time.
    """
    total = y.clone()
    for dims in [[3], [2], [2, 3]]:
        total += forward(x.flip(dims)).flip(dims)
    return total / 4.0


def _keep(active: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """(R, C) adopted flags and (B,) rows → (B, C, 1, 1) bool: where the average replaces the output."""
    keep = active[rows]
    return keep.view(keep.shape[0], keep.shape[1], 1, 1)


class FlipAveragedDedicated(nn.Module):
    """A dedicated network (``forward(x)``) whose adopted output channels are averaged over :data:`FLIPS`.

    Args:
        network: the model file's module (a calibrated one included).
        active: (1, C) bool: which output channels are averaged.
    """

    def __init__(self, network: nn.Module, active: torch.Tensor) -> None:
        super().__init__()
        if active.dim() != 2 or active.shape[0] != 1:
            raise ValueError(f"a dedicated model has one row of flags, got {tuple(active.shape)}")
        self.network = network
        self.register_buffer("active", active.bool())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.network(x)
        keep = _keep(self.active, torch.zeros(x.shape[0], dtype=torch.long, device=x.device))
        if not torch.jit.is_scripting():  # noqa: SIM102 (one `and` would make TorchScript compile the right side)
            if torch.compiler.is_exporting():  # no branch on the flags: the exported program always averages
                return _averaged(self.network, x, y, keep)
        if not bool(keep.any()):
            return y
        total = y.clone()
        for dims in [[3], [2], [2, 3]]:
            total += self.network(x.flip(dims)).flip(dims)
        return torch.where(keep, total / 4.0, y)


class FlipAveragedAnyToAny(nn.Module):
    """An any-to-any network (``forward(x, present)``), averaged over :data:`FLIPS` per source set and target.

    Args:
        network: the model file's module (a calibrated one included).
        active: (2**M, C) bool, row = availability code ``sum(present[i] << i)``.
    """

    def __init__(self, network: nn.Module, active: torch.Tensor) -> None:
        super().__init__()
        if active.dim() != 2:
            raise ValueError(f"flags must be (rows, channels), got {tuple(active.shape)}")
        self.network = network
        self.register_buffer("active", active.bool())

    def forward(self, x: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        """The network's signature and output; a batch without an adopted row runs once."""
        present = per_sample_availability(x, present)
        y = self.network(x, present)
        keep = _keep(self.active, availability_rows(present))
        if not torch.jit.is_scripting():  # noqa: SIM102 (one `and` would make TorchScript compile the right side)
            if torch.compiler.is_exporting():  # an exported program branches on a value through torch.cond
                return self._exported_average(x, present, y, keep)
        if not bool(keep.any()):
            return y
        total = y.clone()
        for dims in [[3], [2], [2, 3]]:
            total += self.network(x.flip(dims), present).flip(dims)
        return torch.where(keep, total / 4.0, y)

    @torch.jit.unused
    def _exported_average(
        self, x: torch.Tensor, present: torch.Tensor, y: torch.Tensor, keep: torch.Tensor
    ) -> torch.Tensor:
        """The average as ``torch.cond`` runs it: the flipped views are padded here, outside the branch (which
        cannot save padding arithmetic), and the branch runs the eager network's ``on_grid`` on them."""
        height, width = x.shape[2], x.shape[3]
        views = [pad_to_multiple(x.flip(dims), self.network.multiple) for dims in FLIP_DIMS]

        def flipped(present: torch.Tensor, *views: torch.Tensor) -> tuple[torch.Tensor, ...]:
            # contiguous: both branches must return the same strides, whatever layout the convolutions chose
            return tuple(self.network.on_grid(view, present, every_decoder=True).contiguous() for view in views)

        def skipped(present: torch.Tensor, *views: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return tuple(view.new_zeros(view.shape[0], y.shape[1], view.shape[2], view.shape[3]) for view in views)

        outputs = torch.cond(keep.any(), flipped, skipped, (present, *views))
        total = y.clone()
        for output, dims in zip(outputs, FLIP_DIMS, strict=True):
            total = total + output[:, :, :height, :width].flip(dims)
        return torch.where(keep, total / 4.0, y)


def _averaged(
    forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, keep: torch.Tensor
) -> torch.Tensor:
    """What the wrappers return when a row averages, as the exported program computes it (``y = forward(x)``)."""
    return torch.where(keep, flip_mean(forward, x, y), y)
