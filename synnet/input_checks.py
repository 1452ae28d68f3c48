"""Warnings for inputs unlike what the models were trained on (they warn, they never refuse).

The bundled models know BraTS-preprocessed scans: skull-stripped (background exactly 0),
co-registered to one template, resampled to 1 mm, stored in the template's LPS orientation
(``nibabel.aff2axcodes`` of every BraTS 2018-2023 case and of the generated phantoms). A scan
that is clearly not like that still gets a synthesis, but the result is not to be trusted; each
warning names the problem and what to run first. The service, the Python API and the ``synnet``
command all call :func:`check_inputs`, so they say the same thing about the same files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations

import nibabel as nib
import numpy as np

from synnet.imageio import ImageMeta
from synnet.modalities import Modality

BRATS_ORIENTATION = ("L", "P", "S")
# The edges of every axial slice of a BraTS volume are 0 (11-18 % of all voxels are non-zero); a
# scan with its skull and noisy background is non-zero nearly everywhere. Only in-plane edges count:
# a volume cut to a few slices has brain on its top and bottom faces.
MAX_EDGE_NONZERO = 0.25
VOXEL_MM = (0.7, 1.5)
# Share of the smaller brain mask inside the other one. Co-registered BraTS sources: >= 0.99 (the
# smaller mask, not Dice: in Brats18_2013_20_1 the FLAIR covers fewer slices, Dice 0.80); one source
# shifted by 5 mm: 0.94, by 10 mm: 0.88.
MIN_MASK_OVERLAP = 0.9
PREPROCESSING = "run BraTS preprocessing first (e.g. the BraTS Orchestrator, pip install brats; docs/own_scans.md)"


@dataclass(frozen=True)
class InputWarning:
    """One problem with the inputs: ``code`` to branch on, ``message`` for people."""

    code: str
    message: str

    def __str__(self) -> str:
        return self.message


def check_inputs(sources: Mapping[Modality, np.ndarray], meta: ImageMeta | None = None) -> list[InputWarning]:
    """Everything that makes these sources unlike the training data, as warnings (empty: nothing seen).

    Args:
        sources: raw source images by modality, all of one shape, (X, Y, Z) or (H, W).
        meta: the first source's metadata; its NIfTI affine and header give the voxel size and the
            orientation (not checked for PNG images and bare arrays, which carry neither).
    """
    warnings: list[InputWarning] = []
    stripped: dict[Modality, np.ndarray] = {}
    for modality, image in sources.items():
        found = _background(modality, np.asarray(image))
        if found is None:
            stripped[modality] = np.asarray(image) != 0
        else:
            warnings.append(found)
    if meta is not None and meta.format == "nifti" and meta.affine is not None:
        warnings.extend(_voxel_size(meta))
        warnings.extend(_orientation(meta.affine))
    for (a, mask_a), (b, mask_b) in combinations(stripped.items(), 2):
        warnings.extend(_overlap(a, mask_a, b, mask_b))
    return warnings


def slice_edges(image: np.ndarray) -> np.ndarray:
    """The pixels on the edges of every axial slice of a volume (X, Y, Z), or of an image (H, W), flattened."""
    rows, cols = image[[0, -1]], image[:, [0, -1]]
    return np.concatenate([rows.ravel(), cols.ravel()])


def _background(modality: Modality, image: np.ndarray) -> InputWarning | None:
    on_edges = float(np.mean(slice_edges(image) != 0))
    if on_edges <= MAX_EDGE_NONZERO:
        return None
    overall = float(np.mean(image != 0))
    return InputWarning(
        "not_skull_stripped",
        f"{modality.value}: {on_edges:.0%} of the slice edges and {overall:.0%} of all voxels are non-zero; "
        "the models know skull-stripped scans whose background is exactly 0 (BraTS: edges all 0, about 15 % "
        "non-zero), and every non-zero voxel is taken as brain. Skull-strip the scans (HD-BET, SynthStrip) "
        f"or {PREPROCESSING}",
    )


def _voxel_size(meta: ImageMeta) -> list[InputWarning]:
    if meta.header is None:
        return []
    spacing = tuple(float(z) for z in meta.header.get_zooms()[:3])
    low, high = VOXEL_MM
    if all(low <= s <= high for s in spacing):
        return []
    shown = " × ".join(f"{s:g}" for s in spacing)
    return [
        InputWarning(
            "voxel_size",
            f"voxel size {shown} mm is far from the 1 mm isotropic voxels the models were trained on; "
            "resample to 1 mm (BraTS preprocessing registers every scan to the 1 mm SRI-24 template) or "
            + PREPROCESSING,
        )
    ]


def _orientation(affine: np.ndarray) -> list[InputWarning]:
    codes = tuple(nib.aff2axcodes(affine))
    if codes == BRATS_ORIENTATION:
        return []
    return [
        InputWarning(
            "orientation",
            f"orientation {''.join(str(c) for c in codes)} differs from the BraTS template's "
            f"{''.join(BRATS_ORIENTATION)}: the models see axial slices as the voxel grid stores them, so they would "
            "get them flipped or turned; reorient to LPS (nibabel: "
            "img.as_reoriented(nib.orientations.ornt_transform(nib.io_orientation(img.affine), "
            "nib.orientations.axcodes2ornt('LPS')))) or " + PREPROCESSING,
        )
    ]


def _overlap(a: Modality, mask_a: np.ndarray, b: Modality, mask_b: np.ndarray) -> list[InputWarning]:
    smaller = min(int(mask_a.sum()), int(mask_b.sum()))
    if smaller == 0:
        return []
    overlap = int(np.count_nonzero(mask_a & mask_b)) / smaller
    if overlap >= MIN_MASK_OVERLAP:
        return []
    return [
        InputWarning(
            "not_coregistered",
            f"the brains of {a.value} and {b.value} overlap by only {overlap:.0%} (co-registered scans: 99 % or "
            "more); they do not seem to be in one space. Register every source to the same template "
            f"(the BraTS pipeline does) or {PREPROCESSING}",
        )
    ]
