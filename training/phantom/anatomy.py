"""Real brain anatomy for the phantoms: the MNI152 2009a template shipped inside nilearn.

The nilearn wheel carries the ICBM 2009a nonlinear symmetric T1 template and its grey- and
white-matter probability maps at 1 mm (197 x 233 x 189) in ``nilearn/datasets/data`` (the files
behind ``nilearn.datasets.load_mni152_template`` and friends); they are read from there directly,
so nothing is downloaded. The T1 template is brain-extracted, and its
nonzero voxels are the brain mask; CSF is what the mask holds beyond grey and white matter.

The maps stay on the template grid. :func:`brats_index` says where a template voxel falls in a BraTS volume:
BraTS volumes (240 x 240 x 155, affine diag(-1, -1, 1)) run right-to-left and anterior-to-
posterior, the template left-to-right and posterior-to-anterior, so x and y are flipped, and the
brain is centred where it sits in real BraTS volumes (brain at x 48-192, y 40-220, z 0-142;
the corpus callosum at z ~ 75-90).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

logger = logging.getLogger(__name__)

TEMPLATE_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}

BRATS_SHAPE = (240, 240, 155)
BRATS_AFFINE = np.array([[-1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 239.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
# BraTS voxel BRATS_CENTRE lands on template voxel TEMPLATE_CENTRE (the template brain's centre
# in x and y; in z the template's lower brainstem falls below the BraTS field of view, as in
# real BraTS volumes).
BRATS_CENTRE = np.array([120.0, 130.0, 75.0])
TEMPLATE_CENTRE = np.array([98.0, 117.0, 77.0])
BRATS_FROM_TEMPLATE_FLIP = np.diag([-1.0, -1.0, 1.0])

# Channels of Template.maps.
CSF, GM, WM, MASK = 0, 1, 2, 3


@dataclass(frozen=True)
class Template:
    """Tissue maps on the template grid.

    Attributes:
        maps: (4, 197, 233, 189) float32 fractions in [0, 1]: CSF, GM, WM and the brain mask.
        tumour_sites: (K, 3) template voxel indices deep in cerebral white matter, where a
            tumour centre may be placed.
    """

    maps: np.ndarray
    tumour_sites: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.maps.shape[1:]


def template_dir() -> Path:
    """nilearn's bundled data folder, found without importing nilearn (which takes ~1 s)."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("the phantom needs nilearn for the MNI152 template: pip install 'synnet[train]'")
    return Path(spec.origin).parent / "datasets" / "data"


def _read_template_file(name: str) -> np.ndarray:
    return np.asarray(nib.load(template_dir() / TEMPLATE_FILES[name]).dataobj, dtype=np.float32)


@functools.lru_cache(maxsize=1)
def load_template() -> Template:
    """Read and cache the template tissue maps (about 0.5 s, once per process)."""
    t1 = _read_template_file("t1")
    gm, wm = _read_template_file("gm") / 255.0, _read_template_file("wm") / 255.0
    mask = _strip_outer_csf(t1 > 0, gm + wm).astype(np.float32)
    gm *= mask
    wm *= mask
    csf = np.clip(mask - gm - wm, 0.0, 1.0)
    maps = np.stack([csf, gm, wm, mask]).astype(np.float32)
    logger.debug("loaded MNI152 2009a tissue maps %s from nilearn", maps.shape)
    return Template(maps=maps, tumour_sites=_tumour_sites(mask, wm))


def _strip_outer_csf(mask: np.ndarray, parenchyma: np.ndarray, depth_mm: int = 2) -> np.ndarray:
    """Drop the CSF voxels of the mask's outer ``depth_mm``.

    The template mask keeps the subarachnoid CSF around the cortex, which would draw a bright
    ring on every T2 image; BraTS skull stripping removes most of it.
    """
    outer = mask & ~ndimage.binary_erosion(mask, iterations=depth_mm)
    return mask & ~(outer & (parenchyma < 0.5))


def _tumour_sites(mask: np.ndarray, wm: np.ndarray, step: int = 4) -> np.ndarray:
    """Cerebral white matter at least 18 mm inside the brain, on a coarse grid (cheap to find)."""
    coarse_mask = mask[::step, ::step, ::step] > 0
    depth_mm = ndimage.distance_transform_edt(coarse_mask) * step
    coarse_wm = wm[::step, ::step, ::step]
    # Above the template's z = 60 (about the level of the lateral ventricles' floor) there is only
    # cerebrum; gliomas of the brainstem and cerebellum are rare in adults.
    z = np.arange(coarse_mask.shape[2]) * step
    cerebrum = (z >= 60)[None, None, :]
    sites = np.argwhere((depth_mm >= 18) & (coarse_wm >= 0.6) & cerebrum) * step
    return sites.astype(np.float64)


def brats_index(template_idx: np.ndarray, linear: np.ndarray | None = None) -> np.ndarray:
    """Map template voxel coordinates (..., 3) to BraTS voxel coordinates (..., 3) in the 240 x 240 x 155 grid.

    BraTS voxel ``b`` samples template voxel ``(b - BRATS_CENTRE) @ M.T + TEMPLATE_CENTRE`` with
    ``M = BRATS_FROM_TEMPLATE_FLIP @ linear`` (see :mod:`training.phantom.generate`); this is its inverse.

    Args:
        template_idx: (..., 3) voxel coordinates on the template grid.
        linear: optional (3, 3) matrix applied about the brain centre in BraTS space
            (a random rotation and scaling of the head).
    """
    matrix = BRATS_FROM_TEMPLATE_FLIP if linear is None else BRATS_FROM_TEMPLATE_FLIP @ linear
    return (np.asarray(template_idx) - TEMPLATE_CENTRE) @ np.linalg.inv(matrix).T + BRATS_CENTRE
