"""CM-3, the U-Net baseline: SynNet's skips, but bilinear upsampling instead of index unpooling.

Encoder blocks are conv3×3 → BN → ReLU → 2×2 max-pool (indices discarded); decoder blocks are
bilinear ×2 upsampling → concat the matched encoder features → conv3×3 → BN → ReLU. Comparing it
with SynNet measures what index-based unpooling adds over interpolation (the paper argues
interpolation diffuses edges). Same width, pooling depth and conv count as SynNet, so the
FLOPs match too; bilinear rather than transposed-conv upsampling keeps the parameter count equal.

Sources are stacked as input channels and targets come out of one 1×1 conv (early fusion, see
:mod:`training.models.cnn`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.models.blocks import check_input, conv_bn_relu, pad_to_multiple
from training.models.registry import register_model


class UNet(nn.Module):
    """U-Net with one conv block per level and bilinear upsampling.

    Args:
        n_src: input channels (sources), ≥ 1.
        n_dst: output channels (targets), ≥ 1.
        features: feature maps per block.
        depth: number of 2×2 poolings.
        slices_per_source: channels per source (1, or more for 2.5D input), all in the first layer.
    """

    def __init__(self, n_src: int, n_dst: int, features: int = 64, depth: int = 4, slices_per_source: int = 1) -> None:
        super().__init__()
        self.n_src = n_src
        self.channels = n_src * slices_per_source
        self.multiple = 2**depth
        channels = [n_src * slices_per_source] + [features] * (depth - 1)
        self.encoder = nn.ModuleList([conv_bn_relu(c, features) for c in channels])
        self.bottleneck = conv_bn_relu(features, features)
        self.decoder = nn.ModuleList([conv_bn_relu(2 * features, features) for _ in range(depth)])
        self.synthesis = nn.Conv2d(features, n_dst, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_src·slices_per_source, H, W) → (B, n_dst, H, W); pads to a multiple of 2^depth and crops back."""
        check_input(x, self.channels)
        height, width = x.shape[2], x.shape[3]
        x = pad_to_multiple(x, self.multiple)
        skips: list[torch.Tensor] = []
        for block in self.encoder:
            skip = block(x)
            skips.append(skip)
            x = F.max_pool2d(skip, kernel_size=2, stride=2)
        x = self.bottleneck(x)
        level = len(skips)
        for block in self.decoder:  # deepest level first
            level -= 1
            skip = skips[level]
            x = F.interpolate(x, size=[skip.shape[2], skip.shape[3]], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.synthesis(x)[:, :, :height, :width]


@register_model("unet")
def unet(n_src: int, n_dst: int, *, features: int = 64, depth: int = 4, slices_per_source: int = 1) -> UNet:
    """CM-3: U-Net (bilinear upsampling and long skips, no unpooling)."""
    return UNet(n_src, n_dst, features=features, depth=depth, slices_per_source=slices_per_source)
