"""Unified SynNet: one network for every (src, dst) among T1, T1c, T2 and FLAIR.

Four encoder arms and four decoder arms, one per modality in canonical order (T1, T1c, T2,
FLAIR), built from the same blocks as :class:`training.models.synnet.SynNet` (pooling indices,
unpooling, long skips). ``forward(x, present)`` takes all four channels and which of them are
real::

    x        (B, 4, H, W)  model space; a missing channel's values are ignored (zero them)
    present  (B, 4) float  1 = this sample has the modality as a source, 0 = it does not
             (a (4,) vector is broadcast to every sample)
    output   (B, 4, H, W)  every modality; only the missing ones are meaningful

How a missing source stays out of the way (see docs/ARCHITECTURE.md, "The unified model"):

* its encoder arm's features are multiplied by 0 at every level, whatever the input holds;
* skips and the deepest features are fused by the *mean over present arms*, so one source or
  three give features on the same scale, and an absent arm adds no "dark image" to the mean;
  with ``fusion="mean_max"`` the element-wise maximum over present arms joins the mean (a 1×1
  conv → BN → ReLU per level mixes the two), so a feature that only one source carries (oedema
  bright in T2, dark in T1) reaches the decoder at full strength instead of divided by the
  number of sources;
* unpooling indices come from max-pooling the element-wise maximum of the arms' (masked,
  post-ReLU, hence ≥ 0) skips: a zeroed arm never wins a cell, as if it were not there;
* the availability code ``present`` enters the bottleneck as four constant planes, so the
  decoder knows which contrasts it was shown (a T2 made from T1 alone differs from one made
  from T1 + FLAIR) and never has to guess it from the features.

A decoder arm runs only when some sample of the batch lacks its modality: with three sources,
one decoder runs instead of four (the decoders are most of the cost).
"""

from __future__ import annotations

import torch
from torch import nn

from training.models.blocks import PoolingEncoder, check_input, conv_bn_relu, pad_to_multiple
from training.models.registry import register_model
from training.models.synnet import DecoderArm

N_MODALITIES = 4
FUSIONS = ("mean", "mean_max")


def _mix(features: int) -> nn.Sequential:
    """1×1 conv → BN → ReLU from [mean, max] (2F channels) to F: the mean_max fusion of one level."""
    return nn.Sequential(
        nn.Conv2d(2 * features, features, kernel_size=1), nn.BatchNorm2d(features), nn.ReLU(inplace=True)
    )


def per_sample_availability(x: torch.Tensor, present: torch.Tensor | None) -> torch.Tensor:
    """(B, M, H, W) input and a (B, M), (M,) or missing availability → (B, M) of 0/1 in x's dtype.

    One place for the convention every any-to-any module follows: no ``present`` means every
    channel is a source, a vector applies to every sample, and anything above 0.5 counts as given.
    """
    batch, modalities = x.shape[0], x.shape[1]
    if present is None:
        return torch.ones(batch, modalities, dtype=x.dtype, device=x.device)
    if present.dim() == 1:
        present = present.unsqueeze(0).expand(batch, modalities)
    return (present.to(x.dtype) > 0.5).to(x.dtype)


class UnifiedSynNet(nn.Module):
    """SynNet with one encoder and one decoder arm per modality and an availability input.

    Args:
        features: feature maps in every block.
        depth: number of 2×2 poolings.
        fusion: how the present arms' features are combined: "mean", or "mean_max" (mean and
            element-wise maximum, mixed by a 1×1 conv per level).
    """

    def __init__(self, features: int = 64, depth: int = 4, fusion: str = "mean") -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, got {fusion!r}")
        self.n_src = N_MODALITIES
        self.multiple = 2**depth
        self.with_max = fusion == "mean_max"
        self.encoders = nn.ModuleList([PoolingEncoder(1, features, depth) for _ in range(N_MODALITIES)])
        deep_channels = 2 * features if self.with_max else features
        self.bottleneck = conv_bn_relu(deep_channels + N_MODALITIES, features)
        self.skip_mixers = nn.ModuleList([_mix(features) for _ in range(depth)] if self.with_max else [])
        self.decoders = nn.ModuleList([DecoderArm(features, features, depth) for _ in range(N_MODALITIES)])

    def forward(self, x: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 4, H, W) and (B, 4) or (4,) availability → (B, 4, H, W), channels T1, T1c, T2, FLAIR."""
        check_input(x, self.n_src)
        height, width = x.shape[2], x.shape[3]
        present = per_sample_availability(x, present)
        return self.on_grid(pad_to_multiple(x, self.multiple), present)[:, :, :height, :width]

    def on_grid(self, x: torch.Tensor, present: torch.Tensor, every_decoder: bool = False) -> torch.Tensor:
        """:meth:`forward` of an input already padded to the grid (H, W multiples of ``multiple``), uncropped.

        ``present`` is (B, 4) of 0/1 (:func:`per_sample_availability`). An exported flip average calls
        it inside a ``torch.cond`` branch, where padding arithmetic on symbolic sizes cannot be saved,
        with ``every_decoder``: there a decoder arm runs whether or not it is needed and its output is
        zeroed where it is not (a ``torch.cond`` inside that branch would pin the batch above 1).
        """
        arms_n = self.n_src
        batch = x.shape[0]
        count = present.sum(dim=1).clamp(min=1.0).view(batch, 1, 1, 1)
        x = x * present.view(batch, arms_n, 1, 1)
        deep_sum = torch.zeros(0)
        deep_max = torch.zeros(0)
        skip_sums: list[torch.Tensor] = []
        strongest: list[torch.Tensor] = []
        for arm, encoder in enumerate(self.encoders):
            weight = present[:, arm].view(batch, 1, 1, 1)
            deep, skips, _ = encoder(x[:, arm : arm + 1])
            deep = deep * weight
            masked = [skip * weight for skip in skips]
            if arm == 0:
                deep_sum = deep
                deep_max = deep
                skip_sums = list(masked)
                strongest = list(masked)
            else:
                deep_sum = deep_sum + deep
                deep_max = torch.maximum(deep_max, deep)
                for level, skip in enumerate(masked):
                    skip_sums[level] = skip_sums[level] + skip
                    strongest[level] = torch.maximum(strongest[level], skip)
        code = present.view(batch, arms_n, 1, 1).expand(batch, arms_n, deep_sum.shape[2], deep_sum.shape[3])
        deep_parts = [deep_sum / count, deep_max, code] if self.with_max else [deep_sum / count, code]
        fused = self.bottleneck(torch.cat(deep_parts, dim=1))
        skips_fused = [s / count for s in skip_sums]
        if self.with_max:
            for level, mixer in enumerate(self.skip_mixers):
                skips_fused[level] = mixer(torch.cat([skips_fused[level], strongest[level]], dim=1))
        indices = [torch.nn.functional.max_pool2d_with_indices(s, kernel_size=2, stride=2)[1] for s in strongest]
        outputs: list[torch.Tensor] = []
        for arm, decoder in enumerate(self.decoders):
            absent = (present[:, arm] < 0.5).any()
            if not torch.jit.is_scripting():  # noqa: SIM102 (TorchScript must not see the right side)
                if torch.compiler.is_exporting():  # an exported program branches on a value through torch.cond
                    if every_decoder:
                        decoded = decoder(fused, skips_fused, indices)
                        outputs.append(torch.where(absent, decoded, torch.zeros_like(decoded)))
                    else:
                        outputs.append(decode_if(absent, decoder, fused, skips_fused, indices))
                    continue
            if bool(absent):
                outputs.append(decoder(fused, skips_fused, indices))
            else:  # every sample has this modality: nothing to synthesize
                outputs.append(torch.zeros_like(x[:, :1]))
        return torch.cat(outputs, dim=1)


def decode_if(
    absent: torch.Tensor,
    decoder: DecoderArm,
    fused: torch.Tensor,
    skips: list[torch.Tensor],
    indices: list[torch.Tensor],
) -> torch.Tensor:
    """The decoder arm's output where ``absent`` (some sample lacks its modality), else zeros, as ``torch.cond``."""

    def run(fused: torch.Tensor, skips: list[torch.Tensor], indices: list[torch.Tensor]) -> torch.Tensor:
        return decoder(fused, skips, indices)

    def skip(fused: torch.Tensor, skips: list[torch.Tensor], indices: list[torch.Tensor]) -> torch.Tensor:
        return fused.new_zeros(fused.shape[0], 1, skips[0].shape[2], skips[0].shape[3])

    return torch.cond(absent, run, skip, (fused, skips, indices))


@register_model("unified", any_to_any=True)
def unified(n_src: int, n_dst: int, *, features: int = 64, depth: int = 4, fusion: str = "mean") -> UnifiedSynNet:
    """Unified SynNet: any available contrasts in, the missing ones out (``n_src == n_dst == 4``)."""
    if (n_src, n_dst) != (N_MODALITIES, N_MODALITIES):
        raise ValueError(f"the unified model takes all {N_MODALITIES} modalities in and out, got {n_src} -> {n_dst}")
    return UnifiedSynNet(features=features, depth=depth, fusion=fusion)
