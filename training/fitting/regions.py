"""The loss's weight map: where in a window the loss counts, and how much (``--mask-loss``, ``--tumour-weight``).

The brain-only loss (``--mask-loss``) averages over brain pixels. With ``--tumour-weight W`` a pixel
inside the tumour counts W times: the tumour is a few percent of the brain, so without it the loss
hardly sees the region radiotherapy users look at first, and FLAIR oedema and T1c enhancement
come out at a fraction of their contrast (experiments/results/ablation.md). Windows carry their tumour as a region
map (:class:`training.data.dataset.SliceDataset`), warped by the same augmentation as the images.
"""

from __future__ import annotations

import torch

from training.data.augment import Augmenter
from training.data.dataset import TUMOUR


def split_regions(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(B, H, W) bool brain mask or uint8 region map → (brain bool, tumour bool or None)."""
    if mask.dtype == torch.bool:
        return mask, None
    return mask > 0, mask == TUMOUR


def loss_weights(brain: torch.Tensor, tumour: torch.Tensor | None, tumour_weight: float) -> torch.Tensor:
    """(B, 1, H, W) weights of the loss's masked mean: 0 outside the brain, 1 in it, ``tumour_weight`` in the tumour.

    Without a tumour map it is the bool brain mask itself, so a run without ``--tumour-weight``
    computes exactly the loss it always did.
    """
    if tumour is None:
        return brain[:, None]
    weights = brain.float() + (tumour_weight - 1.0) * (tumour & brain).float()
    return weights[:, None]


def warp_with_tumour(
    augmenter: Augmenter,
    sources: torch.Tensor,
    targets: torch.Tensor,
    brain: torch.Tensor,
    tumour: torch.Tensor | None,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The augmenter's warp of a batch, the tumour map riding along as one more target channel.

    Returns (sources, targets, brain, tumour) with the tumour thresholded at 0.5 like the brain.
    """
    if tumour is None:
        sources, targets, brain = augmenter(sources, targets, brain, generator)
        return sources, targets, brain, None
    n_targets = targets.shape[1]
    stacked = torch.cat([targets, tumour[:, None].to(targets.dtype)], dim=1)
    sources, warped, brain = augmenter(sources, stacked, brain, generator)
    return sources, warped[:, :n_targets], brain, warped[:, n_targets] > 0.5
