"""The paper's augmentation: random flips, small rotations and scaling, identical for every channel.

Sources, targets and the brain mask of one slice are stacked as channels and warped by the same
affine map in one :func:`kornia.geometry.transform.warp_affine` call, so a synthesized T2 is never
asked to match a T1 rotated differently. The mask is warped bilinearly and thresholded at 0.5.

The warp also does the final crop: the dataset hands over a window somewhat larger than the
training size (:attr:`Augmenter.window`), and the affine map sends its centre to the centre of
the ``size × size`` output. The margin is chosen so that the largest rotation at the smallest
scale still finds image content (or real background) everywhere, never the zero padding of the
warp.

Randomness comes only from the ``generator`` passed per batch: the training loop seeds it from
(seed, rank, epoch, step), so a resumed run draws exactly the transforms the uninterrupted one
would have, whatever the global RNG went through.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from kornia.geometry.transform import warp_affine


@dataclass(frozen=True)
class AugmentParams:
    """Ranges of the random transforms.

    Attributes:
        flips: flip horizontally and vertically, each with probability 1/2.
        max_rotation: rotation angle drawn uniformly from ±max_rotation degrees.
        max_scale: zoom factor drawn uniformly from 1 ± max_scale.
    """

    flips: bool = True
    max_rotation: float = 10.0
    max_scale: float = 0.1

    def __post_init__(self) -> None:
        if not 0 <= self.max_rotation <= 45:
            raise ValueError(f"max_rotation must be in [0, 45] degrees, got {self.max_rotation}")
        if not 0 <= self.max_scale < 0.5:
            raise ValueError(f"max_scale must be in [0, 0.5), got {self.max_scale}")

    @property
    def enabled(self) -> bool:
        return self.flips or self.max_rotation > 0 or self.max_scale > 0


NO_AUGMENTATION = AugmentParams(flips=False, max_rotation=0.0, max_scale=0.0)


class Augmenter:
    """Random affine augmentation of (sources, targets, mask) batches, then a centre crop.

    Args:
        params: the transform ranges; :data:`NO_AUGMENTATION` gives a plain centre crop.
        size: side of the square output, the training slice size.
    """

    def __init__(self, params: AugmentParams, size: int) -> None:
        self.params = params
        self.size = size
        self.window = self.window_for(params, size)

    @staticmethod
    def window_for(params: AugmentParams, size: int) -> int:
        """Side of the input window whose warp covers a ``size`` output without padding."""
        if not params.enabled:
            return size
        angle = math.radians(params.max_rotation)
        extent = size * (math.cos(angle) + math.sin(angle)) / (1.0 - params.max_scale)
        return math.ceil(extent) + 2  # bilinear reads one pixel beyond the footprint

    def __call__(
        self, sources: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Transform a batch.

        Args:
            sources: (B, k, H, W) float.
            targets: (B, m, H, W) float.
            mask: (B, H, W) bool brain mask.
            generator: a CPU generator; the only source of randomness.

        Returns:
            (sources (B, k, S, S), targets (B, m, S, S), mask (B, S, S) bool) with S = ``size``.
        """
        k, m = sources.shape[1], targets.shape[1]
        if not self.params.enabled:
            return _centre_crop(sources, self.size), _centre_crop(targets, self.size), _centre_crop(mask, self.size)
        stack = torch.cat([sources, targets, mask[:, None].to(sources.dtype)], dim=1)
        matrix = self.sample_matrices(stack.shape[0], stack.shape[-2], stack.shape[-1], generator)
        warped = warp_affine(stack, matrix.to(stack.device, stack.dtype), dsize=(self.size, self.size))
        return warped[:, :k], warped[:, k : k + m], warped[:, k + m] > 0.5

    def sample_matrices(self, batch: int, height: int, width: int, generator: torch.Generator) -> torch.Tensor:
        """(B, 2, 3) maps from input pixel (x, y) to output pixel: flip, rotate and scale about the centre."""
        draws = torch.rand(batch, 4, generator=generator, dtype=torch.float64)
        flip_x = torch.where(draws[:, 0] < 0.5, -1.0, 1.0) if self.params.flips else torch.ones(batch)
        flip_y = torch.where(draws[:, 1] < 0.5, -1.0, 1.0) if self.params.flips else torch.ones(batch)
        angle = torch.deg2rad((2 * draws[:, 2] - 1) * self.params.max_rotation)
        scale = 1 + (2 * draws[:, 3] - 1) * self.params.max_scale
        cos, sin = scale * torch.cos(angle), scale * torch.sin(angle)
        # linear part A = R(angle)·scale·diag(flip_x, flip_y); translation sends the input centre
        # to the output centre: t = c_out - A·c_in.
        a11, a12 = cos * flip_x, -sin * flip_y
        a21, a22 = sin * flip_x, cos * flip_y
        cx_in, cy_in = (width - 1) / 2, (height - 1) / 2
        c_out = (self.size - 1) / 2
        tx = c_out - (a11 * cx_in + a12 * cy_in)
        ty = c_out - (a21 * cx_in + a22 * cy_in)
        rows = [torch.stack([a11, a12, tx], dim=1), torch.stack([a21, a22, ty], dim=1)]
        return torch.stack(rows, dim=1).float()


def _centre_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    height, width = x.shape[-2:]
    if height < size or width < size:
        raise ValueError(f"cannot crop {size}×{size} from {height}×{width}")
    top, left = (height - size) // 2, (width - size) // 2
    return x[..., top : top + size, left : left + size]
