"""A monotone map of a network's output intensities, applied inside the exported TorchScript.

Why it exists: a network trained with an L1 term predicts the conditional median, so where a
target's bright tail (FLAIR oedema, T1c enhancement) is uncertain from the sources it never
reaches it; the images keep their structure but their intensity distribution is compressed
(experiments/results/diagnosis.md). A monotone map from the output's quantiles
onto the truth's, learnt on training cases (:mod:`training.calibrate`), restores the
distribution without touching the order of intensities, hence the anatomy.

It lives in the model file, not in the service, so every consumer of ``model.pt`` (the service,
the API, Triton) gets the same voxels, and the export's self-check and the manifest digest cover
it like any weight. One map per (row, output channel); a row is a source set: the availability
code ``sum(present[i] << i)`` of an any-to-any model (16 rows), the only row of a dedicated one.
Channels without an adopted map pass through unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from training.models.unified import per_sample_availability

MIN_STEP = 1e-6  # knots_in must rise strictly: the interpolation divides by their gaps


class QuantileMap(nn.Module):
    """Piecewise-linear monotone maps ``knots_in[r, c] -> knots_out[r, c]``, flat beyond the ends.

    Args:
        knots_in: (R, C, K) strictly increasing along K: output intensities (model space).
        knots_out: (R, C, K) non-decreasing along K: what each is mapped to.
        active: (R, C) bool: which maps are applied; the others leave the channel as it is.
    """

    def __init__(self, knots_in: torch.Tensor, knots_out: torch.Tensor, active: torch.Tensor) -> None:
        super().__init__()
        if knots_in.shape != knots_out.shape or knots_in.dim() != 3 or knots_in.shape[2] < 2:
            raise ValueError(f"knots must be two equal (R, C, K >= 2) tensors, got {knots_in.shape}, {knots_out.shape}")
        if active.shape != knots_in.shape[:2]:
            raise ValueError(f"active must be (R, C) = {tuple(knots_in.shape[:2])}, got {tuple(active.shape)}")
        if bool((knots_in.diff(dim=2) <= 0).any()):
            raise ValueError("knots_in must rise strictly along K")
        if bool((knots_out.diff(dim=2) < 0).any()):
            raise ValueError("knots_out must not fall along K: the map has to keep the order of intensities")
        self.register_buffer("knots_in", knots_in.float().contiguous())
        self.register_buffer("knots_out", knots_out.float().contiguous())
        self.register_buffer("active", active.bool())

    def forward(self, y: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) outputs and (B,) long rows → the mapped outputs (B, C, H, W) in float32.

        A float32 copy, always, by the aten op itself: reshaping a cropped (strided) output would make
        ``torch.export`` guard on whether it was cropped, and an exported ``Tensor.to``/``.float()`` of a
        float32 input asserts that dtype instead of casting, which bf16 autocast's outputs would fail.
        """
        batch, channels, height, width = y.shape
        flat = torch.ops.aten._to_copy(y, dtype=torch.float32, memory_format=torch.contiguous_format)
        flat = flat.view(batch, channels, height * width)
        xs = self.knots_in[row]  # (B, C, K)
        ys = self.knots_out[row]
        upper = torch.searchsorted(xs, flat).clamp(1, xs.shape[2] - 1)
        lower = upper - 1
        x0, x1 = xs.gather(2, lower), xs.gather(2, upper)
        y0, y1 = ys.gather(2, lower), ys.gather(2, upper)
        t = ((flat - x0) / (x1 - x0)).clamp(0.0, 1.0)
        mapped = y0 + t * (y1 - y0)
        keep = self.active[row].view(batch, channels, 1)
        return torch.where(keep, mapped, flat).reshape(batch, channels, height, width)


def availability_rows(present: torch.Tensor) -> torch.Tensor:
    """(B, M) availability (1 = source given) → (B,) long code ``sum(present[:, i] << i)``."""
    bits = (present > 0.5).long()
    weights = torch.pow(2, torch.arange(bits.shape[1], device=bits.device))
    return (bits * weights).sum(dim=1)


class CalibratedAnyToAny(nn.Module):
    """An any-to-any network (``forward(x, present)``) followed by a :class:`QuantileMap` per source set."""

    def __init__(self, network: nn.Module, calibration: QuantileMap) -> None:
        super().__init__()
        self.network = network
        self.calibration = calibration
        self.multiple: int = getattr(network, "multiple", 1)  # the network's grid (1 when it is TorchScript)

    def forward(self, x: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        """The network's signature and output, each missing modality's intensities mapped."""
        present = per_sample_availability(x, present)
        y = self.network(x, present)
        return self.calibration(y, availability_rows(present))

    @torch.jit.unused
    def on_grid(self, x: torch.Tensor, present: torch.Tensor, every_decoder: bool = False) -> torch.Tensor:
        """The eager network's ``on_grid``, mapped (the map is per pixel, so cropping after it changes nothing)."""
        return self.calibration(self.network.on_grid(x, present, every_decoder), availability_rows(present))


class CalibratedDedicated(nn.Module):
    """A dedicated network (``forward(x)``, fixed sources) followed by its one-row :class:`QuantileMap`."""

    def __init__(self, network: nn.Module, calibration: QuantileMap) -> None:
        super().__init__()
        self.network = network
        self.calibration = calibration

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.network(x)
        return self.calibration(y, torch.zeros(y.shape[0], dtype=torch.long, device=y.device))
