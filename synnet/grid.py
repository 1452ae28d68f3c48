"""The one same-grid check: images read together must share a shape and, where they carry one, an affine.

The network reads the sources of a voxel together, channel by channel, and a truth or a mask is
compared voxel by voxel, so images on different grids would be combined silently wrong. Images
without an affine (PNG, bare arrays) are checked on their shape only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from synnet.errors import SynnetError

# Affines that agree to 1e-3 (mm, and the direction cosines) describe one voxel grid: files that
# went through different writers differ in the last float32 digits.
AFFINE_ATOL = 1e-3


class GridMismatchError(SynnetError):
    """Images that must lie on one voxel grid do not; ``code`` is ``shape_mismatch`` or ``affine_mismatch``."""

    code = "shape_mismatch"


def check_same_grid(
    shapes: Mapping[str, Sequence[int]],
    affines: Mapping[str, np.ndarray | None] | None = None,
    *,
    group: str = "a request",
    atol: float = AFFINE_ATOL,
) -> None:
    """Refuse images that do not share the first one's shape, or the first affine given.

    Args:
        shapes: image name (as the error should call it, e.g. ``"source T1"``) → its shape; the
            first entry is the reference.
        affines: image name → its (4, 4) voxel-to-world matrix, or None for an image without one;
            names left out have none. Each affine is compared with the first one given.
        group: what the images belong to, for the message ("all images of a request...").
        atol: the largest difference between two affines' elements that still counts as one grid.

    Raises:
        GridMismatchError: ``shape_mismatch`` naming the first image whose shape differs and both
            shapes; ``affine_mismatch`` naming the first image whose affine differs, the image it
            differs from and the largest difference.
    """
    names = list(shapes)
    reference = names[0]
    for name in names[1:]:
        if tuple(shapes[name]) != tuple(shapes[reference]):
            raise GridMismatchError(
                f"{name} has shape {tuple(shapes[name])} but {reference} has shape {tuple(shapes[reference])}; "
                f"all images of {group} must have the same shape"
            )
    given = [(name, np.asarray(a, dtype=np.float64)) for name, a in (affines or {}).items() if a is not None]
    if not given:
        return
    first, first_affine = given[0]
    for name, affine in given[1:]:
        if not np.allclose(affine, first_affine, atol=atol):
            difference = float(np.abs(affine - first_affine).max())
            raise GridMismatchError(
                f"{name} and {first} have the same shape but different affines (voxel grids; largest "
                f"difference {difference:.4g}); register the images to one space first",
                code="affine_mismatch",
            )
