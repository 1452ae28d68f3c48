"""Building blocks shared by the encoder-decoder networks.

Kept TorchScript-friendly (script, trace and freeze): no Python-only control flow on tensors,
and unpooling through ``torch.ops.aten.max_unpool2d`` because ``nn.MaxUnpool2d`` does not
script and ``F.max_unpool2d`` does not trace in this torch release.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """3×3 convolution with bias (as the paper specifies) → BatchNorm → ReLU; keeps H×W."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=True),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad (B, C, H, W) at the bottom and right so H and W are multiples of ``multiple``.

    Zero is the background value in model space (outside the brain), so the padding looks like
    more background; the caller crops the output back with ``[..., :H, :W]``.
    """
    pad_h = (multiple - x.shape[2] % multiple) % multiple
    pad_w = (multiple - x.shape[3] % multiple) % multiple
    return F.pad(x, [0, pad_w, 0, pad_h])


def check_input(x: torch.Tensor, n_src: int) -> None:
    """Raise ValueError unless ``x`` is (B, n_src, H, W); skipped while tracing (shapes are fixed then)."""
    if torch.jit.is_tracing():
        return
    if x.dim() != 4 or x.shape[1] != n_src:
        raise ValueError(f"expected input of shape (B, {n_src}, H, W), got {list(x.shape)}")


def unpool(x: torch.Tensor, indices: torch.Tensor, size: list[int]) -> torch.Tensor:
    """Max-unpool (B, C, h, w) to (B, C, *size): each value goes back to where its max came from.

    With 2×2 windows at stride 2 every output position is written at most once, so the result is
    deterministic, but torch flags ``max_unpool2d`` as nondeterministic: under
    ``torch.use_deterministic_algorithms(True)`` it raises unless ``warn_only=True`` is given.
    """
    return torch.ops.aten.max_unpool2d(x, indices, size)


class PoolingEncoderBlock(nn.Module):
    """conv3×3 → BN → ReLU → 2×2 max-pool that keeps its indices (paper, "Encoder Block").

    Returns ``(features, pooled, indices)``: the pre-pool features (B, F, H, W) feed the long skip
    connection, the pooled ones (B, F, H/2, W/2) the next block, the indices the matched unpooling.
    """

    def __init__(self, in_channels: int, features: int) -> None:
        super().__init__()
        self.conv = conv_bn_relu(in_channels, features)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = self.conv(x)
        pooled, indices = F.max_pool2d_with_indices(features, kernel_size=2, stride=2)
        return features, pooled, indices


class PoolingEncoder(nn.Module):
    """A contracting path of ``depth`` :class:`PoolingEncoderBlock` s (one SynNet encoder arm)."""

    def __init__(self, in_channels: int, features: int, depth: int) -> None:
        super().__init__()
        channels = [in_channels] + [features] * (depth - 1)
        self.blocks = nn.ModuleList([PoolingEncoderBlock(c, features) for c in channels])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """(B, C, H, W) → deepest (B, F, H/2^D, W/2^D), skips and indices per level (shallow first)."""
        skips: list[torch.Tensor] = []
        indices: list[torch.Tensor] = []
        for block in self.blocks:
            skip, x, index = block(x)
            skips.append(skip)
            indices.append(index)
        return x, skips, indices
