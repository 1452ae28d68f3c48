"""Random source subsets for the any-to-any model: every step, every target gets its share.

A case's slices carry all four modalities in canonical order, a modality the case lacks as NaN
(:func:`training.data.slices.extract_available_slices`). Per sample, a step draws a random
non-empty subset of what the sample has as sources; the rest of what it has are the targets.
The loss is the mean over targets of each target's loss on the samples where it is one, so a
target that is rarely missing (or rarely available, like T1c beside the T1/FLAIR-only cases)
weighs as much as the others whenever it appears: no target starves.
"""

from __future__ import annotations

import torch
from torch import nn


def available_modalities(x: torch.Tensor) -> torch.Tensor:
    """(B, 4, H, W) with NaN channels for missing modalities → (B, 4) bool: which are there."""
    return ~torch.isnan(x).flatten(2).any(dim=2)


def draw_sources(available: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(B, 4) bool available → (B, 4) bool sources: a uniform non-empty proper subset per sample.

    Samples with fewer than two modalities get no targets (all they have are sources).
    """
    sources = torch.zeros_like(available)
    for b in range(available.shape[0]):
        have = torch.nonzero(available[b]).flatten()
        n = int(have.numel())
        if n < 2:
            sources[b, have] = True
            continue
        # subsets of `have` as bit patterns 1 .. 2^n - 2: non-empty, and at least one target left
        bits = int(torch.randint(1, 2**n - 1, (1,), generator=generator))
        chosen = [int(have[i]) for i in range(n) if bits >> i & 1]
        sources[b, chosen] = True
    return sources


def per_target_loss(
    criterion: nn.Module,
    pred: torch.Tensor,
    truth: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor | None,
) -> torch.Tensor:
    """Mean over modalities of ``criterion`` on the samples where each is a target.

    Args:
        pred, truth: (B, 4, H, W).
        targets: (B, 4) bool, which channels of which sample are scored.
        mask: (B, 1, H, W) brain mask for the loss, or None.
    """
    losses = []
    for channel in range(pred.shape[1]):
        rows = torch.nonzero(targets[:, channel]).flatten()
        if rows.numel() == 0:
            continue
        part_mask = None if mask is None else mask[rows]
        losses.append(criterion(pred[rows, channel : channel + 1], truth[rows, channel : channel + 1], part_mask))
    if not losses:  # no sample had two modalities; nothing to learn from this batch
        return pred.sum() * 0.0
    return torch.stack(losses).mean()
