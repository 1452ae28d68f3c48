"""Size limits that keep an absurd or hostile file from exhausting memory."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageLimits:
    """Bounds checked from a file's header, before its pixel data is inflated or decoded.

    The defaults admit any clinical MR volume (BraTS is 240x240x155 = 8.9 M voxels; 512x512x256
    is the largest admitted) with a wide margin, and reject sizes that only a corrupt or
    malicious header would claim. Reading one NIfTI holds at most its compressed bytes, the
    declared ``vox_offset + voxels x itemsize`` bytes (at most ``max_header_bytes +
    max_data_bytes``) and the float32 result (``4 x max_voxels`` bytes).

    Attributes:
        max_side: the longest axis, in voxels.
        max_voxels: voxels of one image (the float32 array is 4 bytes per voxel).
        min_side: the shortest in-plane axis (the network pools it several times).
        max_data_bytes: the voxel data a NIfTI header may declare (voxels x itemsize).
        max_header_bytes: the largest ``vox_offset`` (header plus extensions).
    """

    max_side: int = 2048
    max_voxels: int = 512 * 512 * 256
    min_side: int = 8
    max_data_bytes: int = 256 * 1024 * 1024
    max_header_bytes: int = 16 * 1024 * 1024
