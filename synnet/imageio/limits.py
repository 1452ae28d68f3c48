"""Size limits that keep an absurd or hostile file from exhausting memory."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageLimits:
    """Bounds checked from a file's header, before its pixel data is decoded.

    The defaults admit any clinical MR volume (BraTS is 240x240x155 = 8.9 M voxels) with a wide
    margin, and reject sizes that only a corrupt or malicious header would claim.
    """

    max_side: int = 2048
    max_voxels: int = 2048 * 2048 * 64
    min_side: int = 8
