"""Finding, loading and splitting BraTS-layout cases.

A dataset root holds one folder per case (subject). Two file-naming schemes are recognised:

* BraTS 2018-2021: ``<case>/<case>_t1.nii.gz``, ``_t1ce``, ``_t2``, ``_flair``, ``_seg``;
* BraTS 2023:      ``<case>/<case>-t1n.nii.gz``, ``-t1c``, ``-t2w``, ``-t2f``, ``-seg``;

``.nii`` works as well as ``.nii.gz``. The naming table and the case scan are the core's
(:mod:`synnet.dataset_layout`), which ``synnet fill`` uses too.

Splits are made by subject, never by slice: slices of one brain are strongly correlated, and a
slice-level split would leak the test subjects into training.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synnet.dataset_layout import BRAIN_MASK_TOKEN, SEG_TOKEN, CaseFiles, scan_dataset
from synnet.errors import SynnetError
from synnet.grid import GridMismatchError, check_same_grid
from synnet.imageio import read_image
from synnet.modalities import Modality, format_modalities, parse_modality
from synnet.normalization import brain_mask
from training.data.errors import DataError

# The label a whole-tumour mask loads as: the tumour weight reads seg > 0, the whole-tumour region (labels 1, 2, 4)
# is right, and the core and enhancing regions are empty rather than guessed.
WHOLE_TUMOUR_LABEL = 2


@dataclass
class LoadedCase:
    """One subject's volumes in memory, all on the same voxel grid.

    Attributes:
        case_id: as in :class:`CaseFiles`.
        images: raw intensities of each loaded modality, float32 arrays of shape (X, Y, Z).
        affine: (4, 4) voxel-to-world matrix shared by all images.
        seg: uint8 label map of shape (X, Y, Z), or None when not loaded or absent.
        brain: bool (X, Y, Z) brain from the case's mask file; None: the brain is where the sources
            are nonzero (:func:`synnet.normalization.brain_mask`).
    """

    case_id: str
    images: dict[Modality, np.ndarray]
    affine: np.ndarray
    seg: np.ndarray | None = None
    brain: np.ndarray | None = None

    def brain_mask(self, modalities: Iterable[Modality]) -> np.ndarray:
        """The brain for a model that reads ``modalities``: the mask file's, else their nonzero voxels."""
        if self.brain is not None:
            return self.brain
        return brain_mask([self.images[m] for m in modalities])

    @property
    def shape(self) -> tuple[int, int, int]:
        return next(iter(self.images.values())).shape


def find_cases(root: str | Path) -> list[CaseFiles]:
    """Discover the cases under a BraTS-layout root, one per sub-folder, sorted by case id.

    Sub-folders without any recognised image file are skipped with a warning. The naming table is
    the core's (:mod:`synnet.dataset_layout`), shared with ``synnet fill``.

    Raises:
        DataError: ``root`` is not a folder, or holds no case at all (code ``no_cases``); two files
            of one modality in a case (``duplicate_file``).
    """
    try:
        found = scan_dataset(root)
    except SynnetError as exc:
        raise DataError(exc.detail, code=exc.code) from None
    return found


def load_case(case: CaseFiles, modalities: Iterable[Modality | str], *, load_seg: bool = True) -> LoadedCase:
    """Read the requested modalities of one case and check that they share one voxel grid.

    Args:
        case: from :func:`find_cases`.
        modalities: which images to read, e.g. ``(Modality.T1, Modality.T2)``.
        load_seg: also read the segmentation when the case has one.

    Returns:
        A :class:`LoadedCase` with float32 (X, Y, Z) images.

    Raises:
        DataError: a requested modality is missing (``missing_modality``), or the images,
            segmentation and brain mask disagree in shape or affine (``mismatched_case``). Both name
            the case and the modalities concerned.
        InvalidImageError: a file is unreadable (from :func:`synnet.imageio.read_image`).
    """
    wanted = [parse_modality(m) for m in modalities]
    missing = case.lacks(wanted)
    if missing:
        found = format_modalities(case.files) or "none"
        raise DataError(
            f"case {case.case_id} lacks {format_modalities(missing)} (found: {found}) in {case.folder}",
            code="missing_modality",
        )
    images: dict[Modality, np.ndarray] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    affines: dict[str, np.ndarray] = {}
    for modality in wanted:
        array, meta = read_image(case.files[modality])
        images[modality] = array
        shapes[modality.value] = array.shape
        affines[modality.value] = meta.affine
    seg = None
    if load_seg and case.seg is not None:
        seg_array, seg_meta = read_image(case.seg)
        seg = np.rint(seg_array).astype(np.uint8)
        if case.whole_tumour_only:
            seg = np.where(seg > 0, WHOLE_TUMOUR_LABEL, 0).astype(np.uint8)
        shapes[SEG_TOKEN] = seg.shape
        affines[SEG_TOKEN] = seg_meta.affine
    brain = None
    if case.brain_mask is not None:
        mask_array, mask_meta = read_image(case.brain_mask)
        brain = mask_array > 0.5
        shapes[BRAIN_MASK_TOKEN] = brain.shape
        affines[BRAIN_MASK_TOKEN] = mask_meta.affine
    _check_same_grid(case.case_id, shapes, affines)
    return LoadedCase(case.case_id, images, affines[wanted[0].value], seg, brain)


def _check_same_grid(case_id: str, shapes: dict[str, tuple[int, ...]], affines: dict[str, np.ndarray]) -> None:
    """3D volumes on one voxel grid (the core's check), or a DataError that names the case."""
    if any(len(shape) != 3 for shape in shapes.values()):
        listed = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise DataError(f"case {case_id}: every image must be a 3D volume, got {listed}", code="mismatched_case")
    try:
        check_same_grid(shapes, affines, group="the case")
    except GridMismatchError as error:
        raise DataError(f"case {case_id}: {error.detail}", code="mismatched_case") from None


def _split_key(case_id: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{case_id}".encode()).hexdigest()


def split_cases(case_ids: Sequence[str], n_holdout: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Hold out ``n_holdout`` subjects, deterministically for a given seed.

    Each id is ranked by a hash of ``(seed, id)`` and the lowest ranks are held out, so the result
    does not depend on the input order, and adding a case to the dataset never moves another
    case between the two sides. Compose it for train/val/test::

        rest, test = split_cases(ids, 4, seed)      # 16 -> 12 + 4
        train, val = split_cases(rest, 2, seed)     # 12 -> 10 + 2

    Returns:
        ``(kept, held_out)``, each sorted.

    Raises:
        DataError: repeated ids, or ``n_holdout`` outside ``0..len(case_ids)`` (code ``bad_split``).
    """
    ids = list(case_ids)
    repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
    if repeated:
        raise DataError(f"case ids listed twice: {', '.join(repeated)}", code="bad_split")
    if not 0 <= n_holdout <= len(ids):
        raise DataError(f"cannot hold out {n_holdout} of {len(ids)} cases", code="bad_split")
    ranked = sorted(ids, key=lambda case_id: _split_key(case_id, seed))
    held_out = set(ranked[:n_holdout])
    return sorted(i for i in ids if i not in held_out), sorted(held_out)
