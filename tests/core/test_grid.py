"""synnet.grid.check_same_grid: the one same-grid check, its codes and the values its messages name."""

from __future__ import annotations

import numpy as np
import pytest

from synnet.errors import SynnetError
from synnet.grid import GridMismatchError, check_same_grid

LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def test_one_grid_passes_and_affines_within_the_tolerance_count_as_one() -> None:
    nearly = LPS.copy()
    nearly[0, 3] += 5e-4
    check_same_grid({"source T1": (8, 8, 3), "source T2": (8, 8, 3)}, {"source T1": LPS, "source T2": nearly})
    check_same_grid({"only": (4, 4)})


def test_a_shape_mismatch_names_the_image_the_reference_and_both_shapes() -> None:
    shapes = {"source T1": (8, 8, 3), "source T2": (8, 8, 3), "truth_FLAIR": (8, 7, 3)}
    with pytest.raises(GridMismatchError) as raised:
        check_same_grid(shapes)
    assert isinstance(raised.value, SynnetError) and raised.value.code == "shape_mismatch"
    assert str(raised.value) == (
        "truth_FLAIR has shape (8, 7, 3) but source T1 has shape (8, 8, 3); "
        "all images of a request must have the same shape"
    )
    with pytest.raises(GridMismatchError, match="all images of case Brats18_1 must have the same shape"):
        check_same_grid({"T1": (2, 2, 2), "seg": (2, 2, 3)}, group="case Brats18_1")


def test_an_affine_mismatch_names_both_images_and_the_largest_difference() -> None:
    shifted = LPS.copy()
    shifted[1, 3] = 2.5
    shapes = {"source T1": (8, 8, 3), "source T2": (8, 8, 3), "mask": (8, 8, 3)}
    with pytest.raises(GridMismatchError) as raised:
        check_same_grid(shapes, {"source T1": LPS, "source T2": LPS, "mask": shifted})
    assert raised.value.code == "affine_mismatch"
    assert str(raised.value).startswith("mask and source T1 have the same shape but different affines")
    assert "largest difference 2.5" in str(raised.value)


def test_images_without_an_affine_are_checked_on_their_shape_only() -> None:
    """A PNG or an array has no affine: it never fails the affine check, and the first affine given is the reference."""
    other = np.eye(4)
    check_same_grid({"source T1": (8, 8), "source T2": (8, 8)}, {"source T1": None, "source T2": other})
    shapes = {"source T1": (8, 8), "source T2": (8, 8), "truth_T1c": (8, 8)}
    with pytest.raises(GridMismatchError, match="truth_T1c and source T2 have the same shape but different affines"):
        check_same_grid(shapes, {"source T1": None, "source T2": LPS, "truth_T1c": other})
