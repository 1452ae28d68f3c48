"""The per-intensity lookup-table baseline: what a network must beat to have learnt more than a histogram.

For one configuration (sources → target) the table maps the sources' joint model-space intensity
at a voxel to the mean target intensity seen at that joint intensity, over every brain voxel of
the training cases. It knows nothing of neighbours, position or anatomy, so it shows how much of
a synthesis is a global intensity mapping; a network that does not beat it has learnt nothing
spatial. Images are normalized exactly as the service normalizes an upload (the model's
percentiles inside the sources' brain mask), so the table and the model see the same inputs.

Bins per source shrink with the number of sources (:data:`BINS_PER_SOURCE`) so every joint bin
still holds voxels from several cases; a bin no training voxel fell in predicts the mean target.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from synnet.modalities import Modality
from synnet.normalization import NormalizationParams, brain_mask
from training.configurations import Configuration
from training.model_space import ModelSpaceImages

# 256 bins for one source, 48² for two, 20³ for three: about 10^2.5 to 10^4 cells, each well filled
BINS_PER_SOURCE = {1: 256, 2: 48, 3: 20}


def joint_bin(values: Sequence[np.ndarray], bins: int) -> np.ndarray:
    """The joint bin of each voxel: one base-``bins`` digit per source intensity in [0, 1]."""
    index = np.zeros(np.shape(values[0]), dtype=np.int64)
    for value in values:
        index = index * bins + np.clip((np.asarray(value) * bins).astype(np.int64), 0, bins - 1)
    return index


@dataclass
class LookupTable:
    """Mean target per joint source bin for one configuration."""

    sources: tuple[Modality, ...]
    target: Modality
    means: np.ndarray  # one entry per joint bin

    @property
    def bins(self) -> int:
        return BINS_PER_SOURCE[len(self.sources)]

    def predict(self, sources: dict[Modality, np.ndarray], mask: np.ndarray) -> np.ndarray:
        """The target in model space from model-space ``sources``, zero outside ``mask``."""
        inside = np.asarray(mask, dtype=bool)
        out = np.zeros(inside.shape, dtype=np.float32)
        out[inside] = self.means[joint_bin([sources[m][inside] for m in self.sources], self.bins)]
        return out


class LookupTableFit:
    """Accumulates bin sums over training cases, then gives one :class:`LookupTable` per configuration."""

    def __init__(self, configurations: Iterable[Configuration], params: NormalizationParams) -> None:
        self.params = params
        self.configurations = list(configurations)
        self._sums: dict[Configuration, np.ndarray] = {}
        self._counts: dict[Configuration, np.ndarray] = {}

    def add_case(self, images: dict[Modality, np.ndarray]) -> None:
        """Add one case's brain voxels to every configuration whose modalities it has."""
        model_space = ModelSpaceImages(images, self.params)
        masks: dict[tuple[Modality, ...], np.ndarray] = {}
        for sources, target in self.configurations:
            if any(m not in images for m in (*sources, target)):
                continue
            if sources not in masks:  # as the service does: the sources' nonzero voxels
                masks[sources] = brain_mask([images[m] for m in sources])
            mask = masks[sources]
            if not mask.any():
                continue
            values = model_space.inside(mask, (*sources, target))
            bins = BINS_PER_SOURCE[len(sources)]
            index = joint_bin([values[m] for m in sources], bins)
            size = bins ** len(sources)
            key = (sources, target)
            self._sums[key] = self._sums.get(key, np.zeros(size)) + np.bincount(
                index, weights=values[target], minlength=size
            )
            self._counts[key] = self._counts.get(key, np.zeros(size)) + np.bincount(index, minlength=size)

    def tables(self) -> dict[Configuration, LookupTable]:
        """One table per configuration that saw at least one case."""
        tables = {}
        for key, sums in self._sums.items():
            counts = self._counts[key]
            fallback = sums.sum() / counts.sum()
            means = np.where(counts > 0, sums / np.maximum(counts, 1), fallback)
            tables[key] = LookupTable(key[0], key[1], means.astype(np.float32))
        return tables
