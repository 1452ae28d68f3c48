"""One case's images in model space, normalized as the service normalizes an upload: once per distinct brain mask."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

from synnet.modalities import Modality
from synnet.normalization import NormalizationParams, normalize


class ModelSpaceImages:
    """One case's images in model space under a given brain mask, each normalized once per distinct mask.

    The service normalizes every image inside the mask of the sources it is given, so each source
    set has its own mask; on skull-stripped data those masks are nearly always the same voxels,
    and normalizing (a percentile over the brain) is the costly step, so it is done once per mask.
    """

    def __init__(self, images: dict[Modality, np.ndarray], params: NormalizationParams) -> None:
        self.images = images
        self.params = params
        self._cache: dict[tuple[bytes, Modality, bool], np.ndarray] = {}

    def under(self, mask: np.ndarray, modalities: Iterable[Modality]) -> dict[Modality, np.ndarray]:
        """Whole volumes, zero outside ``mask``."""
        return self._cached(mask, modalities, inside_only=False)

    def inside(self, mask: np.ndarray, modalities: Iterable[Modality]) -> dict[Modality, np.ndarray]:
        """Only the voxels inside ``mask`` (the same values, without building whole volumes)."""
        return self._cached(mask, modalities, inside_only=True)

    def _cached(
        self, mask: np.ndarray, modalities: Iterable[Modality], inside_only: bool
    ) -> dict[Modality, np.ndarray]:
        key = hashlib.sha1(np.packbits(mask)).digest()
        found = {}
        for modality in modalities:
            if (key, modality, inside_only) not in self._cache:
                image = self.images[modality]
                if inside_only:  # the percentiles are over the mask either way; scaling is per voxel
                    values = image[mask]
                    normalized = normalize(values, np.ones(values.shape, dtype=bool), self.params)[0]
                else:
                    normalized = normalize(image, mask, self.params)[0]
                self._cache[key, modality, inside_only] = normalized
            found[modality] = self._cache[key, modality, inside_only]
        return found
