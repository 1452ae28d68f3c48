"""Random glioma-like lesions: where they are, how they push the brain aside, and their compartments.

A lesion is three nested, irregular compartments around a centre in deep white matter, as in a
glioblastoma: a necrotic core (BraTS label 1), a rim of enhancing viable tumour (label 4) around
it, and vasogenic oedema (label 2) reaching further, preferentially along white matter. Each
boundary is an ellipsoid whose radius is modulated by a smooth random field, so outlines are
lobulated rather than spherical. The lesion also displaces the surrounding brain (mass effect).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from training.phantom.anatomy import Template, brats_index
from training.phantom.fields import smooth_field

# Soft boundaries (in mm) avoid stair-cased edges; they become partial volumes in the signal.
EDGE_MM = 1.0
MIN_RIM_MM = 2.5  # the enhancing rim is at least this thick (before shape noise)
OEDEMA_EDGE_MM = 1.5


@dataclass(frozen=True)
class TumourSpec:
    """One lesion, in BraTS voxel coordinates (1 mm).

    Attributes:
        centre: (3,) voxel coordinates of the centre.
        shape: (3, 3) matrix taking offsets from the centre to a space where the lesion is round
            (a random rotation and anisotropy with unit determinant).
        solid_mm: radius of the solid tumour (enhancing rim and core together).
        core_fraction: core radius / solid radius.
        oedema_factor: oedema radius / solid radius (in white matter; less in grey matter).
        gd_mm: gadolinium concentration in the enhancing rim, mmol/L.
        mass_effect: strength of the push on the surrounding brain, 0 (none) to < 1.
    """

    centre: np.ndarray
    shape: np.ndarray
    solid_mm: float
    core_fraction: float
    oedema_factor: float
    gd_mm: float
    mass_effect: float

    @property
    def oedema_mm(self) -> float:
        return self.solid_mm * self.oedema_factor


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def sample_tumours(rng: np.random.Generator, template: Template, linear: np.ndarray) -> list[TumourSpec]:
    """One lesion, and a second, smaller one in a quarter of the cases (multifocal glioma).

    Args:
        rng: the case's generator.
        template: gives the candidate sites in deep white matter.
        linear: the case's head rotation/scaling, to carry a template site into BraTS space.
    """
    n_lesions = 2 if rng.random() < 0.25 else 1
    specs = []
    for index in range(n_lesions):
        site = template.tumour_sites[rng.integers(len(template.tumour_sites))]
        centre = brats_index(site + rng.uniform(-2.0, 2.0, size=3), linear)
        stretch = rng.uniform(0.8, 1.25, size=3)
        stretch /= np.prod(stretch) ** (1 / 3)
        solid = rng.uniform(10.0, 22.0) if index == 0 else rng.uniform(5.0, 10.0)
        specs.append(
            TumourSpec(
                centre=centre,
                shape=np.diag(1.0 / stretch) @ _random_rotation(rng).T,
                solid_mm=float(solid),
                core_fraction=float(min(rng.uniform(0.45, 0.85), 1.0 - MIN_RIM_MM / solid)),
                oedema_factor=float(rng.uniform(1.3, 2.0)),
                gd_mm=float(rng.uniform(0.25, 0.5)),
                mass_effect=float(rng.uniform(0.25, 0.5)),
            )
        )
    return specs


def add_mass_effect(specs: list[TumourSpec], points: np.ndarray, origin: np.ndarray) -> None:
    """Displace, in place, the sampling positions of a regular grid around each lesion.

    A voxel at distance r from a centre shows the tissue from ``r (1 - a exp(-r^2 / 2 R^2))``:
    tissue near the lesion is pushed outward by up to ``a R exp(-1/2)`` at r = R (the oedema
    radius), and the mapping stays one-to-one because a < 1. Beyond 3.5 R the push is under
    1.5 % of that maximum and is left out, so only a box around the lesion is touched.

    Args:
        specs: the lesions.
        points: (X, Y, Z, 3) float32 BraTS coordinates sampled by a grid whose voxel [0, 0, 0]
            is at ``origin``; modified in place.
        origin: (3,) BraTS coordinates of grid voxel [0, 0, 0].
    """
    for spec in specs:
        reach = 3.5 * spec.oedema_mm
        low = np.clip(np.floor(spec.centre - origin - reach), 0, None).astype(int)
        high = np.minimum(np.ceil(spec.centre - origin + reach).astype(int) + 1, points.shape[:3])
        if np.any(high <= low):
            continue
        box = tuple(slice(int(a), int(b)) for a, b in zip(low, high, strict=True))
        offset = points[box] - spec.centre.astype(np.float32)
        r2 = np.einsum("...i,...i->...", offset, offset)
        falloff = np.exp(-r2 / np.float32(2.0 * spec.oedema_mm**2))
        points[box] -= np.float32(spec.mass_effect) * offset * falloff[..., None]


@dataclass
class TumourMaps:
    """Soft memberships of the lesion compartments on a sub-box of the volume.

    Attributes:
        box: slices of the volume the arrays cover.
        core: (bx, by, bz) float32 in [0, 1], necrotic core.
        solid: (bx, by, bz) float32 in [0, 1], core and enhancing rim together (>= core).
        whole: (bx, by, bz) float32 in [0, 1], everything abnormal incl. oedema (>= solid).
        gd_mm: (bx, by, bz) float32 gadolinium concentration in the enhancing rim (heterogeneous).
    """

    box: tuple[slice, slice, slice]
    core: np.ndarray
    solid: np.ndarray
    whole: np.ndarray
    gd_mm: np.ndarray


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)


def _lesion_box(specs: list[TumourSpec], volume_shape: tuple[int, ...]) -> tuple[slice, slice, slice]:
    # Along white matter and with favourable noise the oedema reaches 1.2 * 1.5 = 1.8x its radius.
    lows = [spec.centre - 1.9 * spec.oedema_mm - 3 for spec in specs]
    highs = [spec.centre + 1.9 * spec.oedema_mm + 3 for spec in specs]
    low = np.clip(np.floor(np.min(lows, axis=0)), 0, None).astype(int)
    high = np.minimum(np.ceil(np.max(highs, axis=0)).astype(int) + 1, volume_shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high, strict=True))


def tumour_maps(rng: np.random.Generator, specs: list[TumourSpec], wm: np.ndarray, origin: np.ndarray) -> TumourMaps:
    """Rasterize lesions onto the (already deformed) anatomy.

    Args:
        rng: the case's generator.
        specs: from :func:`sample_tumours`.
        wm: (X, Y, Z) white-matter fraction of the volume being built; oedema spreads along it.
        origin: (3,) BraTS coordinates of ``wm[0, 0, 0]`` (the volume may be a crop).
    """
    box = _lesion_box([replace(s, centre=s.centre - origin) for s in specs], wm.shape)
    box_shape = tuple(s.stop - s.start for s in box)
    grid = np.stack(np.meshgrid(*(np.arange(s.start, s.stop) for s in box), indexing="ij"), axis=-1)
    grid = grid.astype(np.float32) + origin.astype(np.float32)
    wm_box = wm[box]
    core = np.zeros(box_shape, np.float32)
    solid = np.zeros(box_shape, np.float32)
    whole = np.zeros(box_shape, np.float32)
    gd = np.zeros(box_shape, np.float32)
    for spec in specs:
        radius = np.linalg.norm((grid - spec.centre.astype(np.float32)) @ spec.shape.T.astype(np.float32), axis=-1)
        lobes = [np.clip(smooth_field(rng, box_shape, spacing), -2.5, 2.5) for spacing in (9.0, 6.0, 12.0)]
        solid_radius = radius / (1.0 + 0.25 * lobes[0])
        core_radius = radius / (1.0 + 0.3 * lobes[1])
        # Oedema follows white matter tracts: it reaches 1.2 / 0.5 = 2.4x further in WM than in cortex.
        oedema_radius = radius / ((1.0 + 0.2 * lobes[2]) * (0.5 + 0.7 * wm_box))
        s = _sigmoid((spec.solid_mm - solid_radius) / EDGE_MM)
        c = _sigmoid((spec.solid_mm * spec.core_fraction - core_radius) / EDGE_MM) * s
        w = np.maximum(_sigmoid((spec.oedema_mm - oedema_radius) / OEDEMA_EDGE_MM), s)
        uptake = spec.gd_mm * np.clip(1.0 + 0.3 * lobes[1], 0.3, None)
        gd = np.where(s - c > solid - core, uptake, gd).astype(np.float32)
        core, solid, whole = np.maximum(core, c), np.maximum(solid, s), np.maximum(whole, w)
    return TumourMaps(box=box, core=core, solid=solid, whole=whole, gd_mm=gd)
