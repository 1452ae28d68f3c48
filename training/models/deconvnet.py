"""CM-2, the Deconv-net baseline: SynNet's pooling indices and unpooling, without long skips.

Encoder blocks, bottleneck and the index-based unpooling are SynNet's; the decoder block is
unpool → conv3×3 → BN → ReLU with no concatenation, so comparing it with SynNet measures what
the skips add (the paper's Table 3 discussion). Same width and pooling depth as SynNet.

Sources are stacked as input channels of one encoder and targets come out of one decoder's 1×1
conv (early fusion, see :mod:`training.models.cnn` for why the baselines do this).
"""

from __future__ import annotations

import torch
from torch import nn

from training.models.blocks import PoolingEncoder, check_input, conv_bn_relu, pad_to_multiple, unpool
from training.models.registry import register_model


class DeconvNet(nn.Module):
    """Encoder with pooling indices → bottleneck → unpooling decoder, no skips.

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
        self.encoder = PoolingEncoder(n_src * slices_per_source, features, depth)
        self.bottleneck = conv_bn_relu(features, features)
        self.decoder = nn.ModuleList([conv_bn_relu(features, features) for _ in range(depth)])
        self.synthesis = nn.Conv2d(features, n_dst, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_src·slices_per_source, H, W) → (B, n_dst, H, W); pads to a multiple of 2^depth and crops back."""
        check_input(x, self.channels)
        height, width = x.shape[2], x.shape[3]
        x, skips, indices = self.encoder(pad_to_multiple(x, self.multiple))
        x = self.bottleneck(x)
        level = len(skips)
        for block in self.decoder:  # deepest level first
            level -= 1
            size = [skips[level].shape[2], skips[level].shape[3]]  # the skip only supplies its size
            x = block(unpool(x, indices[level], size))
        return self.synthesis(x)[:, :, :height, :width]


@register_model("deconvnet")
def deconvnet(n_src: int, n_dst: int, *, features: int = 64, depth: int = 4, slices_per_source: int = 1) -> DeconvNet:
    """CM-2: Deconv-net (unpooling with pooling indices, no skips)."""
    return DeconvNet(n_src, n_dst, features=features, depth=depth, slices_per_source=slices_per_source)
