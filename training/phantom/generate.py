"""One generated BraTS-like case: anatomy, deformation, lesions, contrasts, bias, noise, site scale.

The steps, in order (all random draws come from one generator seeded by the case seed):

1. a random head pose and size (rotation, anisotropic scaling, translation) and a smooth random
   deformation, plus the lesions' mass effect, decide where each BraTS voxel samples the template;
2. the template's CSF/GM/WM fractions are resampled there (partial volumes kept);
3. lesions replace tissue: solid tumour replaces everything, oedema replaces parenchyma only;
4. each modality's signal is the fraction-weighted sum of its compartments' signal equations
   (:mod:`training.phantom.tissues`), with tissue parameters and sequence timings jittered per case;
5. a smooth multiplicative bias field, Rician noise (the magnitude of a complex signal with
   Gaussian noise in both channels) and a global per-modality scale (sites differ in units) follow;
6. the result is rounded to int16 with zero background, as in skull-stripped BraTS volumes.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from training.phantom import tissues
from training.phantom.anatomy import (
    BRATS_AFFINE,
    BRATS_CENTRE,
    BRATS_FROM_TEMPLATE_FLIP,
    BRATS_SHAPE,
    CSF,
    GM,
    MASK,
    TEMPLATE_CENTRE,
    WM,
    Template,
    load_template,
)
from training.phantom.fields import fine_texture, sample_volume, smooth_field
from training.phantom.tumour import TumourMaps, TumourSpec, add_mass_effect, sample_tumours, tumour_maps

# Only this part of the 240 x 240 x 155 grid can hold brain (with margin for pose and
# deformation), so only it is computed; the rest stays zero.
CROP = (slice(30, 210), slice(22, 238), slice(0, 155))
CROP_ORIGIN = np.array([c.start for c in CROP], dtype=np.float64)
CROP_SHAPE = tuple(c.stop - c.start for c in CROP)

SEG_LABELS = {"necrotic_core": 1, "oedema": 2, "enhancing": 4}
TISSUE_LABELS = {"csf": 1, "gm": 2, "wm": 3}
PURE_TISSUE = 0.8  # a voxel is labelled in ``tissue`` when one tissue fills this much of it
COARSE_STEP = 4  # grid step (voxels) of the search for voxels near the brain

DEFORMATION_MM = 2.0  # standard deviation of each component of the smooth deformation
DEFORMATION_SPACING = 30.0
BIAS_SPACING = 60.0
MEAN_BRAIN_LEVEL = 500.0  # raw units of an average brain voxel before the site scale
# The SRI24 space of BraTS holds flatter brains than MNI152 (checked on brats18: the corpus
# callosum sits at z ~ 75-90 and the vertex at z ~ 132-143).
TEMPLATE_TO_BRATS_SCALE = np.array([1.0, 1.0, 1.06])
TEXTURE_AMPLITUDE = 0.025  # relative standard deviation of the fine tissue texture


def _random_linear(rng: np.random.Generator) -> np.ndarray:
    """Head pose and size: small rotations (most about the axial axis) and scaling."""
    angles = np.deg2rad(rng.normal(0.0, [3.0, 3.0, 5.0]))
    matrix = np.eye(3)
    for axis, angle in enumerate(angles):
        c, s = np.cos(angle), np.sin(angle)
        i, j = [a for a in range(3) if a != axis]
        rot = np.eye(3)
        rot[i, i], rot[i, j], rot[j, i], rot[j, j] = c, -s, s, c
        matrix = rot @ matrix
    # Sampling the template at scaled positions shrinks the brain by that factor: the MNI152
    # average brain is ~1.9 L inside its mask, real BraTS brains ~1.2-1.6 L, and flatter.
    scale = rng.uniform(1.03, 1.12) * rng.uniform(0.97, 1.03, size=3) * TEMPLATE_TO_BRATS_SCALE
    return matrix @ np.diag(scale)


def _template_coords(rng: np.random.Generator, linear: np.ndarray, lesions: list[TumourSpec]) -> np.ndarray:
    """(X', Y', Z', 3) float32 template voxel coordinates sampled by each voxel of the crop."""
    axes = [np.arange(n, dtype=np.float32) + o for n, o in zip(CROP_SHAPE, CROP_ORIGIN, strict=True)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    for k in range(3):
        points[..., k] += DEFORMATION_MM * smooth_field(rng, CROP_SHAPE, DEFORMATION_SPACING)
    add_mass_effect(lesions, points, CROP_ORIGIN)
    translation = rng.normal(0.0, 2.0, size=3)
    matrix = (BRATS_FROM_TEMPLATE_FLIP @ linear).astype(np.float32)
    offset = (TEMPLATE_CENTRE + translation - matrix @ BRATS_CENTRE).astype(np.float32)
    points = points @ matrix.T
    points += offset
    return points


def _sample_tissues(template: Template, coords: np.ndarray) -> np.ndarray:
    """(3, X', Y', Z') CSF, GM and WM fractions at ``coords``.

    Only voxels near the brain are sampled (found on a grid 4 voxels apart, grown by one step):
    that is a third of the crop, and resampling is the slowest step of a case.
    """
    step = COARSE_STEP
    coarse = sample_volume(template.maps[MASK : MASK + 1], coords[::step, ::step, ::step])[0] > 0
    coarse = ndimage.binary_dilation(coarse, structure=np.ones((3, 3, 3), bool))
    near = coarse.repeat(step, 0).repeat(step, 1).repeat(step, 2)[: CROP_SHAPE[0], : CROP_SHAPE[1], : CROP_SHAPE[2]]
    fractions = np.zeros((3, *CROP_SHAPE), np.float32)
    fractions[:, near] = sample_volume(template.maps[:MASK], coords[near])
    return fractions


def _apply_lesions(fractions: dict[str, np.ndarray], brain: np.ndarray, lesions: TumourMaps) -> dict[str, np.ndarray]:
    """Replace tissue by lesion compartments inside the lesion box; returns the compartments there."""
    box = lesions.box
    csf, gm, wm = (fractions[k][box] for k in ("csf", "gm", "wm"))
    inside = brain[box].astype(np.float32)
    parenchyma = gm + wm
    compartments = {
        "necrosis": lesions.core * inside,
        "enhancing": (lesions.solid - lesions.core) * inside,
        # Oedema is water in the parenchyma: sulcal and ventricular CSF stay CSF.
        "oedema": (lesions.whole - lesions.solid) * parenchyma,
    }
    csf *= 1.0 - lesions.solid
    gm *= 1.0 - lesions.whole
    wm *= 1.0 - lesions.whole
    return compartments


def _segmentation(
    fractions: dict[str, np.ndarray],
    compartments: dict[str, np.ndarray],
    brain: np.ndarray,
    box: tuple[slice, slice, slice],
) -> np.ndarray:
    """BraTS labels: the compartment that fills most of each voxel (0 where normal tissue does)."""
    normal = fractions["csf"][box] + fractions["gm"][box] + fractions["wm"][box]
    stack = np.stack([normal, compartments["necrosis"], compartments["enhancing"], compartments["oedema"]])
    labels = np.array([0, SEG_LABELS["necrotic_core"], SEG_LABELS["enhancing"], SEG_LABELS["oedema"]], np.uint8)
    seg = np.zeros(brain.shape, np.uint8)
    seg[box] = np.where(brain[box], labels[np.argmax(stack, axis=0)], 0)
    return seg


def _tissue_labels(fractions: dict[str, np.ndarray], brain: np.ndarray) -> np.ndarray:
    tissue = np.zeros(brain.shape, np.uint8)
    for name, label in TISSUE_LABELS.items():
        tissue[brain & (fractions[name] >= PURE_TISSUE)] = label
    return tissue


def _contrast(
    rng: np.random.Generator,
    protocol: tissues.Protocol,
    case_tissues: dict[str, tissues.Tissue],
    fractions: dict[str, np.ndarray],
    compartments: dict[str, np.ndarray],
    lesions: TumourMaps,
    brain: np.ndarray,
    texture: np.ndarray,
) -> np.ndarray:
    """Raw int16 image of one modality on the crop."""
    protocol = tissues.jitter_protocol(rng, protocol)
    image = np.zeros(brain.shape, np.float32)
    for name in ("csf", "gm", "wm"):
        image += fractions[name] * np.float32(tissues.tissue_signal(protocol, case_tissues[name]))
    box = lesions.box
    for name in ("necrosis", "oedema"):
        image[box] += compartments[name] * np.float32(tissues.tissue_signal(protocol, case_tissues[name]))
    rim = case_tissues["enhancing"]
    rim_signal = tissues.signal(protocol, rim.t1_ms, rim.t2_ms, rim.pd, lesions.gd_mm).astype(np.float32)
    image[box] += compartments["enhancing"] * rim_signal

    image *= texture
    image *= np.exp(rng.uniform(0.05, 0.15) * smooth_field(rng, CROP_SHAPE, BIAS_SPACING))
    values = image[brain]
    sigma = rng.uniform(0.008, 0.02) * float(values.mean())
    noise = rng.standard_normal((2, values.size), dtype=np.float32) * np.float32(sigma)
    values = np.hypot(values + noise[0], noise[1])
    site_scale = np.exp(rng.uniform(np.log(0.3), np.log(4.0)))
    values *= np.float32(MEAN_BRAIN_LEVEL * site_scale / float(values.mean()))
    out = np.zeros(brain.shape, np.int16)
    # Brain voxels stay >= 1 so that "nonzero" keeps meaning "brain" (FLAIR nulls CSF).
    out[brain] = np.clip(np.rint(values), 1, np.iinfo(np.int16).max).astype(np.int16)
    return out


def generate_case(seed: int) -> dict:
    """Generate one BraTS-like case, deterministic in ``seed``.

    Returns:
        A dict with
        ``Modality.T1``, ``Modality.T1c``, ``Modality.T2``, ``Modality.FLAIR``: (240, 240, 155)
        int16 raw images, zero outside the brain, >= 1 inside;
        ``"seg"``: (240, 240, 155) uint8 BraTS labels (0, 1 necrotic core, 2 oedema, 4 enhancing);
        ``"tissue"``: (240, 240, 155) uint8, 1 CSF, 2 GM, 3 WM where that tissue fills at least
        80 % of a voxel outside lesions, else 0 (ground truth for checking contrasts);
        ``"affine"``: (4, 4) float64, the BraTS voxel-to-world matrix;
        ``"seed"``: the seed.
    """
    rng = np.random.default_rng(seed)
    template = load_template()
    linear = _random_linear(rng)
    lesion_specs = sample_tumours(rng, template, linear)
    maps = _sample_tissues(template, _template_coords(rng, linear, lesion_specs))
    # The template's CSF is its brain mask minus GM and WM, so the three add up to the mask.
    total = maps[CSF] + maps[GM] + maps[WM]
    brain = total >= 0.5
    # Inside the brain the three tissues fill each voxel; the template's soft edge would otherwise
    # leave a dark partial-volume rim that skull-stripped images do not have.
    scale = np.where(brain, 1.0 / np.maximum(total, 1e-3), 0.0).astype(np.float32)
    fractions = {"csf": maps[CSF] * scale, "gm": maps[GM] * scale, "wm": maps[WM] * scale}
    del maps, total, scale

    lesions = tumour_maps(rng, lesion_specs, fractions["wm"], CROP_ORIGIN)
    compartments = _apply_lesions(fractions, brain, lesions)
    case_tissues = {
        name: tissues.jitter_tissue(rng, tissue)
        for name, tissue in (
            ("csf", tissues.CSF),
            ("gm", tissues.GM),
            ("wm", tissues.WM),
            ("necrosis", tissues.NECROSIS),
            ("oedema", tissues.OEDEMA),
            ("enhancing", tissues.ENHANCING),
        )
    }
    # Tissue is not uniform at the scale of a few voxels (vessels, perivascular spaces, fibre
    # bundles); one texture shared by all modalities, like the anatomy it stands for.
    texture = 1.0 + TEXTURE_AMPLITUDE * np.clip(fine_texture(rng, CROP_SHAPE), -3.0, 3.0)
    case: dict = {}
    for modality, protocol in tissues.PROTOCOLS.items():
        image = _contrast(rng, protocol, case_tissues, fractions, compartments, lesions, brain, texture)
        case[modality] = _embed(image)
    case["seg"] = _embed(_segmentation(fractions, compartments, brain, lesions.box))
    case["tissue"] = _embed(_tissue_labels(fractions, brain))
    case["affine"] = BRATS_AFFINE.copy()
    case["seed"] = seed
    return case


def _embed(crop: np.ndarray) -> np.ndarray:
    full = np.zeros(BRATS_SHAPE, crop.dtype)
    full[CROP] = crop
    return full
