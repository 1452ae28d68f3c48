"""CM-1, the plain CNN baseline: a stack of full-resolution conv blocks, no pooling, no skips.

It isolates what SynNet's multi-scale path buys: same width (``features``) and the same number of
3×3 conv blocks as a SynNet of pooling depth D (D encoder + 1 bottleneck + D decoder = 2D + 1
blocks; 9 for the default depth 4). ``depth`` is taken in SynNet's sense so every registered
model accepts the same ``features`` / ``depth`` keywords. Every block runs at full resolution, so it costs
about 3× the FLOPs of SynNet (≈ 38 GFLOP per 240² slice at 64 maps).

Several sources are stacked as input channels (early fusion) and several targets come out of one
1×1 synthesis conv as output channels: the baselines compare network components (Table 1), so
they share one simple multi-modal handling instead of SynNet's arms.
"""

from __future__ import annotations

import torch
from torch import nn

from training.models.blocks import check_input, conv_bn_relu
from training.models.registry import register_model


class PlainCNN(nn.Module):
    """(2·depth + 1) × [conv3×3 → BN → ReLU] at full resolution, then a linear 1×1 conv.

    Args:
        n_src: input channels (sources), ≥ 1.
        n_dst: output channels (targets), ≥ 1.
        features: feature maps per block.
        depth: the SynNet pooling depth whose conv budget to match (no pooling happens here).
        slices_per_source: channels per source (1, or more for 2.5D input), all in the first layer.
    """

    def __init__(self, n_src: int, n_dst: int, features: int = 64, depth: int = 4, slices_per_source: int = 1) -> None:
        super().__init__()
        self.n_src = n_src
        self.channels = n_src * slices_per_source
        channels = [n_src * slices_per_source] + [features] * (2 * depth)
        self.body = nn.Sequential(*[conv_bn_relu(c, features) for c in channels])
        self.synthesis = nn.Conv2d(features, n_dst, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_src·slices_per_source, H, W) → (B, n_dst, H, W); no padding needed, every block keeps H×W."""
        check_input(x, self.channels)
        return self.synthesis(self.body(x))


@register_model("cnn")
def cnn(n_src: int, n_dst: int, *, features: int = 64, depth: int = 4, slices_per_source: int = 1) -> PlainCNN:
    """CM-1: plain CNN (no unpooling, no upsampling, no skips), 2·depth + 1 conv blocks."""
    return PlainCNN(n_src, n_dst, features=features, depth=depth, slices_per_source=slices_per_source)
