"""SynNet (the paper's Fig. 1): encoder arms with pooling indices, decoder arms with unpooling and
long skips, for SISO (k=1, m=1), MISO (k>1, m=1) and MIMO (k>1, m>1) synthesis.

Layout for ``k = n_src`` sources, ``m = n_dst`` targets, ``F = features``, ``D = depth``::

    source a ──► encoder arm a: D × [conv3×3 → BN → ReLU → maxpool2×2 (+indices)]   (a = 1..k)
                     │ skips s_l^a (B, F, H/2^l, W/2^l), indices i_l^a, deepest e^a
    fusion:      bottleneck = conv3×3(concat_a e^a: k·F → F) → BN → ReLU
                 skip_l     = concat_a s_l^a                          (B, k·F, H/2^l, W/2^l)
                 index_l    = argmax-pool of max_a s_l^a              (B, F, H/2^(l+1), W/2^(l+1))
    target t ──► decoder arm t: D × [unpool(index_l) → concat skip_l → conv3×3 (F + k·F → F)
                                      → BN → ReLU],  then conv1×1 (F → 1), linear output

Fusion is by concatenation, as the paper's MISO/MIMO description says ("two encoder arms
processed parallely and later concatenated"). The bottleneck convolution is the one place where
the concatenated arms are mixed down to F maps; the skips stay concatenated so each decoder
convolution sees every source's features at its scale, and the decoder width stays F.

**Unpooling indices with several encoder arms.** Each arm pools its own features, so at level
``l`` there are k index maps but the decoder feature map has only F channels to place. We use
the indices of max-pooling the element-wise maximum over arms, ``max_a s_l^a``: for every
channel and 2×2 cell the value goes back to the position where *any* source responded most
strongly. Why this choice:

* it reduces exactly to the paper's rule when k = 1 (the arm's own indices, reused as is);
* it treats the sources symmetrically, unlike "the indices of arm 0", so the result does not
  depend on the order of ``src`` beyond the channel order of the concatenations;
* it stays "where the encoder's maximum was", the property the paper wants from index-based
  unpooling (edges restored at their location, not blurred by interpolation);
* it costs one element-wise maximum and one 2×2 pool per level, negligible beside the convs.

Any H×W works: the input is zero-padded (bottom/right) to a multiple of 2^D and the output is
cropped back. Cost for k = m = 1, F = 64, D = 4 on a 240×240 slice: about 12.8 GFLOP, 88 % of it
in the decoder (two thirds in its full-resolution 128 → 64 convolution).
"""

from __future__ import annotations

import torch
from torch import nn

from training.models.blocks import PoolingEncoder, check_input, conv_bn_relu, pad_to_multiple, unpool
from training.models.registry import register_model


class DecoderArm(nn.Module):
    """One target's expanding path: ``depth`` unpool → concat skip → conv blocks, then a 1×1 conv."""

    def __init__(self, features: int, skip_channels: int, depth: int, out_channels: int = 1) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([conv_bn_relu(features + skip_channels, features) for _ in range(depth)])
        self.synthesis = nn.Conv2d(features, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor], indices: list[torch.Tensor]) -> torch.Tensor:
        """Deepest fused features and per-level fused skips/indices (shallow first) → (B, 1, H, W)."""
        level = len(skips)
        for block in self.blocks:  # deepest level first
            level -= 1
            skip = skips[level]
            x = unpool(x, indices[level], [skip.shape[2], skip.shape[3]])
            x = block(torch.cat([x, skip], dim=1))
        return self.synthesis(x)


class SynNet(nn.Module):
    """SynNet with ``n_src`` encoder arms and ``n_dst`` decoder arms (see the module docstring).

    Args:
        n_src: number of source modalities k (one arm each), ≥ 1.
        n_dst: number of target modalities m (output channels, one arm each), ≥ 1.
        features: feature maps in every block (the paper uses 64).
        depth: number of 2×2 poolings (the paper's figure shows 4).
        slices_per_source: input channels of each arm: 1, or the slice and its axial neighbours
            for 2.5D input (:mod:`synnet.neighbours`; a source's channels are adjacent).
    """

    def __init__(self, n_src: int, n_dst: int, features: int = 64, depth: int = 4, slices_per_source: int = 1) -> None:
        super().__init__()
        self.n_src = n_src
        self.slices_per_source = slices_per_source
        self.multiple = 2**depth
        self.encoders = nn.ModuleList([PoolingEncoder(slices_per_source, features, depth) for _ in range(n_src)])
        self.bottleneck = conv_bn_relu(n_src * features, features)
        self.decoders = nn.ModuleList([DecoderArm(features, n_src * features, depth) for _ in range(n_dst)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_src·slices_per_source, H, W) in model space → (B, n_dst, H, W), channels in ``src``/``dst`` order."""
        per_source = self.slices_per_source
        check_input(x, self.n_src * per_source)
        height, width = x.shape[2], x.shape[3]
        x = pad_to_multiple(x, self.multiple)
        deepest: list[torch.Tensor] = []
        arm_skips: list[list[torch.Tensor]] = []
        arm_indices: list[list[torch.Tensor]] = []
        for arm, encoder in enumerate(self.encoders):
            deep, skips, indices = encoder(x[:, arm * per_source : (arm + 1) * per_source])
            deepest.append(deep)
            arm_skips.append(skips)
            arm_indices.append(indices)
        fused = self.bottleneck(torch.cat(deepest, dim=1))
        skips, indices = _fuse_skips(arm_skips, arm_indices)
        out = torch.cat([decoder(fused, skips, indices) for decoder in self.decoders], dim=1)
        return out[:, :, :height, :width]


def _fuse_skips(
    arm_skips: list[list[torch.Tensor]], arm_indices: list[list[torch.Tensor]]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Concatenate the arms' skips per level; indices from pooling their element-wise maximum."""
    if len(arm_skips) == 1:
        return arm_skips[0], arm_indices[0]
    skips: list[torch.Tensor] = []
    indices: list[torch.Tensor] = []
    for level in range(len(arm_skips[0])):
        per_arm = [s[level] for s in arm_skips]
        strongest = per_arm[0]
        for other in per_arm[1:]:
            strongest = torch.maximum(strongest, other)
        skips.append(torch.cat(per_arm, dim=1))
        indices.append(torch.nn.functional.max_pool2d_with_indices(strongest, kernel_size=2, stride=2)[1])
    return skips, indices


@register_model("synnet")
def synnet(n_src: int, n_dst: int, *, features: int = 64, depth: int = 4, slices_per_source: int = 1) -> SynNet:
    """The paper's SynNet: pooling-index unpooling plus long skips (Table 1, last row)."""
    return SynNet(n_src, n_dst, features=features, depth=depth, slices_per_source=slices_per_source)
